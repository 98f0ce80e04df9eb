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

const hidden = (fields: Record<string, string>) =>
  Object.entries(fields).map(([name, value]) =>
    `<input type="hidden" name="${escapeHtml(name)}" value="${escapeHtml(value)}">`
  ).join("");

/** The sign-in page: a button per upstream provider, and the local account form. */
export function loginPage(
  options: {
    returnTo: string;
    csrf: string;
    error?: string;
    username?: string;
    providers?: readonly { name: string; label: string }[];
    localAccounts?: boolean;
  },
): string {
  const providers = (options.providers ?? []).map((provider) =>
    `<p><a class="provider" href="/login/${encodeURIComponent(provider.name)}?return_to=${
      encodeURIComponent(options.returnTo)
    }">Sign in with ${escapeHtml(provider.label)}</a></p>`
  ).join("");
  const form = options.localAccounts === false
    ? ""
    : `<form method="post" action="/login">${hidden({ return_to: options.returnTo, csrf: options.csrf })}` +
      `<label for="username">User name</label><input type="text" id="username" name="username" autocomplete="username" required value="${
        escapeHtml(options.username ?? "")
      }">` +
      `<label for="password">Password</label><input type="password" id="password" name="password" autocomplete="current-password" required>` +
      `<button type="submit">Sign in</button></form>`;
  return layout(
    "Sign in",
    `<h1>Sign in to Gatehouse</h1>` +
      (options.error ? `<p class="error" role="alert">${escapeHtml(options.error)}</p>` : "") + providers +
      form,
  );
}

/** Asks the signed-in user whether this client may act for them. */
export function consentPage(
  options: {
    clientName: string;
    redirectHost: string;
    resource: string;
    /** What is granted on approval, each scope with its meaning. */
    scopes: readonly { scope: string; description: string }[];
    user: string;
    fields: Record<string, string>;
  },
): string {
  const scopes = options.scopes.map(({ scope, description }) =>
    `<li><code>${escapeHtml(scope)}</code>: ${escapeHtml(description)}</li>`
  ).join("");
  return layout(
    "Allow access",
    `<h1>Allow ${escapeHtml(options.clientName)}?</h1>` +
      `<p>Signed in as <strong>${escapeHtml(options.user)}</strong>.</p>` +
      `<dl><dt>Application</dt><dd>${escapeHtml(options.clientName)}</dd>` +
      `<dt>Returns to</dt><dd>${escapeHtml(options.redirectHost)}</dd>` +
      `<dt>Wants to use</dt><dd>${escapeHtml(options.resource)}</dd>` +
      `<dt>Is granted</dt><dd><ul>${scopes}</ul></dd></dl>` +
      `<form method="post" action="/authorize/consent">${hidden(options.fields)}` +
      `<button type="submit" name="decision" value="allow">Allow</button>` +
      `<button type="submit" name="decision" value="deny" class="secondary">Deny</button></form>`,
  );
}

/** The signed-in user's connected services, each with a disconnect button. */
export function connectionsPage(
  options: {
    user: string;
    csrf: string;
    connections: readonly { service: string; scope: string; expiresAt?: number; updatedAt: number }[];
  },
): string {
  const rows = options.connections.map((connection) =>
    `<li><strong>${escapeHtml(connection.service)}</strong>` +
    (connection.scope ? ` <span>(${escapeHtml(connection.scope)})</span>` : "") +
    `<br><small>${
      connection.expiresAt
        ? `token expires ${escapeHtml(new Date(connection.expiresAt).toISOString())}`
        : "no expiry given"
    }</small>` +
    `<form method="post" action="/connections/${encodeURIComponent(connection.service)}/disconnect">${
      hidden({ csrf: options.csrf })
    }<button type="submit" class="secondary">Disconnect</button></form></li>`
  ).join("");
  return layout(
    "Connections",
    `<h1>Your connections</h1><p>Signed in as <strong>${escapeHtml(options.user)}</strong>.</p>` +
      (rows ? `<ul>${rows}</ul>` : "<p>No services connected.</p>"),
  );
}

/** An error that cannot be sent back to the client (unknown client, bad redirect URI). */
export function errorPage(title: string, message: string): string {
  return layout(title, `<h1>${escapeHtml(title)}</h1><p class="error">${escapeHtml(message)}</p>`);
}
