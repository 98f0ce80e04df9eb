/**
 * Sign-in with upstream identity providers, end to end: an in-process gateway on 127.0.0.1, a real OpenID
 * provider (oauth2-mock-server) and a GitHub-shaped fake, a scripted browser going back and forth between
 * them, and an MCP client's code flow finished at /token.
 */
import assert from "node:assert/strict";
import { base64url, decodeJwt } from "jose";
import { type MutableToken, OAuth2Server } from "npm:oauth2-mock-server@9.3.0";
import type { AuditLog, AuditRow } from "../../src/audit/audit.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { startTestGateway, type TestGateway, within } from "../helpers/mcp_clients.ts";
import { authorizeUrl, pkce, REDIRECT_URI, register, tokenCall } from "../oauth/_flow.ts";
import { gatewayCookieName } from "../../src/core/cookies.ts";

/** Every test's bound: a sign-in that hangs must fail the test, not the suite. */
const TEST_BOUND_MS = 30_000;
const OIDC_CLIENT_ID = "gatehouse-at-corp";
const GITHUB_CLIENT_ID = "Iv1.gatehouse";
const GITHUB_CLIENT_SECRET = "github-client-secret-for-tests";
const SESSION_COOKIE = "gatehouse";

/**
 * The registry of a gateway with OAuth on, no local users, `login.providers` as given, `gateway` settings
 * merged in, and one (never started) backend.
 */
function registryWith(providers: Record<string, unknown>, gateway: Record<string, unknown> = {}) {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s", ...gateway },
    login: { providers },
    backends: { mis: { stdio: { command: "true" } } },
  };
}

function gatewayWith(
  providers: Record<string, unknown>,
  gateway: Record<string, unknown> = {},
): Promise<TestGateway> {
  return startTestGateway(registryWith(providers, gateway));
}

// ---------------------------------------------------------------------------------------------------
// OpenID Connect: oauth2-mock-server

interface OidcWorld {
  readonly base: string;
  readonly mock: OAuth2Server;
  /** The gateway's log lines, parsed. */
  readonly logs: Record<string, unknown>[];
  readonly audit: AuditLog;
  /** Claims set on every ID token the mock signs from now on (after its own: `sub`, `aud`, `nonce`). */
  readonly idTokenClaims: Record<string, unknown>;
  /** The gateway's store (to look at `pending_logins`). */
  readonly store: TestGateway["gateway"]["store"];
  /** Applies a registry whose provider `corp` has these `allow` lists instead. */
  reallow(allow: Record<string, unknown>): Promise<void>;
}

/**
 * Starts the mock OpenID provider and a gateway with provider `corp` pointing at it (and `gateway`
 * settings merged in); stops both after. `boundMs` bounds the test (default `TEST_BOUND_MS`).
 */
