// The sign-in and consent pages (HTML, no scripts or outside assets).
import { escapeHtml, hidden, layout } from "./layout.ts";

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
