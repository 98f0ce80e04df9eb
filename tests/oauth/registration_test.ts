/**
 * Clients: RFC 7591 registration, RFC 7592 management, registry clients with client_credentials,
 * RFC 7662 introspection, and the first-start admin account.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { eventually, JSON_HEADERS, messagesOf, misbehaving, textOf } from "../helpers/mcp_clients.ts";
import {
  aliceHashOnce,
  authorizeAs,
  authorizeUrl,
  basic,
  mcpInitialize,
  obtainCode,
  pkce,
  REDIRECT_URI,
  register,
  signedInTokens,
  startGatewayIn,
  startOAuthGateway,
  stopGateway,
  tokenCall,
} from "./_flow.ts";

const CI_BOT_SECRET = "ci-bot-secret-from-a-file-0123456789";

function registerRaw(base: string, body: unknown): Promise<Response> {
  return fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

/** RFC 7592 request to a client configuration endpoint. */
async function manage(
  url: string,
  method: "GET" | "PUT" | "DELETE",
  token: string | undefined,
  body?: unknown,
): Promise<{ status: number; headers: Headers; body: Record<string, unknown> }> {
  const response = await fetch(url, {
    method,
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
}

function count(
  gateway: { store: { db: { prepare(sql: string): { get(): unknown } } } },
  table: string,
): number {
  return (gateway.store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;
}

/** Calls a tool on an MCP endpoint with a bearer token, by hand (initialize, initialized, tools/call). */
async function callTool(url: string, token: string, name: string, args: Record<string, unknown>) {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${token}` };
  const initialize = await fetch(url, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  const sessionId = initialize.headers.get("mcp-session-id");
  await messagesOf(initialize);
  assert.equal(initialize.status, 200);
  assert.ok(sessionId);
  const sessionHeaders = { ...headers, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" };
  const initialized = await fetch(url, {
    method: "POST",
    headers: sessionHeaders,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  const call = await fetch(url, {
    method: "POST",
    headers: sessionHeaders,
    body: JSON.stringify({ jsonrpc: "2.0", id: 2, method: "tools/call", params: { name, arguments: args } }),
  });
  const messages = await messagesOf(call);
  const answer = messages.find((message) => message.id === 2);
  assert.ok(answer?.result, JSON.stringify(messages));
  return answer.result;
}

// ---- RFC 7591 ------------------------------------------------------------------------------------

Deno.test("register() gives a public client no secret, and a registration access token and URI", async () => {
  const gateway = await startOAuthGateway();
  try {
    const response = await registerRaw(gateway.base, {
      client_name: "Public",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
    });
    const body = await response.json();
    assert.equal(response.status, 201);
    assert.match(response.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(typeof body.client_id, "string");
    assert.equal(typeof body.client_id_issued_at, "number");
    assert.equal(Object.hasOwn(body, "client_secret"), false, "a public client gets no secret");
    assert.equal(body.token_endpoint_auth_method, "none");
    assert.deepEqual(body.redirect_uris, [REDIRECT_URI]);
    assert.equal(body.client_name, "Public");
    assert.equal(typeof body.registration_access_token, "string");
    assert.equal(body.registration_client_uri, `${gateway.base}/register/${body.client_id}`);
  } finally {
    await gateway.close();
  }
});

Deno.test("register() gives a confidential client a secret, and only that secret authenticates it", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    // No token_endpoint_auth_method means client_secret_basic (RFC 7591 §2).
    const client = await register(base, { token_endpoint_auth_method: undefined });
    assert.equal(client.token_endpoint_auth_method, "client_secret_basic");
    assert.equal(typeof client.client_secret, "string");
    assert.ok(client.client_secret!.length >= 32);
    assert.equal(client.client_secret_expires_at as unknown, 0);
    const stored = gateway.gateway.store.db.prepare(
      "SELECT secret_hash FROM oauth_clients WHERE client_id = ?",
    )
      .get(client.client_id) as { secret_hash: string };
    assert.ok(stored.secret_hash && stored.secret_hash !== client.client_secret, "only its hash is kept");

    const { challenge, verifier } = await pkce();
    const { code } = await obtainCode(base, client.client_id, { challenge });
    const exchange = {
      grant_type: "authorization_code",
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    };
    const withoutSecret = await tokenCall(base, { ...exchange, client_id: client.client_id });
    assert.equal(withoutSecret.status, 401);
    assert.equal(withoutSecret.body.error, "invalid_client");
    const granted = await tokenCall(base, exchange, basic(client.client_id, client.client_secret!));
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.ok(granted.body.access_token && granted.body.refresh_token);

    const posting = await register(base, { token_endpoint_auth_method: "client_secret_post" });
    assert.equal(typeof posting.client_secret, "string");
  } finally {
    await gateway.close();
  }
});

Deno.test("register() rejects redirect URIs that are not https or loopback http, or carry a fragment", async () => {
  const gateway = await startOAuthGateway();
  try {
    for (
      const redirectUris of [
        ["http://app.example/callback"],
        ["http://192.168.1.10/callback"],
        ["https://app.example/callback#fragment"],
        ["http://127.0.0.1:8000/callback#x"],
        [REDIRECT_URI, "http://evil.example/callback"],
        ["javascript:alert(1)"],
        ["data:text/html,hi"],
        ["/relative/callback"],
        ["not a url"],
        [],
        [42],
        "https://app.example/callback",
      ]
    ) {
      const response = await registerRaw(gateway.base, {
        client_name: "Bad",
        redirect_uris: redirectUris,
        token_endpoint_auth_method: "none",
      });
      const body = await response.json();
      assert.equal(response.status, 400, JSON.stringify(redirectUris));
      assert.equal(body.error, "invalid_redirect_uri", JSON.stringify(redirectUris));
    }
    const missing = await registerRaw(gateway.base, {
      client_name: "None",
      token_endpoint_auth_method: "none",
    });
    assert.equal(missing.status, 400);
    assert.equal((await missing.json()).error, "invalid_redirect_uri");
    assert.equal(count(gateway.gateway, "oauth_clients"), 0, "nothing was registered");
  } finally {
    await gateway.close();
  }
});

Deno.test("register() rejects unknown authentication methods, grant types and bodies that are not objects", async () => {
  const gateway = await startOAuthGateway();
  try {
    const cases: [string, unknown][] = [
      ["private_key_jwt", { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "private_key_jwt" }],
      ["client_secret_jwt", {
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: "client_secret_jwt",
      }],
      ["made-up method", { redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "trust_me" }],
      ["implicit", { redirect_uris: [REDIRECT_URI], grant_types: ["implicit"] }],
      ["password", { redirect_uris: [REDIRECT_URI], grant_types: ["password"] }],
      ["client_credentials", { redirect_uris: [REDIRECT_URI], grant_types: ["client_credentials"] }],
      ["response_type token", { redirect_uris: [REDIRECT_URI], response_types: ["token"] }],
      ["an array", [{ redirect_uris: [REDIRECT_URI] }]],
      ["not JSON", "{redirect_uris:"],
      ["null", "null"],
    ];
    for (const [what, body] of cases) {
      const response = await registerRaw(gateway.base, body);
      const answer = await response.json();
      assert.equal(response.status, 400, what);
      assert.equal(answer.error, "invalid_client_metadata", what);
    }
    assert.equal(count(gateway.gateway, "oauth_clients"), 0, "nothing was registered");
  } finally {
    await gateway.close();
  }
});

Deno.test("register() is refused with 403 when gateway.registration is off", async () => {
  const gateway = await startOAuthGateway({ registration: "off" });
  try {
    const response = await registerRaw(gateway.base, {
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
    });
    await response.body?.cancel();
    assert.equal(response.status, 403);
    assert.equal(count(gateway.gateway, "oauth_clients"), 0);
  } finally {
    await gateway.close();
  }
});

// ---- RFC 7592 ------------------------------------------------------------------------------------

Deno.test("register/{id} reads, updates and deletes a client with its registration access token only", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const client = await register(base, { client_name: "Before", token_endpoint_auth_method: undefined });
    const other = await register(base, { client_name: "Other" });
    const url = client.registration_client_uri!;
    const token = client.registration_access_token!;

    const read = await manage(url, "GET", token);
    assert.equal(read.status, 200);
    assert.match(read.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(read.body.client_id, client.client_id);
    assert.equal(read.body.client_name, "Before");
    assert.deepEqual(read.body.redirect_uris, [REDIRECT_URI]);
    for (const secret of [client.client_secret!, token]) {
      assert.ok(!JSON.stringify(read.body).includes(secret), "no secret is read back");
    }

    for (
      const [what, wrong] of [
        ["a wrong token", `${token}x`],
        ["another client's token", other.registration_access_token!],
        ["no token", undefined],
        ["an empty token", ""],
      ] as const
    ) {
      for (const method of ["GET", "PUT", "DELETE"] as const) {
        const answer = await manage(
          url,
          method,
          wrong,
          method === "PUT" ? { ...read.body, client_name: "Hijacked" } : undefined,
        );
        assert.equal(answer.status, 401, `${method} with ${what}`);
      }
    }
    const unknown = await manage(`${base}/register/no-such-client`, "GET", token);
    assert.equal(unknown.status, 401, "a token for one client opens no other");

    const updated = await manage(url, "PUT", token, {
      ...read.body,
      client_name: "After",
      redirect_uris: [REDIRECT_URI, "https://app.example/callback"],
    });
    assert.equal(updated.status, 200, JSON.stringify(updated.body));
    assert.equal(updated.body.client_name, "After");
    const reread = await manage(url, "GET", token);
    assert.equal(reread.body.client_name, "After");
    assert.deepEqual(reread.body.redirect_uris, [REDIRECT_URI, "https://app.example/callback"]);

    const badUpdates: [string, Record<string, unknown>][] = [
      ["an http redirect URI", { ...reread.body, redirect_uris: ["http://evil.example/callback"] }],
      ["another client_id", { ...reread.body, client_id: other.client_id }],
      ["no client_id", { ...reread.body, client_id: undefined }],
      ["an unknown auth method", { ...reread.body, token_endpoint_auth_method: "trust_me" }],
    ];
    for (const [what, body] of badUpdates) {
      const answer = await manage(url, "PUT", token, body);
      assert.equal(answer.status, 400, what);
    }
    assert.equal(
      (await manage(url, "GET", token)).body.client_name,
      "After",
      "failed updates change nothing",
    );
    assert.equal(
      (await manage(other.registration_client_uri!, "GET", other.registration_access_token)).body.client_name,
      "Other",
    );

    const deleted = await manage(url, "DELETE", token);
    assert.equal(deleted.status, 204);
    assert.equal((await manage(url, "GET", token)).status, 401, "a deleted client cannot be read");
    assert.equal((await manage(url, "DELETE", token)).status, 401, "nor deleted twice");
    assert.equal(
      (await manage(other.registration_client_uri!, "GET", other.registration_access_token)).status,
      200,
    );
  } finally {
    await gateway.close();
  }
});

Deno.test("a client deleted through RFC 7592 can get no more tokens, by code, refresh token or authorization", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const client = await register(base);
    const { tokens } = await signedInTokens(base, { clientId: client.client_id });
    // A code obtained before the deletion and not yet exchanged (consent is remembered: no form).
    const { challenge, verifier } = await pkce();
    const browser = new ScriptedBrowser();
    const { code } = await obtainCode(base, client.client_id, { browser, challenge });

    const deleted = await manage(client.registration_client_uri!, "DELETE", client.registration_access_token);
    assert.equal(deleted.status, 204);

    const byCode = await tokenCall(base, {
      grant_type: "authorization_code",
      client_id: client.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(byCode.status, 401);
    assert.equal(byCode.body.error, "invalid_client");
    const byRefresh = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: client.client_id,
      refresh_token: tokens.refresh_token,
    });
    assert.equal(byRefresh.status, 401);
    assert.equal(byRefresh.body.error, "invalid_client");
    const authorize = await browser.fetch(
      authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge }),
    );
    await authorize.body?.cancel();
    assert.equal(authorize.status, 400);
    assert.equal(authorize.headers.get("location"), null);
    assert.equal(
      (gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM refresh_tokens WHERE client_id = ?").get(
        client.client_id,
      ) as { n: number }).n,
      0,
      "its refresh tokens are gone",
    );
    // RFC 7592 §2.3: the access token issued before the deletion stops working too.
    assert.equal((await mcpInitialize(`${base}/mcp`, tokens.access_token)).status, 401);
  } finally {
    await gateway.close();
  }
});

// ---- Registry clients and client_credentials ----------------------------------------------------------

Deno.test("client_credentials for a registry client gives a token for its configured user and groups that works on /mcp", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-oauth-" });
  await Deno.mkdir(join(dir, "data", "secrets"), { recursive: true, mode: 0o700 });
  await Deno.chmod(join(dir, "data"), 0o700);
  await Deno.writeTextFile(join(dir, "data", "secrets", "ci_bot"), `${CI_BOT_SECRET}\n`, { mode: 0o600 });
  const gateway = await startGatewayIn(dir, {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    clients: {
      "ci-bot": {
        secret: "${secret:ci_bot}",
        grant_types: ["client_credentials"],
        user: "robot",
        groups: ["bots", "ci"],
      },
    },
    backends: { mis: misbehaving("mis") },
  });
  try {
    const base = gateway.url;
    const granted = await tokenCall(
      base,
      { grant_type: "client_credentials" },
      basic("ci-bot", CI_BOT_SECRET),
    );
    assert.equal(granted.status, 200, JSON.stringify(granted.body));
    assert.match(granted.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(granted.body.token_type, "Bearer");
    assert.equal(
      granted.body.refresh_token,
      undefined,
      "no refresh token for client_credentials (RFC 6749 §4.4.3)",
    );
    const claims = decodeJwt(granted.body.access_token!);
    assert.equal(claims.sub, "robot");
    assert.deepEqual(claims.groups, ["bots", "ci"]);
    assert.equal(claims.client_id, "ci-bot");
    assert.equal(claims.aud, `${base}/mcp`);
    assert.equal(claims.iss, base);

    const result = await callTool(`${base}/mcp`, granted.body.access_token!, "mis__echo", {
      message: "from ci",
    });
    assert.equal(textOf(result), "mis: from ci");

    // The secret from the file, and nothing else, authenticates it.
    const wrong = await tokenCall(
      base,
      { grant_type: "client_credentials" },
      basic("ci-bot", "${secret:ci_bot}"),
    );
    assert.equal(wrong.status, 401);
    // And a client_credentials client cannot start a browser flow.
    const { challenge } = await pkce();
    const authorize = await fetch(authorizeUrl(base, { client_id: "ci-bot", code_challenge: challenge }), {
      redirect: "manual",
    });
    await authorize.body?.cancel();
    assert.equal(authorize.status, 400);
    assert.equal(authorize.headers.get("location"), null);
  } finally {
    try {
      await stopGateway(gateway);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
});

Deno.test("introspect() tells a registry client allowed to introspect about tokens; a public client may not ask", async () => {
  const secret = "introspecting-bot-secret-0123";
  const gateway = await startOAuthGateway({}, {
    clients: { "ci-bot": { secret, user: "robot", groups: ["bots"], introspect: true } },
  });
  try {
    const { base } = gateway;
    const granted = await tokenCall(base, { grant_type: "client_credentials" }, basic("ci-bot", secret));
    const token = granted.body.access_token!;

    const active = await tokenCall(base, { token }, basic("ci-bot", secret), "/introspect");
    assert.equal(active.status, 200);
    assert.match(active.headers.get("cache-control") ?? "", /no-store/);
    assert.equal(active.body.active as unknown, true);
    assert.equal(active.body.sub, "robot");
    assert.equal(active.body.client_id, "ci-bot");
    assert.equal(active.body.aud, `${base}/mcp`);
    assert.equal(active.body.iss, base);
    assert.equal(active.body.scope, "mcp");
    assert.equal(typeof active.body.exp, "number");
    // Also with client_secret_post.
    const posted = await tokenCall(
      base,
      { token, client_id: "ci-bot", client_secret: secret },
      {},
      "/introspect",
    );
    assert.equal(posted.body.active as unknown, true);

    for (const garbage of ["garbage", `${token}x`, "", "a.b.c"]) {
      const inactive = await tokenCall(base, { token: garbage }, basic("ci-bot", secret), "/introspect");
      assert.equal(inactive.status, 200, garbage);
      assert.deepEqual(
        inactive.body,
        { active: false },
        "an inactive token says nothing more (RFC 7662 §2.2)",
      );
    }

    const publicClient = await register(base);
    const denied: [string, Record<string, string>, Record<string, string>][] = [
      ["a public client", { token, client_id: publicClient.client_id }, {}],
      ["no client", { token }, {}],
      ["a wrong secret", { token }, basic("ci-bot", "wrong")],
    ];
    for (const [what, fields, headers] of denied) {
      const answer = await tokenCall(base, fields, headers, "/introspect");
      assert.equal(answer.status, 401, what);
      assert.equal(answer.body.error, "invalid_client", what);
      assert.equal(answer.body.active, undefined, what);
    }
  } finally {
    await gateway.close();
  }
});

// ---- First-start admin ------------------------------------------------------------------------------

Deno.test("first start without users or providers creates admin once, logs its password once, and it signs in", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-oauth-" });
  const registry = {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    backends: { mis: misbehaving("mis") },
  };
  const signInAsAdmin = async (base: string, password: string) => {
    const client = await register(base);
    const { challenge } = await pkce();
    return await authorizeAs(
      new ScriptedBrowser(),
      authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge }),
      { username: "admin", password },
    );
  };
  try {
    const firstLogs: Record<string, unknown>[] = [];
    let gateway = await startGatewayIn(dir, registry, firstLogs);
    let password: string;
    try {
      // The admin is made off the start path: its line comes a moment after the gateway is ready.
      const adminLines = () =>
        firstLogs.filter((line) => line.level === "warn" && /admin/.test(String(line.msg)));
      await eventually(() => adminLines().length > 0, 10_000);
      const announcements = adminLines();
      assert.equal(announcements.length, 1, JSON.stringify(firstLogs));
      const match = /password (\S+)/.exec(String(announcements[0]!.msg));
      assert.ok(match, String(announcements[0]!.msg));
      password = match[1]!;
      assert.ok(password.length >= 16, "a random password of some length");
      assert.equal(
        firstLogs.filter((line) => JSON.stringify(line).includes(password)).length,
        1,
        "the password is logged exactly once",
      );
      const stored = gateway.store.db.prepare("SELECT name, password_hash, groups FROM local_users")
        .all() as {
          name: string;
          password_hash: string;
          groups: string;
        }[];
      assert.equal(stored.length, 1);
      assert.equal(stored[0]!.name, "admin");
      assert.match(stored[0]!.password_hash, /^\$argon2id\$/);
      assert.ok(!stored[0]!.password_hash.includes(password), "only its hash is kept");

      const wrong = await signInAsAdmin(gateway.url, `${password}x`);
      await wrong.body?.cancel();
      assert.equal(wrong.status, 401, "a wrong password is refused");

      const approved = await signInAsAdmin(gateway.url, password);
      await approved.body?.cancel();
      assert.equal(approved.status, 303);
      assert.ok(new URL(approved.headers.get("location")!).searchParams.get("code"), "signed in as admin");
    } finally {
      await stopGateway(gateway);
    }

    const secondLogs: Record<string, unknown>[] = [];
    gateway = await startGatewayIn(dir, registry, secondLogs);
    try {
      assert.equal(
        secondLogs.filter((line) => line.level === "warn" && /admin/.test(String(line.msg))).length,
        0,
        "no second admin is announced",
      );
      assert.ok(!secondLogs.some((line) => JSON.stringify(line).includes(password)));
      assert.equal(count(gateway, "local_users"), 1, "no second account");
      const approved = await signInAsAdmin(gateway.url, password);
      await approved.body?.cancel();
      assert.equal(approved.status, 303, "the first password still works");
      const { code } = Object.fromEntries(new URL(approved.headers.get("location")!).searchParams);
      assert.ok(code);
    } finally {
      await stopGateway(gateway);
    }
    // Stopping waits for what the start left running: still no second admin.
    assert.ok(!secondLogs.some((line) => line.level === "warn" && /admin/.test(String(line.msg))));

    // Once the registry names its own users, the first-start admin signs in no more.
    gateway = await startGatewayIn(dir, {
      ...registry,
      login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["admin"] } } },
    });
    try {
      const refused = await signInAsAdmin(gateway.url, password);
      await refused.body?.cancel();
      assert.equal(refused.status, 401, "the first-start admin is retired");
      assert.equal(count(gateway, "local_users"), 1, "its row stays, unused");
    } finally {
      await stopGateway(gateway);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a registry with local users creates no admin account", async () => {
  const gateway = await startOAuthGateway();
  try {
    assert.equal(count(gateway.gateway, "local_users"), 0);
    assert.ok(!gateway.logs.some((line) => /first start/.test(String(line.msg))));
  } finally {
    await gateway.close();
  }
});
