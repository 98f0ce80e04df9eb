/**
 * The authorization server against attackers: repeated parameters, a consent form that names one
 * request by a server-side handle, malformed Basic credentials, sign-out forgery, introspection by
 * strangers, and scopes the server does not know.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  ALICE,
  authorizeAs,
  authorizeUrl,
  basic,
  obtainCode,
  pkce,
  REDIRECT_URI,
  register,
  signedInTokens,
  startOAuthGateway,
  tokenCall,
} from "./_flow.ts";

function countOf(gateway: { store: { db: { prepare(sql: string): { get(): unknown } } } }, table: string) {
  return (gateway.store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** Signs alice in and returns the consent page for `url` with the browser that holds the session. */
async function consentPageFor(base: string, url: string, browser = new ScriptedBrowser()) {
  const login = await (await browser.fetch(url)).text();
  const signIn = await browser.post(`${base}/login`, { ...formFields(login), ...ALICE });
  await signIn.body?.cancel();
  assert.equal(signIn.status, 303, "signed in");
  const response = await browser.fetch(url);
  const page = await response.text();
  assert.equal(response.status, 200, page);
  assert.ok(page.includes('action="/authorize/consent"'), "the consent page");
  return { browser, page, fields: formFields(page) };
}

Deno.test("authorize() refuses a repeated parameter with 400 invalid_request (RFC 6749 §3.1)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const trusted = await register(gateway.base, { client_name: "Trusted editor" });
    const evil = await register(gateway.base, {
      client_name: "Evil",
      redirect_uris: ["https://evil.example/callback"],
    });
    const { challenge } = await pkce();
    // Validated on the first copy, carried to the consent form as the last one: the attack of the issue.
    const url = `${
      authorizeUrl(gateway.base, { client_id: trusted.client_id, code_challenge: challenge })
    }&client_id=${evil.client_id}&redirect_uri=${encodeURIComponent("https://evil.example/callback")}`;
    const browser = new ScriptedBrowser();
    const login = await (await browser.fetch(url)).text();
    // Even signed in, the request is refused before any consent page.
    const signIn = await browser.post(`${gateway.base}/login`, {
      ...formFields(login),
      return_to: `/authorize?${new URL(url).search.slice(1)}`,
      ...ALICE,
    });
    await signIn.body?.cancel();
    const response = await browser.fetch(url);
    const page = await response.text();
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("location"), null, "never redirects");
    assert.match(page, /invalid_request/);
    assert.match(page, /client_id/);
    assert.doesNotMatch(page, /action="\/authorize\/consent"/);
    for (const name of ["state", "scope", "resource", "code_challenge", "response_type"]) {
      const repeated = await browser.fetch(
        `${
          authorizeUrl(gateway.base, { client_id: trusted.client_id, code_challenge: challenge })
        }&${name}=x&${name}=y`,
      );
      const text = await repeated.text();
      assert.equal(repeated.status, 400, name);
      assert.match(text, /invalid_request/, name);
    }
    assert.equal(countOf(gateway.gateway, "authorization_codes"), 0, "no code was issued");
  } finally {
    await gateway.close();
  }
});

Deno.test("the consent form carries a handle to the validated request, never its fields", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base, { client_name: "Trusted editor" });
    const evil = await register(gateway.base, { redirect_uris: ["https://evil.example/callback"] });
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const { browser, fields } = await consentPageFor(gateway.base, url);
    assert.deepEqual(Object.keys(fields).sort(), ["csrf", "request"]);

    // Fields added beside the handle are refused, whatever they say.
    for (
      const extra of [
        { client_id: evil.client_id },
        { redirect_uri: "https://evil.example/callback" },
        { scope: "mcp admin" },
      ] as Record<string, string>[]
    ) {
      const tampered = await browser.post(`${gateway.base}/authorize/consent`, {
        ...fields,
        ...extra,
        decision: "allow",
      });
      const text = await tampered.text();
      assert.equal(tampered.status, 400, JSON.stringify(extra));
      assert.equal(tampered.headers.get("location"), null);
      assert.match(text, /invalid_request/);
    }
    // A made-up handle goes nowhere.
    const forged = await browser.post(`${gateway.base}/authorize/consent`, {
      csrf: fields.csrf!,
      request: "forged-handle",
      decision: "allow",
    });
    await forged.body?.cancel();
    assert.equal(forged.status, 400);
    assert.equal(forged.headers.get("location"), null);

    // Another signed-in browser cannot use this browser's handle.
    const other = await consentPageFor(gateway.base, url);
    const stolen = await other.browser.post(`${gateway.base}/authorize/consent`, {
      csrf: other.fields.csrf!,
      request: fields.request!,
      decision: "allow",
    });
    await stolen.body?.cancel();
    assert.equal(stolen.status, 400, "a handle belongs to the browser session it was shown to");
    assert.equal(countOf(gateway.gateway, "authorization_codes"), 0, "no code so far");

    // The real one works once, for the validated client and redirect URI.
    const approved = await browser.post(`${gateway.base}/authorize/consent`, {
      ...fields,
      decision: "allow",
    });
    await approved.body?.cancel();
    assert.equal(approved.status, 303);
    const location = new URL(approved.headers.get("location")!);
    assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI);
    assert.ok(location.searchParams.get("code"));
    const again = await browser.post(`${gateway.base}/authorize/consent`, { ...fields, decision: "allow" });
    await again.body?.cancel();
    assert.equal(again.status, 400, "a handle is single use");
    assert.equal(countOf(gateway.gateway, "authorization_codes"), 1);
  } finally {
    await gateway.close();
  }
});

