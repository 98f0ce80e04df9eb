// The frame of every page: HTML escaping, the shared style, the security headers, the error page.

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: string): string {
  return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:26rem;margin:8vh auto;background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #bbc;border-radius:6px;font:inherit}
button{margin-top:1.2rem;padding:.6rem 1.2rem;border:0;border-radius:6px;font:inherit;cursor:pointer;background:#2d5be3;color:#fff}
a.provider{display:block;text-align:center;padding:.6rem;border:1px solid #2d5be3;border-radius:6px;color:#2d5be3;text-decoration:none}
button.secondary{background:#e4e6eb;color:#1d2330;margin-left:.5rem}.error{color:#b00020}dl{margin:0}dt{font-weight:600}dd{margin:0 0 .6rem}
`;

/** Security headers for every page: no framing, no referrer, no outside assets, forms only to `formTargets`. */
export function pageHeaders(formTargets: readonly string[] = []): Record<string, string> {
  const formAction = ["'self'", ...formTargets].join(" ");
  return {
    "content-type": "text/html; charset=utf-8",
    "cache-control": "no-store",
    "content-security-policy":
      `default-src 'none'; style-src 'unsafe-inline'; form-action ${formAction}; frame-ancestors 'none'; base-uri 'none'`,
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "x-content-type-options": "nosniff",
  };
}

/** A whole page: `wide` for tables, `refreshSeconds` to reload itself. */
export function layout(
  title: string,
  body: string,
  options: { wide?: boolean; refreshSeconds?: number; style?: string } = {},
): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    (options.refreshSeconds ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">` : "") +
    `<title>${escapeHtml(title)} · Gatehouse</title>` +
    `<style>${STYLE}${options.style ?? ""}</style></head><body><main${
      options.wide ? ' class="wide"' : ""
    }>${body}</main></body></html>`;
}

/** Hidden form fields, escaped. */
export const hidden = (fields: Record<string, string>) =>
  Object.entries(fields).map(([name, value]) =>
    `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
  ).join("");

/** An error that cannot be sent back to the client (unknown client, bad redirect URI). */
export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p>`);
}
