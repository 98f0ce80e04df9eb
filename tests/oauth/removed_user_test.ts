import assert from "node:assert/strict";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  ALICE,
  aliceHashOnce,
  authorizeAs,
  authorizeUrl,
  pkce,
  signedInTokens,
  startOAuthGateway,
  tokenCall,
} from "./_flow.ts";

Deno.test("removing a user from login.users ends their refresh tokens and browser sessions at once", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const { clientId, tokens } = await signedInTokens(base);
    const browser = new ScriptedBrowser();
    const { challenge } = await pkce();
    const signedIn = await authorizeAs(
      browser,
      authorizeUrl(base, { client_id: clientId, code_challenge: challenge }),
    );
    await signedIn.body?.cancel();
    assert.equal(signedIn.status, 303);

    // The registry loses alice (bob takes her place).
    await gateway.reload({
      gateway: { auth: "oauth", shutdown_timeout: "1s" },
      login: { users: { bob: { password_hash: await aliceHashOnce(), groups: [] } } },
      backends: {},
    });

    const refreshed = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token,
    });
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.body.error, "invalid_grant");

    // Her browser session no longer counts: the sign-in page again, and her password no longer works.
    const again = await browser.fetch(authorizeUrl(base, { client_id: clientId, code_challenge: challenge }));
    const page = await again.text();
    assert.match(page, /action="\/login"/);
    const refused = await authorizeAs(
      new ScriptedBrowser(),
      authorizeUrl(base, { client_id: clientId, code_challenge: challenge }),
      ALICE,
    );
    await refused.body?.cancel();
    assert.equal(refused.status, 401);
  } finally {
    await gateway.close();
  }
});

Deno.test("a user's changed groups reach the tokens minted by their next refresh", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const { clientId, tokens } = await signedInTokens(base);
    await gateway.reload({
      gateway: { auth: "oauth", shutdown_timeout: "1s" },
      login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["admin"] } } },
      backends: {},
    });
    const refreshed = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token,
    });
    assert.equal(refreshed.status, 200);
    const payload = JSON.parse(
      atob(refreshed.body.access_token!.split(".")[1]!.replaceAll("-", "+").replaceAll("_", "/")),
    );
    assert.deepEqual(payload.groups, ["admin"]);
  } finally {
    await gateway.close();
  }
});
