/**
 * The RFC 9700 checklist of /work/shared/notes/oauth.md, one attack per test, each tried against a real
 * gateway and seen refused.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DatabaseSync } from "node:sqlite";
import { base64url, decodeJwt, exportSPKI, importJWK, type JWK, type JWTPayload, SignJWT } from "jose";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  ALICE,
  authorizeAs,
  authorizeUrl,
  basic,
  mcpInitialize,
  obtainCode,
  pkce,
  REDIRECT_URI,
  register,
  signedInTokens,
  startOAuthGateway,
  tokenCall,
  tokenRequest,
} from "./_flow.ts";
import { gatewayCookieName } from "../../src/core/cookies.ts";

const CI_BOT = { secret: "ci-bot-secret-0123456789", user: "ci-bot", groups: ["bots"], introspect: true };
const WITH_CI_BOT = { clients: { "ci-bot": CI_BOT } };

/** An access token for ci-bot (client_credentials: no browser, no password check). */
async function ciBotToken(base: string, resource?: string): Promise<string> {
  const answer = await tokenCall(
    base,
    { grant_type: "client_credentials", ...(resource ? { resource } : {}) },
    basic("ci-bot", CI_BOT.secret),
  );
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.access_token!;
}

/** The response is an HTML error page and not a redirect anywhere. */
async function assertErrorPageWithoutRedirect(response: Response, what: string): Promise<string> {
  const page = await response.text();
  assert.equal(response.status, 400, `${what}: status`);
  assert.equal(response.headers.get("location"), null, `${what}: must not redirect`);
  assert.match(response.headers.get("content-type") ?? "", /^text\/html/, what);
  return page;
}

/** The query of the URL a redirect response points at. */
function redirectQuery(response: Response): URLSearchParams {
  assert.equal(response.status, 303, "a redirect");
  return new URL(response.headers.get("location")!).searchParams;
}