async function withOidc(
  allow: Record<string, unknown>,
  work: (world: OidcWorld) => Promise<void>,
  options: { gateway?: Record<string, unknown>; boundMs?: number } = {},
): Promise<void> {
  const gateway = options.gateway ?? {};
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate("RS256");
  await mock.start(0, "127.0.0.1");
  const idTokenClaims: Record<string, unknown> = {};
  // The mock signs the access token first and the ID token second, both through this hook (so `once`
  // would only reach the access token); the ID token is the one whose audience is our client.
  const onSigning = (token: MutableToken) => {
    if (token.payload.aud === OIDC_CLIENT_ID) Object.assign(token.payload, idTokenClaims);
  };
  mock.service.on("beforeTokenSigning", onSigning);
  const providers = (allow: Record<string, unknown>) => ({
    corp: {
      type: "oidc",
      label: "Corp SSO",
      issuer: mock.issuer.url!,
      client_id: OIDC_CLIENT_ID,
      client_secret: "oidc-client-secret-for-tests",
      groups_claim: "groups",
      allow,
    },
  });
  let running: TestGateway | undefined;
  try {
    running = await gatewayWith(providers(allow), gateway);
    const started = running;
    await within(
      options.boundMs ?? TEST_BOUND_MS,
      work({
        base: started.gateway.url,
        mock,
        idTokenClaims,
        logs: started.logs,
        audit: started.gateway.audit,
        store: started.gateway.store,
        reallow: (next) => started.reload(registryWith(providers(next), gateway)),
      }),
      "the test",
    );
  } finally {
    mock.service.off("beforeTokenSigning", onSigning);
    try {
      await running?.close();
    } finally {
      await mock.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// GitHub: a fake with GitHub's (Enterprise Server) paths and quirks

interface GitHubUser {
  readonly login: string;
  /** GitHub's permanent account id (4242 unless given); a test changes it to play a login taken over. */
  id?: number;
  readonly email: string | null;
  readonly orgs: readonly string[];
}

interface FakeGitHub {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** The query of every authorization request. */
  readonly authorizations: URLSearchParams[];
  /** Makes the token endpoint find the next code verifier wrong, as if it did not match the challenge. */
  rejectVerifier: boolean;
  /** The `error` of every token endpoint refusal. */
  readonly tokenErrors: string[];
  close(): Promise<void>;
}

async function s256(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url.encode(new Uint8Array(digest));
}

/**
 * GitHub's OAuth web flow and the two API calls Gatehouse makes, for one `user`. Like GitHub, token
 * endpoint errors come back as 200 with an `error` member, and JSON only when asked for.
 */
function startFakeGitHub(user: GitHubUser): FakeGitHub {
  const codes = new Map<string, { challenge: string; redirectUri: string }>();
  const tokens = new Set<string>();
  const fake = {
    url: "",
    authorizations: [] as URLSearchParams[],
    rejectVerifier: false,
    tokenErrors: [] as string[],
    close: () => server.shutdown(),
  };
  const tokenError = (error: string, description: string) => {
    fake.tokenErrors.push(error);
    return Response.json({ error, error_description: description, error_uri: "https://docs.github.com/" });
  };

  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    const url = new URL(request.url);
    if (request.method === "GET" && url.pathname === "/login/oauth/authorize") {
      const query = url.searchParams;
      fake.authorizations.push(query);
      const redirectUri = query.get("redirect_uri") ?? "";
      const challenge = query.get("code_challenge");
      if (query.get("client_id") !== GITHUB_CLIENT_ID || !redirectUri) {
        return new Response("unknown client or no redirect_uri", { status: 400 });
      }
      if (!challenge || query.get("code_challenge_method") !== "S256") {
        return new Response("PKCE with S256 is required here", { status: 400 });
      }
      const code = crypto.randomUUID();
      codes.set(code, { challenge, redirectUri });
      const back = new URL(redirectUri);
      back.searchParams.set("code", code);
      back.searchParams.set("state", query.get("state") ?? "");
      return Response.redirect(back, 302);
    }
    if (request.method === "POST" && url.pathname === "/login/oauth/access_token") {
      const form = new URLSearchParams(await request.text());
      const code = form.get("code") ?? "";
      const grant = codes.get(code);
      codes.delete(code);
      if (form.get("client_id") !== GITHUB_CLIENT_ID || form.get("client_secret") !== GITHUB_CLIENT_SECRET) {
        return tokenError(
          "incorrect_client_credentials",
          "The client_id and/or client_secret are incorrect.",
        );
      }
      if (!grant || form.get("redirect_uri") !== grant.redirectUri) {
        return tokenError("bad_verification_code", "The code passed is incorrect or expired.");
      }
      const verifier = form.get("code_verifier") ?? "";
      if (fake.rejectVerifier || !verifier || (await s256(verifier)) !== grant.challenge) {
        fake.rejectVerifier = false;
        return tokenError("bad_verification_code", "The code_verifier does not match the code_challenge.");
      }
      const accessToken = `gho_${crypto.randomUUID().replaceAll("-", "")}`;
      tokens.add(accessToken);
      const answer = { access_token: accessToken, token_type: "bearer", scope: "read:org,read:user" };
      if ((request.headers.get("accept") ?? "").includes("application/json")) return Response.json(answer);
      return new Response(new URLSearchParams(answer).toString(), {
        headers: { "content-type": "application/x-www-form-urlencoded; charset=utf-8" },
      });
    }
    if (request.method === "GET" && url.pathname.startsWith("/api/v3/")) {
      const authorization = request.headers.get("authorization") ?? "";
      if (!tokens.has(authorization.replace(/^(bearer|token) /i, ""))) {
        return Response.json({ message: "Bad credentials" }, { status: 401 });
      }
      if (url.pathname === "/api/v3/user") {
        return Response.json({ login: user.login, id: user.id ?? 4242, email: user.email, type: "User" });
      }
      if (url.pathname === "/api/v3/user/orgs") {
        return Response.json(user.orgs.map((login, index) => ({ login, id: 100 + index })));
      }
    }
    return Response.json({ message: "Not Found" }, { status: 404 });
  });
  fake.url = `http://127.0.0.1:${server.addr.port}`;
  return fake;
}

/** Starts the GitHub fake and a gateway with provider `github` pointing at it; stops both after. */
async function withGitHub(
  user: GitHubUser,
  allow: Record<string, unknown>,
  work: (
    world: { base: string; github: FakeGitHub; logs: Record<string, unknown>[]; audit: AuditLog },
  ) => Promise<void>,
): Promise<void> {
  const github = startFakeGitHub(user);
  let gateway: TestGateway | undefined;
  try {
    gateway = await gatewayWith({
      github: {
        type: "github",
        label: "GitHub Enterprise",
        client_id: GITHUB_CLIENT_ID,
        client_secret: GITHUB_CLIENT_SECRET,
        authorization_endpoint: `${github.url}/login/oauth/authorize`,
        token_endpoint: `${github.url}/login/oauth/access_token`,
        api_url: `${github.url}/api/v3`,
        allow,
      },
    });
    await within(
      TEST_BOUND_MS,
      work({ base: gateway.gateway.url, github, logs: gateway.logs, audit: gateway.gateway.audit }),
      "the test",
    );
  } finally {
    try {
      await gateway?.close();
    } finally {
      await github.close();
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// The browser's and the MCP client's steps

/** True when `response` sets the gateway's browser session cookie. */
function setsSession(response: Response): boolean {
  // The gateway's cookie names carry its port (see gatewayCookieName()): the response says which gateway.
  const name = gatewayCookieName(SESSION_COOKIE, new URL(response.url).origin);
  return response.headers.getSetCookie().some((line) => line.startsWith(`${name}=`));
}

/** The absolute `Location` of a redirect, checking its status. */
async function locationOf(response: Response, status: number, base: string): Promise<URL> {
  const body = await response.text();
  assert.equal(response.status, status, `expected ${status}, got ${response.status}: ${body}`);
  const location = response.headers.get("location");
  assert.ok(location, "a redirect has a Location");
  return new URL(location, base);
}

/**
 * An MCP client's authorization request, left with the browser at the sign-in page; then the browser
 * follows the "Sign in with {label}" link to the provider and back. Returns where the provider sent the
 * browser (the gateway's callback) and the gateway's answer there, unread.
 */
async function signInThroughProvider(
  browser: ScriptedBrowser,
  options: {
    base: string;
    authorizationUrl: string;
    provider: string;
    label: string;
    providerOrigin: string;
  },
): Promise<{ callbackUrl: URL; callback: Response }> {
  const { base } = options;
  const loginPage = await browser.fetch(options.authorizationUrl);
  const page = await loginPage.text();
  assert.equal(loginPage.status, 200, page);
  assert.ok(page.includes(`Sign in with ${options.label}</a>`), `no link for ${options.label}: ${page}`);
  const href = new RegExp(`href="(/login/${options.provider}\\?return_to=[^"]+)"`).exec(page)?.[1];
  assert.ok(href, `no /login/${options.provider} link in ${page}`);

  const toProvider = await locationOf(await browser.fetch(new URL(href, base).href), 303, base);
  assert.equal(toProvider.origin, options.providerOrigin, "the gateway sends the browser to the provider");
  const callbackUrl = await locationOf(await browser.fetch(toProvider.href), 302, options.providerOrigin);
  assert.equal(
    `${callbackUrl.origin}${callbackUrl.pathname}`,
    `${base}/login/${options.provider}/callback`,
    "the provider sends the browser back to the gateway",
  );
  return { callbackUrl, callback: await browser.fetch(callbackUrl.href) };
}

/** Asserts that `callback` is the refusal page and started no session. */
async function assertRefused(callback: Response, why: RegExp): Promise<void> {
  const page = await callback.text();
  assert.equal(callback.status, 403, page);
  assert.match(callback.headers.get("content-type") ?? "", /^text\/html/);
  assert.match(page, /Cannot sign in/);
  assert.match(page, why);
  assert.equal(callback.headers.get("location"), null, "no redirect");
  assert.equal(setsSession(callback), false, "no browser session");
}

/** True when the browser, at `authorizationUrl`, is asked for consent (it has a session) rather than to sign in. */
async function hasSession(browser: ScriptedBrowser, authorizationUrl: string): Promise<boolean> {
  const response = await browser.fetch(authorizationUrl);
  const page = await response.text();
  assert.equal(response.status, 200, page);
  return page.includes('action="/authorize/consent"');
}

/**
 * From a completed provider callback (a 303 back to /authorize), through consent to the client's code,
 * then the code exchange; returns the access token's claims.
 */
async function consentAndRedeem(
  browser: ScriptedBrowser,
  options: { base: string; callback: Response; clientId: string; verifier: string },
): Promise<Record<string, unknown>> {
  const { base } = options;
  assert.ok(setsSession(options.callback), "the callback starts a browser session");
  const backToAuthorize = await locationOf(options.callback, 303, base);
  assert.equal(backToAuthorize.origin, base);
  assert.equal(backToAuthorize.pathname, "/authorize");
  assert.equal(backToAuthorize.searchParams.get("client_id"), options.clientId, "return_to kept the request");

  const consent = await browser.fetch(backToAuthorize.href);
  const page = await consent.text();
  assert.ok(page.includes('action="/authorize/consent"'), `expected the consent page, got: ${page}`);
  const toClient = await locationOf(
    await browser.post(`${base}/authorize/consent`, { ...formFields(page), decision: "allow" }),
    303,
    base,
  );
  assert.equal(`${toClient.origin}${toClient.pathname}`, REDIRECT_URI);
  const code = toClient.searchParams.get("code");
  assert.ok(code, `no code in ${toClient}`);

  const answer = await tokenCall(base, {
    grant_type: "authorization_code",
    client_id: options.clientId,
    code,
    code_verifier: options.verifier,
    redirect_uri: REDIRECT_URI,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return decodeJwt(answer.body.access_token!);
}

/** The sign-in audit rows, oldest first, as [kind, subject, detail]. */
function signInRows(audit: AuditLog): [AuditRow["kind"], string | undefined, Record<string, unknown>][] {
  return audit.recent(100, ["sign_in", "sign_in_failed"]).reverse()
    .map((row) => [row.kind, row.subject, row.detail]);
}

/** A registered public MCP client and its authorization request URL. */
async function mcpClient(base: string): Promise<{ clientId: string; verifier: string; url: string }> {
  const { client_id: clientId } = await register(base, { client_name: "Provider test client" });
  const { verifier, challenge } = await pkce();
  return { clientId, verifier, url: authorizeUrl(base, { client_id: clientId, code_challenge: challenge }) };
}

// ---------------------------------------------------------------------------------------------------
// OpenID Connect

Deno.test("UpstreamLogins (oidc) signs a member of an allowed group in: discovery, PKCE, ID token with nonce, access token for corp:<sub>", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base, mock, idTokenClaims, audit }) => {
    Object.assign(idTokenClaims, {
      sub: "u-1001",
      preferred_username: "alice",
      email: "alice@corp.example",
      email_verified: true,
      groups: ["staff", "engineering"],
    });
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callbackUrl, callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    assert.ok(callbackUrl.searchParams.get("code"));
    const claims = await consentAndRedeem(browser, { base, callback, ...client });

    assert.equal(claims.sub, "corp:u-1001");
    assert.equal(claims.name, "alice", "name is preferred_username");
    assert.equal(claims.email, "alice@corp.example");
    assert.deepEqual(claims.groups, ["staff", "engineering"]);
    assert.equal(claims.provider, "corp");
    assert.equal(claims.client_id, client.clientId);
    assert.equal(claims.aud, `${base}/mcp`);
    assert.deepEqual(signInRows(audit), [
      ["sign_in", "corp:u-1001", {
        method: "provider",
        provider: "corp",
        address: "127.0.0.1",
        name: "alice",
      }],
    ]);
  });
});

Deno.test("UpstreamLogins (oidc) sends PKCE S256, a nonce and the openid scope to the provider", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base }) => {
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    await (await browser.fetch(client.url)).body?.cancel();
    const returnTo = `/authorize?${new URL(client.url).searchParams}`;
    const response = await browser.fetch(`${base}/login/corp?return_to=${encodeURIComponent(returnTo)}`);
    const toProvider = await locationOf(response, 303, base);
    const query = toProvider.searchParams;
    assert.equal(query.get("client_id"), OIDC_CLIENT_ID);
    assert.equal(query.get("redirect_uri"), `${base}/login/corp/callback`);
    assert.equal(query.get("response_type"), "code");
    assert.equal(query.get("code_challenge_method"), "S256");
    assert.match(query.get("code_challenge") ?? "", /^[A-Za-z0-9_-]{43}$/);
    assert.ok((query.get("state") ?? "").length >= 20, "an unguessable state");
    assert.ok((query.get("nonce") ?? "").length >= 20, "an unguessable nonce");
    assert.ok((query.get("scope") ?? "").split(" ").includes("openid"));
  });
});

