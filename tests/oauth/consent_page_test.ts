/**
 * What the consent page says of who registered a client: the administrator (the registry's `clients:`),
 * or the client itself (RFC 7591), whose self-chosen name is then marked unverified.
 */
import assert from "node:assert/strict";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { ALICE, authorizeUrl, pkce, REDIRECT_URI, register, startOAuthGateway } from "./_flow.ts";

/** The text of the `<dd>` after the `<dt>` named `term`, tags stripped. */
function detail(page: string, term: string): string {
  const match = new RegExp(`<dt>${term}</dt><dd[^>]*>(.*?)</dd>`, "s").exec(page);
  assert.ok(match, `no "${term}" in ${page}`);
  return match[1]!.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();
}

/** Signs alice in for `url` and returns the consent page's HTML. */
async function consentPage(base: string, url: string): Promise<string> {
  const browser = new ScriptedBrowser();
  const login = await (await browser.fetch(url)).text();
  const signedIn = await browser.post(`${base}/login`, { ...formFields(login), ...ALICE });
  await signedIn.body?.cancel();
  assert.equal(signedIn.status, 303, "signed in");
  const page = await (await browser.fetch(url)).text();
  assert.ok(page.includes('action="/authorize/consent"'), page);
  return page;
}

Deno.test("authorize() consent page: a registry client is registered by the administrator, its name not marked", async () => {
  const gateway = await startOAuthGateway({}, {
    clients: { "desk-app": { name: "Desk App", redirect_uris: [REDIRECT_URI] } },
  });
  try {
    const { challenge } = await pkce();
    const page = await consentPage(
      gateway.base,
      authorizeUrl(gateway.base, { client_id: "desk-app", code_challenge: challenge }),
    );
    assert.equal(detail(page, "Application"), "Desk App");
    assert.equal(detail(page, "Registered"), "by your Gatehouse administrator");
    assert.equal(detail(page, "Returns to"), "127.0.0.1:53682");
    assert.doesNotMatch(page, /unverified|not verified/i);
  } finally {
    await gateway.close();
  }
});

Deno.test("authorize() consent page: a self-registered client's name is marked unverified, with its redirect host", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base, {
      client_name: "<b>Totally Trusted</b>",
      redirect_uris: ["https://app.example.test/cb"],
    });
    const { challenge } = await pkce();
    const page = await consentPage(
      gateway.base,
      authorizeUrl(gateway.base, {
        client_id: client.client_id,
        code_challenge: challenge,
        redirect_uri: "https://app.example.test/cb",
      }),
    );
    assert.equal(detail(page, "Application"), "&lt;b&gt;Totally Trusted&lt;/b&gt; unverified name");
    assert.equal(detail(page, "Registered"), "by the application itself (dynamic client registration)");
    assert.equal(detail(page, "Returns to"), "app.example.test");
    assert.match(page, /role="note"[^>]*>[^<]*registered itself[^]*app\.example\.test/);
  } finally {
    await gateway.close();
  }
});