/** A JWT with any header, unsigned or with a made-up signature. */
function rawJwt(header: Record<string, unknown>, payload: JWTPayload, signature = ""): string {
  const encode = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${encode(header)}.${encode(payload)}.${signature}`;
}

async function assertRefusedAtMcp(url: string, token: string, what: string): Promise<void> {
  const { status, wwwAuthenticate } = await mcpInitialize(url, token);
  assert.equal(status, 401, `${what}: status`);
  assert.match(wwwAuthenticate ?? "", /^Bearer resource_metadata="[^"]+"/, what);
}

// ---- 2. PKCE S256 required and enforced ---------------------------------------------------------

Deno.test("authorize refuses a request without code_challenge (PKCE is required)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const response = await fetch(authorizeUrl(gateway.base, { client_id: client.client_id }), {
      redirect: "manual",
    });
    await response.body?.cancel();
    const query = redirectQuery(response);
    assert.equal(query.get("error"), "invalid_request");
    assert.equal(query.get("code"), null);
    assert.equal(query.get("state"), "state-123");
    assert.equal(query.get("iss"), gateway.base);
  } finally {
    await gateway.close();
  }
});

Deno.test("authorize refuses code_challenge_method plain, and a missing method (which means plain)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    for (
      const params of [
        { code_challenge_method: "plain", code_challenge: verifier },
        { code_challenge_method: "plain", code_challenge: challenge },
        { code_challenge_method: undefined, code_challenge: challenge },
        { code_challenge_method: "s256", code_challenge: challenge },
      ]
    ) {
      const response = await fetch(authorizeUrl(gateway.base, { client_id: client.client_id, ...params }), {
        redirect: "manual",
      });
      await response.body?.cancel();
      const query = redirectQuery(response);
      assert.equal(query.get("error"), "invalid_request", JSON.stringify(params));
      assert.equal(query.get("code"), null);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token refuses a wrong code_verifier", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    const other = await pkce();
    for (const codeVerifier of [other.verifier, challenge]) {
      const answer = await tokenCall(gateway.base, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code,
        code_verifier: codeVerifier,
        redirect_uri: REDIRECT_URI,
      });
      assert.equal(answer.status, 400);
      assert.equal(answer.body.error, "invalid_grant");
      assert.equal(answer.body.access_token, undefined);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token refuses a code exchange without code_verifier", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    const answer = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, "invalid_request");
    assert.equal(answer.body.access_token, undefined);
  } finally {
    await gateway.close();
  }
});

// ---- 3. No implicit grant, no password grant -----------------------------------------------------

Deno.test("authorize refuses response_type token (implicit) and token refuses the password grant", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    for (const responseType of ["token", "code token", "id_token"]) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: client.client_id,
          code_challenge: challenge,
          response_type: responseType,
        }),
        { redirect: "manual" },
      );
      await response.body?.cancel();
      const location = response.headers.get("location") ?? "";
      assert.ok(!location.includes("#"), "nothing is returned in a fragment");
      assert.equal(redirectQuery(response).get("error"), "unsupported_response_type");
    }
    const asPublic = await tokenCall(gateway.base, {
      grant_type: "password",
      client_id: client.client_id,
      username: ALICE.username,
      password: ALICE.password,
    });
    assert.equal(asPublic.status, 400);
    assert.ok(["unauthorized_client", "unsupported_grant_type"].includes(asPublic.body.error!));
    const asConfidential = await tokenCall(
      gateway.base,
      { grant_type: "password", username: ALICE.username, password: ALICE.password },
      basic("ci-bot", CI_BOT.secret),
    );
    assert.equal(asConfidential.status, 400);
    assert.ok(["unauthorized_client", "unsupported_grant_type"].includes(asConfidential.body.error!));
  } finally {
    await gateway.close();
  }
});

// ---- 4. Codes single-use, bound to client, redirect_uri and resource --------------------------------

Deno.test("a replayed code fails and revokes the refresh token issued from it", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    const exchange = {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    };
    const first = await tokenCall(gateway.base, exchange);
    assert.equal(first.status, 200);
    assert.ok(first.body.refresh_token);

    const replay = await tokenCall(gateway.base, exchange);
    assert.equal(replay.status, 400);
    assert.equal(replay.body.error, "invalid_grant");
    assert.equal(replay.body.access_token, undefined);

    const refresh = await tokenCall(gateway.base, {
      grant_type: "refresh_token",
      client_id: client.client_id,
      refresh_token: first.body.refresh_token!,
    });
    assert.equal(refresh.status, 400, "the refresh token from the first exchange is revoked");
    assert.equal(refresh.body.error, "invalid_grant");
  } finally {
    await gateway.close();
  }
});

Deno.test("a replayed code also revokes the access token issued from it (RFC 6749 §4.1.2)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    const exchange = {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    };
    const first = await tokenCall(gateway.base, exchange);
    assert.equal(first.status, 200);
    assert.equal((await mcpInitialize(`${gateway.base}/mcp`, first.body.access_token)).status, 200);
    assert.equal((await tokenCall(gateway.base, exchange)).status, 400);
    await assertRefusedAtMcp(
      `${gateway.base}/mcp`,
      first.body.access_token!,
      "the access token issued from a replayed code",
    );
  } finally {
    await gateway.close();
  }
});

Deno.test("a code is bound to its client: another client cannot exchange it", async () => {
  const gateway = await startOAuthGateway();
  try {
    const victim = await register(gateway.base);
    const attacker = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(gateway.base, victim.client_id, { challenge });
    const stolen = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: attacker.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(stolen.status, 400);
    assert.equal(stolen.body.error, "invalid_grant");
    assert.equal(stolen.body.access_token, undefined);
  } finally {
    await gateway.close();
  }
});

Deno.test("a code is bound to its resource; the token's aud is that resource", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const client = await register(base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(base, client.client_id, {
      challenge,
      params: { resource: `${base}/mcp/mis` },
    });
    const exchange = {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    };
    for (const resource of [`${base}/mcp`, `${base}/mcp/other`, "https://evil.example/mcp"]) {
      const widened = await tokenCall(base, { ...exchange, resource });
      assert.equal(widened.status, 400, resource);
      assert.equal(widened.body.error, "invalid_target", resource);
    }
    const granted = await tokenCall(base, exchange);
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.equal(decodeJwt(granted.body.access_token!).aud, `${base}/mcp/mis`);
  } finally {
    await gateway.close();
  }
});

// ---- 5. Refresh tokens rotate; reuse revokes the family; bound to client, scope and resource ---------

Deno.test("a reused refresh token fails and revokes its whole family, including the newest token", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { clientId, tokens } = await signedInTokens(gateway.base);
    const refresh = (token: string) =>
      tokenCall(gateway.base, { grant_type: "refresh_token", client_id: clientId, refresh_token: token });
    const rotated1 = await refresh(tokens.refresh_token);
    assert.equal(rotated1.status, 200);
    assert.ok(rotated1.body.refresh_token && rotated1.body.refresh_token !== tokens.refresh_token);
    const rotated2 = await refresh(rotated1.body.refresh_token!);
    assert.equal(rotated2.status, 200);
    assert.ok(rotated2.body.refresh_token);

    const reuse = await refresh(tokens.refresh_token);
    assert.equal(reuse.status, 400);
    assert.equal(reuse.body.error, "invalid_grant");
    const family: [string, string][] = [
      ["newest", rotated2.body.refresh_token!],
      ["middle", rotated1.body.refresh_token!],
    ];
    for (const [name, token] of family) {
      const afterReuse = await refresh(token);
      assert.equal(afterReuse.status, 400, `the ${name} refresh token of the family is revoked`);
      assert.equal(afterReuse.body.error, "invalid_grant");
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("a refresh token is bound to its client, resource and scope", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const { clientId, tokens } = await signedInTokens(base);
    const other = await register(base);
    const byOther = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: other.client_id,
      refresh_token: tokens.refresh_token,
    });
    assert.equal(byOther.status, 400);
    assert.equal(byOther.body.error, "invalid_grant");

    const widened = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token,
      resource: `${base}/mcp/mis`,
    });
    assert.equal(widened.status, 400);
    assert.equal(widened.body.error, "invalid_target");

    const escalated = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: clientId,
      refresh_token: tokens.refresh_token,
      scope: "mcp admin",
    });
    if (escalated.status === 200) {
      assert.equal(escalated.body.scope, tokens.scope, "no scope beyond the original grant");
      assert.equal(decodeJwt(escalated.body.access_token!).scope, tokens.scope);
      assert.equal(decodeJwt(escalated.body.access_token!).aud, `${base}/mcp`);
    } else {
      assert.equal(escalated.status, 400);
      assert.equal(escalated.body.error, "invalid_scope");
    }
  } finally {
    await gateway.close();
  }
});

// ---- 1. Exact redirect_uri matching; no open redirects; 303 after POST -------------------------------

Deno.test("authorize with an unregistered redirect_uri shows an error page and never redirects", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    for (const redirectUri of ["https://evil.example/callback", "https://evil.example/callback?x=1", ""]) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: client.client_id,
          code_challenge: challenge,
          redirect_uri: redirectUri,
        }),
        { redirect: "manual" },
      );
      await assertErrorPageWithoutRedirect(response, redirectUri);
    }
    // A signed-in browser gets the same answer, and no code is issued.
    const browser = new ScriptedBrowser();
    await obtainCode(gateway.base, client.client_id, { browser, challenge });
    const signedIn = await browser.fetch(
      authorizeUrl(gateway.base, {
        client_id: client.client_id,
        code_challenge: challenge,
        redirect_uri: "https://evil.example/callback",
      }),
    );
    await assertErrorPageWithoutRedirect(signedIn, "signed in");
  } finally {
    await gateway.close();
  }
});

Deno.test("token refuses a redirect_uri that differs from the authorization request's", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base, {
      redirect_uris: [REDIRECT_URI, "http://127.0.0.1:53682/other"],
    });
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    for (const redirectUri of ["http://127.0.0.1:53682/other", "https://evil.example/callback"]) {
      const answer = await tokenCall(gateway.base, {
        grant_type: "authorization_code",
        client_id: client.client_id,
        code,
        code_verifier: verifier,
        redirect_uri: redirectUri,
      });
      assert.equal(answer.status, 400, redirectUri);
      assert.equal(answer.body.error, "invalid_grant", redirectUri);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token requires redirect_uri when the authorization request carried one (RFC 6749 §4.1.3)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    // Sent at /authorize, left out at /token: refused.
    const explicit = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge: explicit.challenge });
    const withoutRedirect = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: explicit.verifier,
    });
    assert.equal(withoutRedirect.status, 400, JSON.stringify(withoutRedirect.body));
    assert.ok(["invalid_grant", "invalid_request"].includes(withoutRedirect.body.error!));
    // Left out at both (the client has one redirect URI): fine.
    const implicit = await pkce();
    const second = await obtainCode(gateway.base, client.client_id, {
      challenge: implicit.challenge,
      params: { redirect_uri: undefined },
    });
    assert.equal(`${second.callback.origin}${second.callback.pathname}`, REDIRECT_URI);
    const granted = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code: second.code,
      code_verifier: implicit.verifier,
    });
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
  } finally {
    await gateway.close();
  }
});

Deno.test("a loopback redirect_uri may use another port (RFC 8252 §7.3), not another host, scheme, path or query", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const otherPort = "http://127.0.0.1:40001/callback";
    const { callback, code } = await obtainCode(gateway.base, client.client_id, {
      challenge,
      params: { redirect_uri: otherPort },
    });
    assert.equal(`${callback.origin}${callback.pathname}`, otherPort);
    const answer = await tokenCall(gateway.base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: otherPort,
    });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));

    for (
      const refused of [
        "http://localhost:53682/callback",
        "http://127.0.0.2:53682/callback",
        "http://[::1]:53682/callback",
        "http://evil.example:53682/callback",
        "https://127.0.0.1:53682/callback",
        "http://127.0.0.1:53682/callback/x",
        "http://127.0.0.1:53682/other",
        "http://127.0.0.1:53682/Callback",
        "http://127.0.0.1:53682/callback?x=1",
      ]
    ) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: client.client_id,
          code_challenge: challenge,
          redirect_uri: refused,
        }),
        { redirect: "manual" },
      );
      await assertErrorPageWithoutRedirect(response, refused);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("a loopback redirect_uri with a fragment or user info is refused (only the port may differ)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    for (
      const refused of [
        "http://127.0.0.1:40001/callback#fragment",
        "http://127.0.0.1:53682/callback#fragment",
        "http://user:pass@127.0.0.1:40001/callback",
      ]
    ) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: client.client_id,
          code_challenge: challenge,
          redirect_uri: refused,
        }),
        { redirect: "manual" },
      );
      await assertErrorPageWithoutRedirect(response, refused);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("authorize with an unknown or missing client shows an error page and never redirects", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { challenge } = await pkce();
    for (const clientId of ["no-such-client", undefined]) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: clientId,
          code_challenge: challenge,
          redirect_uri: "https://evil.example/callback",
        }),
        { redirect: "manual" },
      );
      await assertErrorPageWithoutRedirect(response, String(clientId));
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("login refuses a return_to outside /authorize (no open redirect)", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const browser = new ScriptedBrowser();
    const page = await (await browser.fetch(
      authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge }),
    )).text();
    const fields = formFields(page);
    assert.ok(fields.csrf && fields.return_to?.startsWith("/authorize?"));
    for (
      const returnTo of [
        "https://evil.example/",
        "//evil.example/authorize?x=1",
        "/\\evil.example/authorize?x=1",
        "javascript:alert(1)",
        "/login?x=1",
        "/authorize",
        "",
      ]
    ) {
      const response = await browser.post(`${gateway.base}/login`, {
        ...fields,
        ...ALICE,
        return_to: returnTo,
      });
      await response.body?.cancel();
      assert.equal(response.status, 400, `return_to ${JSON.stringify(returnTo)}`);
      assert.equal(response.headers.get("location"), null, `return_to ${JSON.stringify(returnTo)}`);
      assert.ok(
        !response.headers.getSetCookie().some((cookie) =>
          cookie.startsWith(`${gatewayCookieName("gatehouse", gateway.base)}=`)
        ),
        "no session is made",
      );
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("consent posted with a redirect_uri the client did not register never redirects", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const browser = new ScriptedBrowser();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const login = await (await browser.fetch(url)).text();
    const signIn = await browser.post(`${gateway.base}/login`, { ...formFields(login), ...ALICE });
    await signIn.body?.cancel();
    assert.equal(signIn.status, 303, "login answers a POST with 303");
    const consent = await (await browser.fetch(url)).text();
    const fields = formFields(consent);
    assert.ok(fields.csrf);
    const response = await browser.post(`${gateway.base}/authorize/consent`, {
      ...fields,
      redirect_uri: "https://evil.example/callback",
      decision: "allow",
    });
    await assertErrorPageWithoutRedirect(response, "tampered consent");
    const count = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM authorization_codes").get() as {
      n: number;
    };
    assert.equal(count.n, 0, "no code was issued");
  } finally {
    await gateway.close();
  }
});

// ---- Client authentication at the token endpoint ---------------------------------------------------

Deno.test("token answers 401 invalid_client for an unknown client", async () => {
  const gateway = await startOAuthGateway();
  try {
    const attempts: [Record<string, string>, Record<string, string>][] = [
      [{ grant_type: "client_credentials", client_id: "no-such-client" }, {}],
      [{ grant_type: "client_credentials", client_id: "no-such-client", client_secret: "x" }, {}],
      [{ grant_type: "client_credentials" }, basic("no-such-client", "x")],
      [{ grant_type: "authorization_code", code: "x", code_verifier: "y" }, {}],
    ];
    for (const [fields, headers] of attempts) {
      const answer = await tokenCall(gateway.base, fields, headers);
      assert.equal(answer.status, 401, JSON.stringify(fields));
      assert.equal(answer.body.error, "invalid_client");
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token answers 401 invalid_client for a confidential client with a wrong or missing secret", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const dynamic = await register(base, { token_endpoint_auth_method: "client_secret_basic" });
    assert.ok(dynamic.client_secret);
    const attempts: [string, Record<string, string>, Record<string, string>][] = [
      ["static, Basic, wrong", { grant_type: "client_credentials" }, basic("ci-bot", `${CI_BOT.secret}x`)],
      [
        "static, Basic, prefix",
        { grant_type: "client_credentials" },
        basic("ci-bot", CI_BOT.secret.slice(0, -1)),
      ],
      ["static, post, wrong", {
        grant_type: "client_credentials",
        client_id: "ci-bot",
        client_secret: "wrong",
      }, {}],
      ["static, no secret", { grant_type: "client_credentials", client_id: "ci-bot" }, {}],
      ["static, empty secret", { grant_type: "client_credentials" }, basic("ci-bot", "")],
      [
        "dynamic, wrong",
        { grant_type: "refresh_token", refresh_token: "x" },
        basic(dynamic.client_id, "wrong"),
      ],
      ["dynamic, no secret", {
        grant_type: "refresh_token",
        refresh_token: "x",
        client_id: dynamic.client_id,
      }, {}],
      ["malformed Basic", { grant_type: "client_credentials" }, { authorization: "Basic !!!not-base64" }],
    ];
    for (const [what, fields, headers] of attempts) {
      const answer = await tokenCall(base, fields, headers);
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.error, "invalid_client", what);
      assert.equal(answer.body.access_token, undefined, what);
    }
    // The right secret works, by either method.
    assert.equal(
      (await tokenCall(base, { grant_type: "client_credentials" }, basic("ci-bot", CI_BOT.secret))).status,
      200,
    );
    const posted = await tokenCall(base, {
      grant_type: "client_credentials",
      client_id: "ci-bot",
      client_secret: CI_BOT.secret,
    });
    assert.equal(posted.status, 200);
  } finally {
    await gateway.close();
  }
});

Deno.test("a failed Basic client authentication carries WWW-Authenticate: Basic (RFC 6749 §5.2)", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const answer = await tokenCall(
      gateway.base,
      { grant_type: "client_credentials" },
      basic("ci-bot", "wrong"),
    );
    assert.equal(answer.status, 401);
    assert.equal(answer.body.error, "invalid_client");
    assert.match(answer.headers.get("www-authenticate") ?? "", /^Basic\b/i);
  } finally {
    await gateway.close();
  }
});

Deno.test("a public client may not use client_credentials", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const answer = await tokenCall(gateway.base, {
      grant_type: "client_credentials",
      client_id: client.client_id,
    });
    assert.equal(answer.status, 400);
    assert.equal(answer.body.error, "unauthorized_client");
    assert.equal(answer.body.access_token, undefined);
  } finally {
    await gateway.close();
  }
});

// ---- 6. Access tokens bound to the RFC 8707 resource ------------------------------------------------

Deno.test("authorize with a resource that is not ours redirects invalid_target with iss and state", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    for (
      const resource of [
        "https://evil.example/mcp",
        `${gateway.base}/mcp/no-such-backend`,
        `${gateway.base}/mcp/`,
        `${gateway.base}/token`,
      ]
    ) {
      const response = await fetch(
        authorizeUrl(gateway.base, {
          client_id: client.client_id,
          code_challenge: challenge,
          resource,
          state: "keep-me",
        }),
        { redirect: "manual" },
      );
      await response.body?.cancel();
      const location = new URL(response.headers.get("location")!);
      assert.equal(`${location.origin}${location.pathname}`, REDIRECT_URI, resource);
      const query = redirectQuery(response);
      assert.equal(query.get("error"), "invalid_target", resource);
      assert.equal(query.get("state"), "keep-me");
      assert.equal(query.get("iss"), gateway.base);
      assert.equal(query.get("code"), null);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("an access token is accepted only by its audience; a /mcp token also by /mcp/{backend}", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const forOther = await ciBotToken(base, `${base}/mcp/other`);
    const forMis = await ciBotToken(base, `${base}/mcp/mis`);
    const forAll = await ciBotToken(base, `${base}/mcp`);
    await assertRefusedAtMcp(`${base}/mcp/mis`, forOther, "a /mcp/other token at /mcp/mis");
    await assertRefusedAtMcp(`${base}/mcp`, forMis, "a /mcp/mis token at /mcp");
    await assertRefusedAtMcp(`${base}/mcp`, forOther, "a /mcp/other token at /mcp");
    assert.equal((await mcpInitialize(`${base}/mcp/mis`, forMis)).status, 200, "its own audience");
    assert.equal((await mcpInitialize(`${base}/mcp/mis`, forAll)).status, 200, "a /mcp token at /mcp/mis");
  } finally {
    await gateway.close();
  }
});

// ---- Hostile access tokens ---------------------------------------------------------------------------

Deno.test("an access token with alg none is refused", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const real = await ciBotToken(base);
    const [header] = real.split(".");
    const claims = decodeJwt(real);
    const original = JSON.parse(new TextDecoder().decode(base64url.decode(header!)));
    for (const alg of ["none", "None", "NONE"]) {
      await assertRefusedAtMcp(`${base}/mcp`, rawJwt({ ...original, alg }, claims), `alg ${alg}`);
      await assertRefusedAtMcp(
        `${base}/mcp`,
        rawJwt({ ...original, alg }, claims, real.split(".")[2]),
        `alg ${alg} with the real signature`,
      );
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("an HS256 token signed with the public key as the secret is refused (algorithm confusion)", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const claims = decodeJwt(await ciBotToken(base));
    const jwksText = await (await fetch(`${base}/jwks.json`)).text();
    const jwk = (JSON.parse(jwksText).keys as JWK[])[0]!;
    const spki = await exportSPKI(await importJWK(jwk, "ES256") as CryptoKey);
    const x = base64url.decode(jwk.x!);
    const y = base64url.decode(jwk.y!);
    const secrets: [string, Uint8Array][] = [
      ["the JWKS document", new TextEncoder().encode(jwksText)],
      ["the JWK", new TextEncoder().encode(JSON.stringify(jwk))],
      ["the SPKI PEM", new TextEncoder().encode(spki)],
      ["the SPKI PEM without newline", new TextEncoder().encode(spki.trim())],
      ["the raw point", new Uint8Array([4, ...x, ...y])],
    ];
    for (const [what, secret] of secrets) {
      const forged = await new SignJWT({ ...claims, jti: crypto.randomUUID() })
        .setProtectedHeader({ alg: "HS256", typ: "at+jwt", kid: jwk.kid })
        .sign(secret);
      await assertRefusedAtMcp(`${base}/mcp`, forged, `HS256 keyed with ${what}`);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("an expired access token is refused", async () => {
  const gateway = await startOAuthGateway({ access_token_ttl: "1s" }, WITH_CI_BOT);
  try {
    const token = await ciBotToken(gateway.base);
    const { exp, iat } = decodeJwt(token);
    assert.equal(exp! - iat!, 1);
    const waitMs = exp! * 1000 - Date.now() + 50;
    assert.ok(waitMs <= 1_100, `bounded wait (${waitMs} ms)`);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, waitMs)));
    await assertRefusedAtMcp(`${gateway.base}/mcp`, token, "expired");
    const introspection = await tokenCall(
      gateway.base,
      { token },
      basic("ci-bot", CI_BOT.secret),
      "/introspect",
    );
    assert.equal(introspection.body.active, false);
  } finally {
    await gateway.close();
  }
});

Deno.test("an access token from another issuer is refused, even when signed with our key", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  const elsewhere = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    // Another gateway's genuine token: another key and another issuer.
    await assertRefusedAtMcp(`${base}/mcp`, await ciBotToken(elsewhere.base), "another gateway's token");
    const foreignClaims = decodeJwt(await ciBotToken(elsewhere.base));
    await assertRefusedAtMcp(
      `${base}/mcp`,
      await new SignJWT({ ...foreignClaims, aud: `${base}/mcp` })
        .setProtectedHeader({ alg: "ES256", typ: "at+jwt" })
        .sign(
          await importJWK(
            JSON.parse(await Deno.readTextFile(join(elsewhere.dir, "data", "signing-key.json"))),
            "ES256",
          ),
        ),
      "another gateway's key, our audience",
    );

    // Our own key (read from the test's data directory) isolates the issuer check from the signature.
    const privateJwk = JSON.parse(await Deno.readTextFile(join(gateway.dir, "data", "signing-key.json")));
    const key = await importJWK(privateJwk, "ES256");
    const { kid } = ((await (await fetch(`${base}/jwks.json`)).json()).keys as JWK[])[0]!;
    const claims = decodeJwt(await ciBotToken(base));
    const sign = (payload: JWTPayload) =>
      new SignJWT({ ...payload, jti: crypto.randomUUID() }).setProtectedHeader({
        alg: "ES256",
        typ: "at+jwt",
        kid,
      })
        .sign(key);
    assert.equal(
      (await mcpInitialize(`${base}/mcp`, await sign(claims))).status,
      200,
      "the forging is sound",
    );
    for (const iss of [elsewhere.base, "https://evil.example", `${base}/`, `${base}/mcp`]) {
      await assertRefusedAtMcp(`${base}/mcp`, await sign({ ...claims, iss }), `iss ${iss}`);
    }
    const { iss: _iss, ...noIssuer } = claims;
    await assertRefusedAtMcp(`${base}/mcp`, await sign(noIssuer), "no iss");
    await assertRefusedAtMcp(
      `${base}/mcp`,
      await sign({ ...claims, aud: "https://evil.example/mcp" }),
      "aud",
    );
    const notAnAccessToken = await new SignJWT({ ...claims, jti: crypto.randomUUID() })
      .setProtectedHeader({ alg: "ES256", typ: "JWT", kid }).sign(key);
    await assertRefusedAtMcp(`${base}/mcp`, notAnAccessToken, "typ JWT, not at+jwt (RFC 9068 §4)");
  } finally {
    await elsewhere.close();
    await gateway.close();
  }
});

Deno.test("a tampered access token (signature or claims) is refused", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const real = await ciBotToken(base);
    assert.equal((await mcpInitialize(`${base}/mcp`, real)).status, 200);
    const [header, payload, signature] = real.split(".") as [string, string, string];
    const signatureBytes = base64url.decode(signature);
    signatureBytes[10] = signatureBytes[10]! ^ 0x01;
    const claims = decodeJwt(real);
    const tampered: [string, string][] = [
      ["a flipped signature bit", `${header}.${payload}.${base64url.encode(signatureBytes)}`],
      ["no signature", `${header}.${payload}.`],
      ["a truncated signature", `${header}.${payload}.${signature.slice(0, -4)}`],
      [
        "another sub",
        rawJwt(JSON.parse(new TextDecoder().decode(base64url.decode(header))), {
          ...claims,
          sub: "alice",
          groups: ["admin"],
        }, signature),
      ],
      [
        "a later exp",
        `${header}.${base64url.encode(JSON.stringify({ ...claims, exp: claims.exp! + 86400 }))}.${signature}`,
      ],
      ["two parts", `${header}.${payload}`],
    ];
    for (const [what, token] of tampered) await assertRefusedAtMcp(`${base}/mcp`, token, what);
  } finally {
    await gateway.close();
  }
});

Deno.test("a revoked access token is refused; another client cannot revoke it", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const token = await ciBotToken(base);
    assert.equal((await mcpInitialize(`${base}/mcp`, token)).status, 200);

    const stranger = await register(base);
    const byStranger = await tokenRequest(base, { token, client_id: stranger.client_id }, {}, "/revoke");
    await byStranger.body?.cancel();
    assert.equal(byStranger.status, 200, "RFC 7009 §2.2: the answer does not tell");
    assert.equal((await mcpInitialize(`${base}/mcp`, token)).status, 200, "a stranger's revocation is void");

    const revoked = await tokenRequest(base, { token }, basic("ci-bot", CI_BOT.secret), "/revoke");
    await revoked.body?.cancel();
    assert.equal(revoked.status, 200);
    await assertRefusedAtMcp(`${base}/mcp`, token, "revoked");
    const introspection = await tokenCall(base, { token }, basic("ci-bot", CI_BOT.secret), "/introspect");
    assert.equal(introspection.body.active, false);
  } finally {
    await gateway.close();
  }
});

// ---- Bad input at the endpoints ----------------------------------------------------------------------

Deno.test("an oversize body is refused with 413 and changes nothing", async () => {
  const gateway = await startOAuthGateway({ max_body_size: "1KiB" }, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const padding = "x".repeat(2048);
    const token = await tokenRequest(
      base,
      { grant_type: "client_credentials", padding },
      basic("ci-bot", CI_BOT.secret),
    );
    assert.equal(token.status, 413);
    assert.equal((await token.json()).access_token, undefined);

    // Without a Content-Length (chunked), the limit holds while reading.
    const bytes = new TextEncoder().encode(
      new URLSearchParams({ grant_type: "client_credentials", padding }).toString(),
    );
    const streamed = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...basic("ci-bot", CI_BOT.secret) },
      body: new ReadableStream({
        start(controller) {
          controller.enqueue(bytes.slice(0, 1000));
          controller.enqueue(bytes.slice(1000));
          controller.close();
        },
      }),
    });
    await streamed.body?.cancel();
    assert.equal(streamed.status, 413);

    const registration = await fetch(`${base}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        redirect_uris: [REDIRECT_URI],
        client_name: padding,
        token_endpoint_auth_method: "none",
      }),
    });
    await registration.body?.cancel();
    assert.equal(registration.status, 413);
    const clients = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM oauth_clients").get() as {
      n: number;
    };
    assert.equal(clients.n, 0, "nothing was registered");
  } finally {
    await gateway.close();
  }
});