Deno.test("UpstreamLogins (oidc) refuses a user outside allow.groups: a 403 page and no session", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base, mock, idTokenClaims, audit }) => {
    Object.assign(idTokenClaims, {
      sub: "u-2002",
      preferred_username: "oscar",
      email: "oscar@elsewhere.example",
      groups: ["other"],
    });
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    await assertRefused(callback, /may not sign in here/);
    assert.equal(await hasSession(browser, client.url), false, "still asked to sign in");
    assert.deepEqual(signInRows(audit), [
      ["sign_in_failed", "corp:u-2002", {
        method: "provider",
        provider: "corp",
        address: "127.0.0.1",
        reason: "not_allowed",
        name: "oscar",
      }],
    ]);
  });
});

/** Signs in once per case, each in a fresh browser with exactly those ID token claims; checks who gets in. */
async function assertAdmits(
  world: OidcWorld,
  cases: readonly (readonly [Record<string, unknown>, boolean])[],
): Promise<void> {
  const { base, mock, idTokenClaims } = world;
  const client = await mcpClient(base);
  for (const [claims, allowed] of cases) {
    for (const key of Object.keys(idTokenClaims)) delete idTokenClaims[key];
    Object.assign(idTokenClaims, { groups: [], ...claims });
    const { callback } = await signInThroughProvider(new ScriptedBrowser(), {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    await callback.body?.cancel();
    assert.equal(callback.status, allowed ? 303 : 403, JSON.stringify(claims));
    assert.equal(setsSession(callback), allowed, JSON.stringify(claims));
  }
}

// OIDC Core §5.7: only `sub` (with the issuer) identifies the user; `preferred_username` is theirs to choose.
Deno.test("UpstreamLogins (oidc) matches allow.users by sub, never by preferred_username", async () => {
  await withOidc({ users: ["u-carol", "carol"] }, (world) =>
    assertAdmits(world, [
      [{ sub: "u-carol", preferred_username: "someone" }, true],
      [{ sub: "carol" }, true],
      [{ sub: "u-mallory", preferred_username: "carol" }, false],
      [{ sub: "u-mallory", preferred_username: "u-carol" }, false],
      [{ sub: "U-CAROL" }, false],
    ]));
});

// OIDC Core §5.1: `email` is the user's to claim unless `email_verified` is true.
Deno.test("UpstreamLogins (oidc) counts an email for allow.users and allow.emails only when email_verified is true", async () => {
  const allow = { users: ["ivan@partner.example"], emails: ["dave@partner.example", "@corp.example"] };
  await withOidc(allow, (world) =>
    assertAdmits(world, [
      [{ sub: "u-erin2", email: "erin2@corp.example" }, false],
      [{ sub: "u-erin3", email: "erin3@corp.example", email_verified: "true" }, false],
      [{ sub: "u-judy", preferred_username: "ivan@partner.example" }, false],
      [{ sub: "u-ivan2", email: "ivan@partner.example", email_verified: false }, false],
      [{ sub: "u-ivan3", email: "ivan@partner.example" }, false],
      [{ sub: "u-ivan4", email: "ivan@partner.example", email_verified: "true" }, false],
      [{ sub: "u-ivan", email: "Ivan@Partner.example", email_verified: true }, true],
      [{ sub: "u-dave", email: "dave@partner.example", email_verified: true }, true],
      [{ sub: "u-erin", email: "erin@corp.example", email_verified: true }, true],
      [{ sub: "u-frank", email: "frank@partner.example", email_verified: true }, false],
      [{ sub: "u-grace", email: "grace@notcorp.example", email_verified: true }, false],
      [{ sub: "u-heidi", email: "heidi@corp.example.evil.test", email_verified: true }, false],
    ]));
});

Deno.test("UpstreamLogins.stillAllowed() decides by the subject in the user id and a verified email, not the name", async () => {
  await withOidc(
    { users: ["u-1001", "u-2002", "u-3003"] },
    async ({ base, mock, idTokenClaims, reallow }) => {
      const client = await mcpClient(base);
      const signIn = async (claims: Record<string, unknown>) => {
        for (const key of Object.keys(idTokenClaims)) delete idTokenClaims[key];
        Object.assign(idTokenClaims, { groups: [], ...claims });
        const browser = new ScriptedBrowser();
        const { callback } = await signInThroughProvider(browser, {
          base,
          authorizationUrl: client.url,
          provider: "corp",
          label: "Corp SSO",
          providerOrigin: new URL(mock.issuer.url!).origin,
        });
        await callback.body?.cancel();
        assert.equal(callback.status, 303, JSON.stringify(claims));
        assert.equal(await hasSession(browser, client.url), true);
        return { browser, url: client.url };
      };
      const alice = await signIn({ sub: "u-1001", preferred_username: "alice" });
      const bob = await signIn({
        sub: "u-2002",
        preferred_username: "bob",
        email: "bob@corp.example",
        email_verified: true,
      });
      const carol = await signIn({ sub: "u-3003", preferred_username: "carol", email: "carol@corp.example" });

      await reallow({ users: ["alice", "bob@corp.example"], emails: ["carol@corp.example"] });
      assert.equal(
        await hasSession(alice.browser, alice.url),
        false,
        "alice is a display name, not a subject",
      );
      assert.equal(await hasSession(carol.browser, carol.url), false, "carol's email was never verified");
      assert.equal(await hasSession(bob.browser, bob.url), true, "bob's verified email is listed");
    },
  );
});

Deno.test("UpstreamLogins (oidc) refuses a replayed callback: state is single-use", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base, mock, idTokenClaims, audit }) => {
    Object.assign(idTokenClaims, { sub: "u-1001", preferred_username: "alice", groups: ["staff"] });
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callbackUrl, callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    await callback.body?.cancel();
    assert.equal(callback.status, 303, "the first use signs in");
    assert.ok(setsSession(callback));

    // The same callback URL again, in the same browser and in another one.
    await assertRefused(await browser.fetch(callbackUrl.href), /expired or was already used/);
    const elsewhere = new ScriptedBrowser();
    await assertRefused(await elsewhere.fetch(callbackUrl.href), /expired or was already used/);
    assert.equal(await hasSession(elsewhere, client.url), false);
    const refused = {
      method: "provider",
      provider: "corp",
      address: "127.0.0.1",
      reason: "expired_or_reused_state",
    };
    assert.deepEqual(signInRows(audit).map(([kind, subject, detail]) => [kind, subject, detail.reason]), [
      ["sign_in", "corp:u-1001", undefined],
      ["sign_in_failed", undefined, refused.reason],
      ["sign_in_failed", undefined, refused.reason],
    ]);
    assert.deepEqual(signInRows(audit)[1]![2], refused);
  });
});