Deno.test("token() answers malformed Basic credentials with 401 invalid_client", async () => {
  const gateway = await startOAuthGateway();
  try {
    const malformed = [
      `Basic ${btoa("%zz:secret")}`,
      `Basic ${btoa("client:%E0%A4%A")}`,
      `Basic ${btoa("no-colon")}`,
      "Basic !!!not-base64!!!",
    ];
    for (const authorization of malformed) {
      const answer = await tokenCall(gateway.base, { grant_type: "client_credentials" }, { authorization });
      assert.equal(answer.status, 401, authorization);
      assert.equal(answer.body.error, "invalid_client", authorization);
      assert.match(answer.headers.get("www-authenticate") ?? "", /^Basic /, authorization);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token() refuses a client that authenticates with Basic and the form at once (RFC 6749 §2.3)", async () => {
  const secret = "ci-bot-secret-0123456789";
  const gateway = await startOAuthGateway({}, { clients: { "ci-bot": { secret } } });
  try {
    const answer = await tokenCall(
      gateway.base,
      { grant_type: "client_credentials", client_id: "ci-bot", client_secret: secret },
      basic("ci-bot", secret),
    );
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, "invalid_request");
    const mismatched = await tokenCall(
      gateway.base,
      { grant_type: "client_credentials", client_id: "someone-else" },
      basic("ci-bot", secret),
    );
    assert.equal(mismatched.status, 401);
    assert.equal(mismatched.body.error, "invalid_client");
  } finally {
    await gateway.close();
  }
});

Deno.test("logout() without the session's csrf token is refused and signs nobody out", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const { browser, fields } = await consentPageFor(gateway.base, url);
    for (const form of [{}, { csrf: "wrong" }] as Record<string, string>[]) {
      const forged = await browser.post(`${gateway.base}/logout`, form);
      await forged.body?.cancel();
      assert.equal(forged.status, 403, JSON.stringify(form));
      assert.equal(forged.headers.getSetCookie().length, 0, "the session cookie is left alone");
    }
    const stillSignedIn = await browser.fetch(url);
    assert.match(await stillSignedIn.text(), /action="\/authorize\/consent"/, "still signed in");

    const real = await browser.post(`${gateway.base}/logout`, { csrf: fields.csrf! });
    await real.body?.cancel();
    assert.equal(real.status, 200);
    const signedOut = await browser.fetch(url);
    assert.match(await signedOut.text(), /action="\/login"/, "signed out");
  } finally {
    await gateway.close();
  }
});

Deno.test("introspect() answers only registry clients allowed to introspect", async () => {
  const gateway = await startOAuthGateway({}, {
    clients: {
      monitor: { secret: "monitor-secret-0123456789", introspect: true },
      "ci-bot": { secret: "ci-bot-secret-0123456789" },
    },
  });
  try {
    const { base } = gateway;
    const { tokens } = await signedInTokens(base);
    const allowed = await tokenCall(
      base,
      { token: tokens.access_token },
      basic("monitor", "monitor-secret-0123456789"),
      "/introspect",
    );
    assert.equal(allowed.status, 200);
    assert.equal(allowed.body.active as unknown, true);

    // A stranger registers a confidential client of its own: it must not learn about others' tokens.
    const response = await fetch(`${base}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: "client_secret_basic",
      }),
    });
    const stranger = await response.json() as { client_id: string; client_secret: string };
    assert.equal(response.status, 201);
    const refused: [string, Record<string, string>][] = [
      ["a dynamically registered confidential client", basic(stranger.client_id, stranger.client_secret)],
      ["a registry client not allowed to introspect", basic("ci-bot", "ci-bot-secret-0123456789")],
    ];
    for (const [what, headers] of refused) {
      const answer = await tokenCall(base, { token: tokens.access_token }, headers, "/introspect");
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.error, "invalid_client", what);
      assert.equal(answer.body.active, undefined, what);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("authorize() grants only scopes the server knows, and the consent page lists them", async () => {
  const gateway = await startOAuthGateway();
  try {
    const metadata = await (await fetch(`${gateway.base}/.well-known/oauth-authorization-server`)).json();
    assert.deepEqual(metadata.scopes_supported, ["mcp", "offline_access"]);

    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const url = authorizeUrl(gateway.base, {
      client_id: client.client_id,
      code_challenge: challenge,
      scope: "mcp admin offline_access write:everything",
    });
    const { browser, page } = await consentPageFor(gateway.base, url);
    assert.match(page, /offline_access/);
    assert.doesNotMatch(page, /admin|write:everything/, "unknown scopes are not shown as granted");
    const approved = await authorizeAs(browser, url);
    await approved.body?.cancel();
    const code = new URL(approved.headers.get("location")!).searchParams.get("code")!;
    const answer = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
    assert.equal(answer.body.scope, "mcp offline_access");
    assert.equal(decodeJwt(answer.body.access_token!).scope, "mcp offline_access");

    // No scope, an empty one, or only OpenID ones: the default grant.
    for (const scope of [undefined, "", "openid", "openid offline_access", "profile email"]) {
      const pair = await pkce();
      const { code } = await obtainCode(gateway.base, client.client_id, {
        browser,
        challenge: pair.challenge,
        params: { scope },
      });
      const granted = await tokenCall(gateway.base, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code,
        code_verifier: pair.verifier,
        redirect_uri: REDIRECT_URI,
      });
      assert.equal(granted.status, 200, String(scope));
      assert.equal(granted.body.scope, scope?.includes("offline_access") ? "mcp offline_access" : "mcp");
      assert.ok(granted.body.refresh_token, `a refresh token for scope ${JSON.stringify(scope)}`);
    }
  } finally {
    await gateway.close();
  }
});