Deno.test("token, revoke and introspect refuse a body that is not a form with 400 invalid_request", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const credentials = basic("ci-bot", CI_BOT.secret);
    for (const path of ["/token", "/revoke", "/introspect"]) {
      for (
        const [type, body] of [
          ["application/json", JSON.stringify({ grant_type: "client_credentials", token: "x" })],
          ["text/plain", "grant_type=client_credentials&token=x"],
          [
            "multipart/form-data; boundary=x",
            '--x\r\nContent-Disposition: form-data; name="grant_type"\r\n\r\nclient_credentials\r\n--x--',
          ],
        ] as const
      ) {
        const response = await fetch(`${base}${path}`, {
          method: "POST",
          headers: { "content-type": type, ...credentials },
          body,
        });
        const answer = await response.json();
        assert.equal(response.status, 400, `${path} ${type}`);
        assert.equal(answer.error, "invalid_request", `${path} ${type}`);
      }
    }
    // A form with nothing useful in it.
    const empty = await tokenCall(base, {}, credentials);
    assert.equal(empty.status, 400);
    assert.equal(empty.body.error, "invalid_request");
    const garbage = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", ...credentials },
      body: "%%%&&&===\u0000",
    });
    assert.equal(garbage.status, 400);
    assert.equal((await garbage.json()).error, "invalid_request");
  } finally {
    await gateway.close();
  }
});