Deno.test("UpstreamLogins (oidc) refuses an ID token whose nonce is not the one it sent", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base, mock, idTokenClaims, logs }) => {
    Object.assign(idTokenClaims, {
      sub: "u-1001",
      preferred_username: "alice",
      groups: ["staff"],
      nonce: "a-nonce-from-some-other-sign-in",
    });
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    await assertRefused(callback, /did not sign you in/);
    assert.equal(await hasSession(browser, client.url), false);
    const failure = logs.find((line) => line.msg === "upstream sign-in failed");
    assert.equal(failure?.provider, "corp");
    assert.match(JSON.stringify(failure?.error), /nonce/, "refused for the nonce, not something else");
  });
});

// RFC 6749 §10.12, RFC 9700 §4.7: the redirection endpoint must be bound to the browser that started the
// flow, or an attacker hands a victim the callback of the attacker's own sign-in (login CSRF).
Deno.test("UpstreamLogins (oidc) refuses a callback completed in a browser other than the one that started it", async () => {
  await withOidc({ groups: ["staff"] }, async ({ base, mock, idTokenClaims }) => {
    Object.assign(idTokenClaims, { sub: "u-6666", preferred_username: "mallory", groups: ["staff"] });
    const client = await mcpClient(base);
    // The attacker signs in at the provider but stops before the gateway's callback...
    const attacker = new ScriptedBrowser();
    await (await attacker.fetch(client.url)).body?.cancel();
    const returnTo = `/authorize?${new URL(client.url).searchParams}`;
    const toProvider = await locationOf(
      await attacker.fetch(`${base}/login/corp?return_to=${encodeURIComponent(returnTo)}`),
      303,
      base,
    );
    const callbackUrl = await locationOf(await attacker.fetch(toProvider.href), 302, mock.issuer.url!);
    // ...and gets the victim's browser to open it.
    const victim = new ScriptedBrowser();
    const callback = await victim.fetch(callbackUrl.href);
    await assertRefused(callback, /./);
    assert.equal(await hasSession(victim, client.url), false, "the victim is not signed in as mallory");
  });
});

