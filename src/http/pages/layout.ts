// The frame of every page: HTML escaping, the shared style, the security headers, the signed-in user's
// sign-out bar, and the error and notice pages.

/** Escapes text for HTML content and attribute values. */
export function escapeHtml(value: string): string {
  return value.replaceAll("&", "&amp;").replaceAll("<", "&lt;").replaceAll(">", "&gt;")
    .replaceAll('"', "&quot;").replaceAll("'", "&#39;");
}

// Text colours keep a contrast of 4.5:1 or more on white (WCAG 2.2 §1.4.3): .error 7.3, .ok 7.2, .muted 6.0.
const STYLE = `
body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
main{max-width:26rem;margin:8vh auto;background:#fff;padding:2rem;border-radius:12px;box-shadow:0 2px 12px #0002;overflow-wrap:break-word}
h1{font-size:1.3rem;margin:0 0 1rem}label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:.6rem;border:1px solid #bbc;border-radius:6px;font:inherit}
button{margin-top:1.2rem;padding:.6rem 1.2rem;border:0;border-radius:6px;font:inherit;cursor:pointer;background:#2d5be3;color:#fff}
a.provider{display:block;text-align:center;padding:.6rem;border:1px solid #2d5be3;border-radius:6px;color:#2d5be3;text-decoration:none}
button.secondary{background:#e4e6eb;color:#1d2330;margin-left:.5rem}.error{color:#b00020}.ok{color:#11652a}.muted{color:#5c6370}
dl{margin:0}dt{font-weight:600}dd{margin:0 0 .6rem}
.account{display:flex;flex-wrap:wrap;align-items:center;justify-content:space-between;gap:.4rem 1rem;margin:0 0 1rem;padding:0 0 .6rem;border-bottom:1px solid #e4e6eb;font-size:.9rem}
.account p,.account form{margin:0}.account button{margin:0;padding:.3rem .8rem}
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

/** The user a page is shown to, signed in at the gateway in this browser: the page offers to sign out. */
export interface SignedInAccount {
  readonly user: string;
  /** The session's CSRF token: `POST /logout` takes only a form of this session. */
  readonly csrf: string;
  /** Said after the name, e.g. "admin". */
  readonly note?: string;
}

/** Who is signed in, and the sign-out button (`POST /logout` with the session's CSRF token). */
function accountBar(account: SignedInAccount): string {
  return `<header class="account"><p>Signed in as <strong>${escapeHtml(account.user)}</strong>${
    account.note ? ` (${escapeHtml(account.note)})` : ""
  }</p><form method="post" action="/logout">${
    hidden({ csrf: account.csrf })
  }<button type="submit" class="secondary">Sign out</button></form></header>`;
}

/**
 * A whole page: `wide` for tables, `refreshSeconds` to reload itself, `account` for a signed-in user (the
 * page then says who that is and offers to sign out).
 */
export function layout(
  title: string,
  body: string,
  options: { wide?: boolean; refreshSeconds?: number; style?: string; account?: SignedInAccount } = {},
): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8">` +
    `<meta name="viewport" content="width=device-width, initial-scale=1">` +
    (options.refreshSeconds ? `<meta http-equiv="refresh" content="${options.refreshSeconds}">` : "") +
    `<title>${escapeHtml(title)} · Gatehouse</title>` +
    `<style>${STYLE}${options.style ?? ""}</style></head><body><main${options.wide ? ' class="wide"' : ""}>${
      options.account ? accountBar(options.account) : ""
    }${body}</main></body></html>`;
}

/** Hidden form fields, escaped. */
export const hidden = (fields: Record<string, string>) =>
  Object.entries(fields).map(([name, value]) =>
    `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
  ).join("");

/** An error that cannot be sent back to the client (unknown client, bad redirect URI). */
export function errorPage(title: string, message: string, account?: SignedInAccount): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p>`, {
    account,
  });
}

/** Something that went well (connected, signed out), and where to go next. */
export function noticePage(
  title: string,
  message: string,
  options: { account?: SignedInAccount; next?: { href: string; label: string } } = {},
): string {
  return layout(
    title,
    `<h1>${escapeHtml(title)}</h1><p class="ok" role="status">${escapeHtml(message)}</p>` +
      (options.next
        ? `<p><a href="${escapeHtml(options.next.href)}">${escapeHtml(options.next.label)}</a></p>`
        : ""),
    { account: options.account },
  );
}