Deno.test("token refuses a repeated parameter with 400 invalid_request (RFC 6749 §3.2)", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const client = await register(gateway.base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(gateway.base, client.client_id, { challenge });
    const body = new URLSearchParams([
      ["grant_type", "authorization_code"],
      ["client_id", client.client_id],
      ["code", code],
      ["code", "another-code"],
      ["code_verifier", verifier],
      ["redirect_uri", REDIRECT_URI],
    ]);
    const response = await fetch(`${gateway.base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    });
    const answer = await response.json();
    assert.equal(response.status, 400, JSON.stringify(answer));
    assert.equal(answer.error, "invalid_request");
  } finally {
    await gateway.close();
  }
});

// ---- 8. CSRF, anti-framing, referrer policy, no-store ---------------------------------------------------

Deno.test("consent without the session's csrf token is refused with 403 and issues no code", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const browser = new ScriptedBrowser();
    const login = await (await browser.fetch(url)).text();
    await (await browser.post(`${gateway.base}/login`, { ...formFields(login), ...ALICE })).body?.cancel();
    const consent = await (await browser.fetch(url)).text();
    const { csrf, ...fields } = formFields(consent);
    assert.ok(csrf);

    const attempts: [string, ScriptedBrowser, Record<string, string>][] = [
      ["no csrf", browser, { ...fields, decision: "allow" }],
      ["a wrong csrf", browser, { ...fields, csrf: `${csrf}x`, decision: "allow" }],
      ["an empty csrf", browser, { ...fields, csrf: "", decision: "allow" }],
      ["no session (a cross-site form)", new ScriptedBrowser(), { ...fields, csrf, decision: "allow" }],
    ];
    for (const [what, who, form] of attempts) {
      const response = await who.post(`${gateway.base}/authorize/consent`, form);
      await response.body?.cancel();
      assert.equal(response.status, 403, what);
      assert.equal(response.headers.get("location"), null, what);
    }
    const codes = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM authorization_codes").get() as {
      n: number;
    };
    assert.equal(codes.n, 0);
    const consents = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM consents").get() as {
      n: number;
    };
    assert.equal(consents.n, 0, "no consent was recorded");

    const approved = await browser.post(`${gateway.base}/authorize/consent`, {
      ...fields,
      csrf,
      decision: "allow",
    });
    await approved.body?.cancel();
    assert.equal(approved.status, 303, "the real form goes through, with a 303");
  } finally {
    await gateway.close();
  }
});

Deno.test("login without the login csrf cookie, or with another csrf, is refused with 403", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const browser = new ScriptedBrowser();
    const fields = formFields(await (await browser.fetch(url)).text());
    const attempts: [string, ScriptedBrowser, Record<string, string>][] = [
      ["no cookie (a cross-site form)", new ScriptedBrowser(), { ...fields, ...ALICE }],
      ["a wrong csrf field", browser, { ...fields, csrf: "attacker-chosen", ...ALICE }],
      ["no csrf field", browser, { return_to: fields.return_to!, ...ALICE }],
    ];
    for (const [what, who, form] of attempts) {
      const response = await who.post(`${gateway.base}/login`, form);
      await response.body?.cancel();
      assert.equal(response.status, 403, what);
      assert.equal(response.headers.get("location"), null, what);
      const session = `${gatewayCookieName("gatehouse", gateway.base)}=`;
      assert.ok(!response.headers.getSetCookie().some((cookie) => cookie.startsWith(session)), what);
    }
    const sessions = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM browser_sessions").get() as {
      n: number;
    };
    assert.equal(sessions.n, 0, "no session was made");
  } finally {
    await gateway.close();
  }
});

Deno.test("login, consent and error pages forbid framing, referrers and outside assets", async () => {
  const gateway = await startOAuthGateway();
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, { client_id: client.client_id, code_challenge: challenge });
    const browser = new ScriptedBrowser();
    const loginResponse = await browser.fetch(url);
    const login = await loginResponse.text();
    const signIn = await browser.post(`${gateway.base}/login`, { ...formFields(login), ...ALICE });
    await signIn.body?.cancel();
    const consentResponse = await browser.fetch(url);
    const consent = await consentResponse.text();
    assert.ok(consent.includes('action="/authorize/consent"'));
    const stranger = new ScriptedBrowser();
    const strangerFields = formFields(await (await stranger.fetch(url)).text());
    const wrongPassword = await stranger.post(`${gateway.base}/login`, {
      ...strangerFields,
      username: ALICE.username,
      password: "not-the-password",
    });
    await wrongPassword.body?.cancel();
    assert.equal(wrongPassword.status, 401);
    const errorResponse = await fetch(`${gateway.base}/authorize?client_id=nope`);
    await errorResponse.body?.cancel();

    const pages: [string, Response][] = [
      ["login", loginResponse],
      ["consent", consentResponse],
      ["error", errorResponse],
      ["failed sign-in", wrongPassword],
    ];
    for (const [what, response] of pages) {
      const csp = response.headers.get("content-security-policy") ?? "";
      assert.match(csp, /frame-ancestors 'none'/, what);
      assert.match(csp, /default-src 'none'/, `${what}: no outside assets`);
      assert.equal(response.headers.get("x-frame-options"), "DENY", what);
      assert.equal(response.headers.get("referrer-policy"), "no-referrer", what);
      assert.match(response.headers.get("cache-control") ?? "", /no-store/, what);
    }
    for (const page of [login, consent]) {
      assert.ok(!/<(script|link|img|iframe)\b/i.test(page), "no external assets or scripts");
      assert.ok(!/\b(href|src|action)\s*=\s*"(https?:)?\/\//i.test(page), "no links to other origins");
    }
    const cookies = loginResponse.headers.getSetCookie();
    assert.ok(cookies.length > 0);
    for (const cookie of [...cookies, ...signIn.headers.getSetCookie()]) {
      assert.match(cookie, /HttpOnly/i, cookie);
      assert.match(cookie, /SameSite=(Lax|Strict)/i, cookie);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("over https every cookie is __Host- prefixed, Secure, path / and without Domain", async () => {
  const gateway = await startOAuthGateway({ public_url: "https://gate.example.test" });
  try {
    const client = await register(gateway.base);
    const { challenge } = await pkce();
    const url = authorizeUrl(gateway.base, {
      client_id: client.client_id,
      code_challenge: challenge,
      resource: "https://gate.example.test/mcp",
    });
    const browser = new ScriptedBrowser();
    const loginResponse = await browser.fetch(url);
    const fields = formFields(await loginResponse.text());
    const signIn = await browser.post(`${gateway.base}/login`, { ...fields, ...ALICE });
    await signIn.body?.cancel();
    assert.equal(signIn.status, 303);
    const cookies = [...loginResponse.headers.getSetCookie(), ...signIn.headers.getSetCookie()];
    assert.ok(cookies.length >= 2, "the login csrf cookie and the session cookie");
    for (const cookie of cookies) {
      assert.match(cookie, /^__Host-/, cookie);
      assert.match(cookie, /;\s*Secure/i, cookie);
      assert.match(cookie, /;\s*Path=\/(;|$)/i, cookie);
      assert.doesNotMatch(cookie, /;\s*Domain=/i, cookie);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("token responses, successful or not, carry Cache-Control: no-store", async () => {
  const gateway = await startOAuthGateway({}, WITH_CI_BOT);
  try {
    const { base } = gateway;
    const client = await register(base);
    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(base, client.client_id, { challenge });
    const exchange = {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    };
    const granted = await tokenCall(base, exchange);
    const answers: [string, { status: number; headers: Headers }][] = [
      ["authorization_code", granted],
      [
        "refresh_token",
        await tokenCall(base, {
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: granted.body.refresh_token!,
        }),
      ],
      [
        "client_credentials",
        await tokenCall(base, { grant_type: "client_credentials" }, basic("ci-bot", CI_BOT.secret)),
      ],
      ["replayed code", await tokenCall(base, exchange)],
      ["bad client", await tokenCall(base, { grant_type: "client_credentials" }, basic("ci-bot", "wrong"))],
      ["introspection", await tokenCall(base, { token: "x" }, basic("ci-bot", CI_BOT.secret), "/introspect")],
    ];
    for (const [what, answer] of answers) {
      assert.match(answer.headers.get("cache-control") ?? "", /\bno-store\b/, what);
    }
    assert.equal(answers[0]![1].status, 200);
    assert.equal(answers[1]![1].status, 200);
    assert.equal(answers[2]![1].status, 200);
  } finally {
    await gateway.close();
  }
});

// ---- 7. iss in the authorization response (RFC 9207) ----------------------------------------------------

Deno.test("the authorization response carries iss, on approval and on denial, after a 303", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const metadata = await (await fetch(`${base}/.well-known/oauth-authorization-server`)).json();
    const client = await register(base);
    const { challenge } = await pkce();
    const url = authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge, state: "xyz" });

    const browser = new ScriptedBrowser();
    const login = await (await browser.fetch(url)).text();
    await (await browser.post(`${base}/login`, { ...formFields(login), ...ALICE })).body?.cancel();
    const consent = await (await browser.fetch(url)).text();
    const denied = await browser.post(`${base}/authorize/consent`, {
      ...formFields(consent),
      decision: "deny",
    });
    await denied.body?.cancel();
    const deniedQuery = redirectQuery(denied);
    assert.equal(deniedQuery.get("error"), "access_denied");
    assert.equal(deniedQuery.get("iss"), metadata.issuer);
    assert.equal(deniedQuery.get("state"), "xyz");
    assert.equal(deniedQuery.get("code"), null);

    const approved = await authorizeAs(browser, url);
    await approved.body?.cancel();
    const approvedQuery = redirectQuery(approved);
    assert.ok(approvedQuery.get("code"));
    assert.equal(approvedQuery.get("iss"), metadata.issuer);
    assert.equal(approvedQuery.get("state"), "xyz");

    // Consent is remembered: the next authorization redirects at once, with iss too.
    const again = await browser.fetch(url);
    await again.body?.cancel();
    const againQuery = redirectQuery(again);
    assert.ok(againQuery.get("code"));
    assert.equal(againQuery.get("iss"), metadata.issuer);
  } finally {
    await gateway.close();
  }
});

// ---- 9. Codes and refresh tokens stored hashed ---------------------------------------------------------

Deno.test("codes, refresh tokens and sessions are stored hashed, and codes live at most 60 s", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const client = await register(base);
    const { challenge, verifier } = await pkce();
    const browser = new ScriptedBrowser();
    const url = authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge });
    const login = await (await browser.fetch(url)).text();
    const signIn = await browser.post(`${base}/login`, { ...formFields(login), ...ALICE });
    await signIn.body?.cancel();
    const sessionName = `${gatewayCookieName("gatehouse", base)}=`;
    const sessionCookie = signIn.headers.getSetCookie().map((cookie) =>
      cookie.startsWith(sessionName) ? cookie.slice(sessionName.length).split(";")[0] : undefined
    )
      .find((value) => value !== undefined);
    assert.ok(sessionCookie, "the session cookie");
    const approved = await authorizeAs(browser, url);
    await approved.body?.cancel();
    const code = redirectQuery(approved).get("code")!;
    const issuedBy = Date.now();
    const granted = await tokenCall(base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(granted.status, 200);
    const rotated = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: client.client_id,
      refresh_token: granted.body.refresh_token!,
    });
    assert.equal(rotated.status, 200);
    const secrets: Record<string, string> = {
      code,
      "first refresh token": granted.body.refresh_token!,
      "rotated refresh token": rotated.body.refresh_token!,
      "registration access token": client.registration_access_token!,
      "session cookie": sessionCookie,
    };
    const sha256 = async (value: string) =>
      base64url.encode(
        new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(value))),
      );

    const path = join(gateway.dir, "data", "gatehouse.db");
    const db = new DatabaseSync(path, { readOnly: true });
    let cells: string[];
    let codeRow: { code_hash: string; expires_at: number } | undefined;
    let refreshHashes: string[];
    try {
      const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as {
        name: string;
      }[];
      cells = tables.flatMap(({ name }) =>
        (db.prepare(`SELECT * FROM "${name}"`).all() as Record<string, unknown>[]).flatMap((row) =>
          Object.values(row).map(String)
        )
      );
      codeRow = db.prepare("SELECT code_hash, expires_at FROM authorization_codes").get() as typeof codeRow;
      refreshHashes = (db.prepare("SELECT token_hash FROM refresh_tokens").all() as { token_hash: string }[])
        .map((row) => row.token_hash);
    } finally {
      db.close();
    }
    for (const [what, secret] of Object.entries(secrets)) {
      assert.ok(!cells.some((cell) => cell.includes(secret)), `the ${what} is not stored as is`);
    }
    assert.equal(codeRow?.code_hash, await sha256(code), "the code is stored as its hash");
    assert.ok(codeRow!.expires_at <= issuedBy + 60_000, "a code lives at most 60 s");
    assert.ok(refreshHashes.includes(await sha256(granted.body.refresh_token!)));
    assert.ok(refreshHashes.includes(await sha256(rotated.body.refresh_token!)));

    // Nor anywhere in the files (the WAL holds recent pages).
    for (const file of [path, `${path}-wal`]) {
      let bytes: Uint8Array;
      try {
        bytes = await Deno.readFile(file);
      } catch (error) {
        if (error instanceof Deno.errors.NotFound) continue;
        throw error;
      }
      const text = new TextDecoder("latin1").decode(bytes);
      for (const [what, secret] of Object.entries(secrets)) {
        assert.ok(!text.includes(secret), `the ${what} is not in ${file}`);
      }
    }
  } finally {
    await gateway.close();
  }
});