// ---------------------------------------------------------------------------------------------------
// Sign-ins waiting for their callback: kept per browser, throttled per address, never pushed out by others

/** The sign-in gateway behind a proxy on 127.0.0.1, so that tests can speak for many client addresses. */
const BEHIND_PROXY = { trusted_proxies: ["127.0.0.0/8"] };

/** `GET /login/corp` (back to /status after) from `address`, as `browser` or as a fresh cookieless one. */
function startSignIn(base: string, address: string, browser?: ScriptedBrowser): Promise<Response> {
  const url = `${base}/login/corp?return_to=${encodeURIComponent("/status")}`;
  const init = { headers: { "x-forwarded-for": address } };
  return browser ? browser.fetch(url, init) : fetch(url, { ...init, redirect: "manual" });
}

/** Starts a sign-in as `browser` from `address` and signs in at the provider: the callback URL, not yet opened. */
async function pendingCallback(
  world: OidcWorld,
  browser: ScriptedBrowser,
  address: string,
): Promise<URL> {
  const toProvider = await locationOf(await startSignIn(world.base, address, browser), 303, world.base);
  return await locationOf(await fetch(toProvider.href, { redirect: "manual" }), 302, world.mock.issuer.url!);
}

/** Opens `callbackUrl` in `browser` from `address`; asserts that it signs in and goes back to /status. */
async function assertCompletes(browser: ScriptedBrowser, callbackUrl: URL, address: string): Promise<void> {
  const callback = await browser.fetch(callbackUrl.href, { headers: { "x-forwarded-for": address } });
  const back = await locationOf(callback, 303, callbackUrl.origin);
  assert.equal(back.pathname, "/status");
  assert.ok(setsSession(callback), "the callback starts a browser session");
}

