// The sign-in and consent pages (HTML, no scripts or outside assets).
import type { OAuthClient } from "../../oauth/clients.ts";
import { escapeHtml, hidden, layout, type SignedInAccount } from "./layout.ts";

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

const CONSENT_STYLE = `
.note{background:#fff4d6;color:#4d3400;padding:.6rem .8rem;border-radius:6px}
.badge{display:inline-block;padding:0 .4rem;border-radius:4px;background:#fff4d6;color:#7a5300;font-size:.8rem;font-weight:600}
dd.redirect-host{font-size:1.25rem;font-weight:700}
`;

/** Who registered a client, as the consent page says it; and whether its name is only its own claim. */
function registration(client: { kind: OAuthClient["kind"]; id: string }) {
  switch (client.kind) {
    case "static":
      return { registered: "by your Gatehouse administrator", note: undefined };
    case "dynamic":
      return {
        registered: "by the application itself (dynamic client registration)",
        note:
          "This application registered itself with Gatehouse: its name is its own claim and is not verified.",
      };
    case "metadata_document": {
      // The client ID is the document's https URL: its host is known, the name is what the document says.
      const host = escapeHtml(new URL(client.id).host);
      return {
        registered: `by its metadata document at <strong>${host}</strong>`,
        note:
          `This application's name is stated by a document at <strong>${host}</strong> and not verified ` +
          "by Gatehouse.",
      };
    }
  }
}

/**
 * Asks the signed-in user whether this client may act for them. The host the browser returns to comes
 * first and stands out; a name the client chose itself is marked unverified.
 */
export function consentPage(
  options: {
    client: { name: string; kind: OAuthClient["kind"]; id: string };
    redirectHost: string;
    resource: string;
    /** What is granted on approval, each scope with its meaning. */
    scopes: readonly { scope: string; description: string }[];
    account: SignedInAccount;
    fields: Record<string, string>;
  },
): string {
  const { client } = options;
  const scopes = options.scopes.map(({ scope, description }) =>
    `<li><code>${escapeHtml(scope)}</code>: ${escapeHtml(description)}</li>`
  ).join("");
  const { registered, note } = registration(client);
  const host = escapeHtml(options.redirectHost);
  return layout(
    "Allow access",
    `<h1>Allow ${escapeHtml(client.name)}?</h1>` +
      (note
        ? `<p class="note" role="note">${note} Allow it only if you started this from an application you ` +
          `trust, and you expect to return to <strong>${host}</strong>.</p>`
        : "") +
      `<dl><dt>Returns to</dt><dd class="redirect-host">${host}</dd>` +
      `<dt>Application</dt><dd>${escapeHtml(client.name)}${
        note ? ` <span class="badge">unverified name</span>` : ""
      }</dd>` +
      `<dt>Registered</dt><dd>${registered}</dd>` +
      `<dt>Wants to use</dt><dd>${escapeHtml(options.resource)}</dd>` +
      `<dt>Is granted</dt><dd><ul>${scopes}</ul></dd></dl>` +
      `<form method="post" action="/authorize/consent">${hidden(options.fields)}` +
      `<button type="submit" name="decision" value="allow">Allow</button>` +
      `<button type="submit" name="decision" value="deny" class="secondary">Deny</button></form>`,
    { account: options.account, style: CONSENT_STYLE },
  );
}