function pendingCount(world: OidcWorld): number {
  return (world.store.db.prepare("SELECT COUNT(*) AS n FROM pending_logins").get() as { n: number }).n;
}

Deno.test("GET /login/{provider} keeps a sign-in in progress through a flood of 10,000 starts from as many addresses", async () => {
  await withOidc({ groups: ["staff"] }, async (world) => {
    Object.assign(world.idTokenClaims, { sub: "u-1001", preferred_username: "alice", groups: ["staff"] });
    const victim = new ScriptedBrowser();
    const callbackUrl = await pendingCallback(world, victim, "198.51.100.1");
    // Anonymous starts, each from another address and with no binding cookie (a new browser each time).
    const FLOOD = 10_000;
    const BATCH = 100;
    for (let first = 0; first < FLOOD; first += BATCH) {
      await Promise.all(Array.from({ length: BATCH }, async (_, index) => {
        const n = first + index;
        const response = await startSignIn(world.base, `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`);
        await response.body?.cancel();
        assert.equal(response.status, 303);
      }));
    }
    await assertCompletes(victim, callbackUrl, "198.51.100.1");
  }, { gateway: BEHIND_PROXY, boundMs: 120_000 });
});

Deno.test("GET /login/{provider} refuses the 21st start from one address in 10 minutes: 429, Retry-After, audited once", async () => {
  await withOidc({ groups: ["staff"] }, async (world) => {
    Object.assign(world.idTokenClaims, { sub: "u-1001", preferred_username: "alice", groups: ["staff"] });
    const { base, audit } = world;
    const victim = new ScriptedBrowser();
    const callbackUrl = await pendingCallback(world, victim, "198.51.100.1");

    const flooder = new ScriptedBrowser();
    for (let index = 0; index < 20; index++) {
      const response = await startSignIn(base, "203.0.113.9", index % 2 === 0 ? flooder : undefined);
      await response.body?.cancel();
      assert.equal(response.status, 303, `start ${index + 1}`);
    }
    for (const browser of [flooder, undefined, undefined]) {
      const refused = await startSignIn(base, "203.0.113.9", browser);
      const page = await refused.text();
      assert.equal(refused.status, 429, page);
      assert.match(refused.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(page, /Cannot sign in/);
      assert.match(page, /Too many sign-ins/);
      const retryAfter = Number(refused.headers.get("retry-after"));
      assert.ok(retryAfter >= 1 && retryAfter <= 600, `Retry-After: ${retryAfter}`);
      assert.equal(refused.headers.get("location"), null);
    }
    assert.equal(
      pendingCount(world),
      21,
      "the victim's and the 20 admitted starts; refused ones keep nothing",
    );
    const rows = audit.recent(100, ["sign_in_throttled"]);
    assert.equal(rows.length, 1, "one row a minute per address");
    assert.equal(rows[0]!.subject, undefined);
    assert.deepEqual({ ...rows[0]!.detail, retry_after_seconds: undefined }, {
      method: "provider",
      provider: "corp",
      address: "203.0.113.9",
      scope: "address",
      retry_after_seconds: undefined,
    });

    // IPv6 addresses count per /64 (RFC 6177); the next /64 is another client.
    for (let index = 1; index <= 20; index++) {
      await (await startSignIn(base, `2001:db8:0:1::${index.toString(16)}`)).body?.cancel();
    }
    const sameNetwork = await startSignIn(base, "2001:db8:0:1::beef");
    await sameNetwork.body?.cancel();
    assert.equal(sameNetwork.status, 429);
    for (const address of ["2001:db8:0:2::1", "203.0.113.10"]) {
      const other = await startSignIn(base, address);
      await other.body?.cancel();
      assert.equal(other.status, 303, `${address} is not held back`);
    }
    await assertCompletes(victim, callbackUrl, "198.51.100.1");
  }, { gateway: BEHIND_PROXY });
});

Deno.test("GET /login/{provider} keeps 10 sign-ins per browser: an 11th drops that browser's oldest, nobody else's", async () => {
  await withOidc({ groups: ["staff"] }, async (world) => {
    Object.assign(world.idTokenClaims, { sub: "u-1001", preferred_username: "alice", groups: ["staff"] });
    const other = new ScriptedBrowser();
    const othersCallback = await pendingCallback(world, other, "127.0.0.1");
    const tabs = new ScriptedBrowser();
    const callbacks: URL[] = [];
    for (let index = 0; index < 11; index++) callbacks.push(await pendingCallback(world, tabs, "127.0.0.1"));
    await assertRefused(await tabs.fetch(callbacks[0]!.href), /expired or was already used/);
    assert.equal(pendingCount(world), 11, "the other browser's one and this browser's newest ten");
    await assertCompletes(tabs, callbacks[1]!, "127.0.0.1");
    await assertCompletes(other, othersCallback, "127.0.0.1");
  });
});

Deno.test("UpstreamLogins (oidc) does not let an unverified email satisfy allow.emails", async () => {
  await withOidc({ emails: ["@corp.example"] }, async ({ base, mock, idTokenClaims }) => {
    Object.assign(idTokenClaims, {
      sub: "u-7777",
      preferred_username: "trudy",
      email: "ceo@corp.example",
      email_verified: false,
      groups: [],
    });
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "corp",
      label: "Corp SSO",
      providerOrigin: new URL(mock.issuer.url!).origin,
    });
    await assertRefused(callback, /may not sign in here/);
  });
});

// ---------------------------------------------------------------------------------------------------
// GitHub

Deno.test("UpstreamLogins (github) signs a member of an allowed org in through Enterprise endpoints: github:<login>, group github:acme", async () => {
  const octocat = { login: "octocat", email: "octocat@acme.example", orgs: ["acme", "hobby-club"] };
  await withGitHub(octocat, { orgs: ["acme"] }, async ({ base, github }) => {
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "github",
      label: "GitHub Enterprise",
      providerOrigin: github.url,
    });
    const authorization = github.authorizations[0]!;
    assert.equal(authorization.get("code_challenge_method"), "S256");
    assert.equal(authorization.get("redirect_uri"), `${base}/login/github/callback`);
    assert.deepEqual(authorization.get("scope")?.split(" ").sort(), ["read:org", "read:user"]);

    const claims = await consentAndRedeem(browser, { base, callback, ...client });
    assert.equal(claims.sub, "github:octocat");
    assert.equal(claims.name, "octocat");
    assert.equal(claims.email, "octocat@acme.example");
    assert.deepEqual(claims.groups, ["github:acme"], "only the allowed orgs become groups");
    assert.equal(claims.provider, "github");
  });
});

Deno.test("UpstreamLogins (github) lets a user in by allow.users without an allowed org", async () => {
  const hubot = { login: "hubot", email: null, orgs: [] };
  await withGitHub(hubot, { users: ["hubot"], orgs: ["acme"] }, async ({ base, github }) => {
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "github",
      label: "GitHub Enterprise",
      providerOrigin: github.url,
    });
    const claims = await consentAndRedeem(browser, { base, callback, ...client });
    assert.equal(claims.sub, "github:hubot");
    assert.deepEqual(claims.groups, []);
    assert.equal(claims.email, undefined);
  });
});

Deno.test("UpstreamLogins (github) refuses a user outside allow.orgs and allow.users: a 403 page and no session", async () => {
  const outsider = { login: "outsider", email: "outsider@example.test", orgs: ["hobby-club"] };
  await withGitHub(outsider, { users: ["someone-else"], orgs: ["acme"] }, async ({ base, github, audit }) => {
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "github",
      label: "GitHub Enterprise",
      providerOrigin: github.url,
    });
    await assertRefused(callback, /This GitHub account may not sign in here/);
    assert.equal(await hasSession(browser, client.url), false);
    assert.deepEqual(signInRows(audit), [
      ["sign_in_failed", "github:outsider", {
        method: "provider",
        provider: "github",
        address: "127.0.0.1",
        reason: "not_allowed",
        name: "outsider",
      }],
    ]);
  });
});

Deno.test("UpstreamLogins (github) refuses a login that now belongs to another GitHub account", async () => {
  const octocat: GitHubUser = { login: "octocat", id: 4242, email: null, orgs: ["acme"] };
  await withGitHub(octocat, { orgs: ["acme"] }, async ({ base, github, audit }) => {
    const signIn = async () => {
      const client = await mcpClient(base);
      const browser = new ScriptedBrowser();
      const { callback } = await signInThroughProvider(browser, {
        base,
        authorizationUrl: client.url,
        provider: "github",
        label: "GitHub Enterprise",
        providerOrigin: github.url,
      });
      return { client, browser, callback };
    };
    const first = await signIn();
    const claims = await consentAndRedeem(first.browser, { base, callback: first.callback, ...first.client });
    assert.equal(claims.sub, "github:octocat");

    // octocat renamed their account, and someone else took the login "octocat".
    octocat.id = 9999;
    const second = await signIn();
    await assertRefused(second.callback, /belonged to another account/);
    assert.equal(await hasSession(second.browser, second.client.url), false);
    assert.deepEqual(signInRows(audit).at(-1), ["sign_in_failed", "github:octocat", {
      method: "provider",
      provider: "github",
      address: "127.0.0.1",
      reason: "account_changed",
      name: "octocat",
    }]);
  });
});

Deno.test("UpstreamLogins (github) fails cleanly when the provider rejects the PKCE verifier", async () => {
  const octocat = { login: "octocat", email: null, orgs: ["acme"] };
  await withGitHub(octocat, { orgs: ["acme"] }, async ({ base, github, logs, audit }) => {
    github.rejectVerifier = true;
    const client = await mcpClient(base);
    const browser = new ScriptedBrowser();
    const { callback } = await signInThroughProvider(browser, {
      base,
      authorizationUrl: client.url,
      provider: "github",
      label: "GitHub Enterprise",
      providerOrigin: github.url,
    });
    await assertRefused(callback, /did not sign you in/);
    assert.equal(await hasSession(browser, client.url), false);
    assert.deepEqual(github.tokenErrors, ["bad_verification_code"], "the provider refused the verifier");
    assert.ok(logs.some((line) => line.msg === "upstream sign-in failed" && line.provider === "github"));
    assert.deepEqual(signInRows(audit), [
      ["sign_in_failed", undefined, {
        method: "provider",
        provider: "github",
        address: "127.0.0.1",
        reason: "code_exchange_failed",
      }],
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------
// The sign-in page

Deno.test("the login page with only providers configured offers each provider and no password form", async () => {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate("RS256");
  await mock.start(0, "127.0.0.1");
  let gateway: TestGateway | undefined;
  try {
    gateway = await gatewayWith({
      corp: {
        type: "oidc",
        label: "Corp SSO",
        issuer: mock.issuer.url!,
        client_id: "c",
        allow: { groups: ["x"] },
      },
      github: { type: "github", client_id: "g", client_secret: "s", allow: { orgs: ["acme"] } },
    });
    const base = gateway.gateway.url;
    await within(
      TEST_BOUND_MS,
      (async () => {
        const client = await mcpClient(base);
        const response = await new ScriptedBrowser().fetch(client.url);
        const page = await response.text();
        assert.equal(response.status, 200, page);
        assert.ok(page.includes("Sign in with Corp SSO</a>"), page);
        assert.ok(page.includes("Sign in with github</a>"), "the label defaults to the provider's name");
        assert.ok(!page.includes('action="/login"'), "no password form");
        assert.ok(!page.includes('type="password"'), "no password field");
      })(),
      "the test",
    );
  } finally {
    try {
      await gateway?.close();
    } finally {
      await mock.stop();
    }
  }
});
