/**
 * End-to-end: browser-based clients (ChatGPT, MCP Inspector) replayed as raw requests with an `Origin`
 * against a gateway on 127.0.0.1: CORS preflights, bearer-authenticated `/mcp`, the OAuth endpoints.
 */
import assert from "node:assert/strict";
import { register, signedInTokens, startOAuthGateway } from "../oauth/_flow.ts";
import {
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  registryWith,
  startTestGateway,
  withCleanup,
} from "../helpers/mcp_clients.ts";

const CHATGPT = "https://chatgpt.com";
const INSPECTOR = "http://localhost:6274";
const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "ChatGPT", version: "1" } },
});
const REQUEST_HEADERS = [
  "authorization",
  "content-type",
  "accept",
  "mcp-session-id",
  "mcp-protocol-version",
  "last-event-id",
  "mcp-method",
  "mcp-name",
];
const EXPOSED_HEADERS = ["mcp-session-id", "mcp-protocol-version", "www-authenticate", "retry-after"];

/** A header's comma-separated list, lower-cased. */
function listOf(headers: Headers, name: string): string[] {
  return (headers.get(name) ?? "").split(",").map((item) => item.trim().toLowerCase()).filter(Boolean);
}

/** Asserts that a page of `origin` may read this answer, and its exposed headers, without credentials. */
function assertReadableBy(response: Response, origin: string, what: string): void {
  assert.equal(response.headers.get("access-control-allow-origin"), origin, what);
  assert.deepEqual(listOf(response.headers, "access-control-expose-headers"), EXPOSED_HEADERS, what);
  assert.equal(response.headers.get("access-control-allow-credentials"), null, what);
}

/** What a browser sends before a cross-origin fetch that is not "simple" (Fetch standard, CORS preflight). */
function preflight(url: string, origin: string, method: string): Promise<Response> {
  return fetch(url, {
    method: "OPTIONS",
    headers: {
      origin,
      "access-control-request-method": method,
      "access-control-request-headers": "authorization,content-type,mcp-protocol-version",
    },
  });
}

Deno.test("POST /mcp serves ChatGPT's initialize from Origin https://chatgpt.com with a valid token", async () => {
  const started = await startOAuthGateway();
  await withCleanup(async () => {
    const { tokens } = await signedInTokens(started.base);
    const authorization = `Bearer ${tokens.access_token}`;
    const response = await fetch(started.mcpUrl, {
      method: "POST",
      headers: { ...JSON_HEADERS, origin: CHATGPT, authorization },
      body: INITIALIZE,
    });
    assertReadableBy(response, CHATGPT, "initialize");
    const [message] = await messagesOf(response);
    assert.equal(response.status, 200, JSON.stringify(message));
    assert.ok(message?.result, JSON.stringify(message));
    const sessionId = response.headers.get("mcp-session-id");
    assert.ok(sessionId, "a 2025-era session was opened");

    const closed = await fetch(started.mcpUrl, {
      method: "DELETE",
      headers: { origin: CHATGPT, authorization, "mcp-session-id": sessionId },
    });
    await closed.body?.cancel();
    assert.ok(closed.ok, `DELETE answered ${closed.status}`);
    assertReadableBy(closed, CHATGPT, "DELETE");

    const oneBackend = await fetch(`${started.mcpUrl}/mis`, {
      method: "POST",
      headers: { ...JSON_HEADERS, origin: CHATGPT, authorization },
      body: INITIALIZE,
    });
    await oneBackend.body?.cancel();
    assert.equal(oneBackend.status, 200, "/mcp/{backend} accepts the /mcp token from a browser too");
    assertReadableBy(oneBackend, CHATGPT, "/mcp/mis");
  }, () => started.close());
});

Deno.test("POST /mcp answers ChatGPT without a valid token with 401, WWW-Authenticate and CORS headers", async () => {
  const started = await startOAuthGateway();
  await withCleanup(async () => {
    for (const token of [undefined, "not-a-jwt"]) {
      const response = await fetch(started.mcpUrl, {
        method: "POST",
        headers: {
          ...JSON_HEADERS,
          origin: CHATGPT,
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
        },
        body: INITIALIZE,
      });
      const text = await response.text();
      assert.equal(response.status, 401, `token ${token}: ${text}`);
      const challenge = response.headers.get("www-authenticate") ?? "";
      assert.match(
        challenge,
        new RegExp(`^Bearer resource_metadata="${started.base}/\\.well-known/oauth-protected-resource/mcp"`),
      );
      if (token !== undefined) assert.match(challenge, /error="invalid_token"/);
      assertReadableBy(response, CHATGPT, `token ${token}`);
    }

    // What ChatGPT fetches next to start OAuth.
    const metadataUrl = `${started.base}/.well-known/oauth-protected-resource/mcp`;
    const metadata = await fetch(metadataUrl, { headers: { origin: CHATGPT } });
    assert.equal(metadata.status, 200);
    assertReadableBy(metadata, CHATGPT, "protected resource metadata");
    assert.equal((await metadata.json()).resource, started.mcpUrl);
  }, () => started.close());
});

Deno.test("OPTIONS answers ChatGPT's preflights on /mcp and the OAuth endpoints with 204, without a token", async () => {
  const started = await startOAuthGateway();
  await withCleanup(async () => {
    const paths: [string, string][] = [
      ["/mcp", "POST"],
      ["/mcp", "GET"],
      ["/mcp", "DELETE"],
      ["/mcp/mis", "POST"],
      ["/.well-known/oauth-protected-resource/mcp", "GET"],
      ["/.well-known/oauth-authorization-server", "GET"],
      ["/.well-known/openid-configuration", "GET"],
      ["/jwks.json", "GET"],
      ["/register", "POST"],
      ["/register/some-client", "PUT"],
      ["/register/some-client", "DELETE"],
      ["/token", "POST"],
      ["/revoke", "POST"],
    ];
    for (const [path, method] of paths) {
      const what = `${method} ${path}`;
      const response = await preflight(`${started.base}${path}`, CHATGPT, method);
      await response.body?.cancel();
      assert.equal(response.status, 204, what);
      assert.equal(response.headers.get("access-control-allow-origin"), CHATGPT, what);
      assert.equal(response.headers.get("access-control-allow-credentials"), null, what);
      assert.ok(
        listOf(response.headers, "access-control-allow-methods").includes(method.toLowerCase()),
        what,
      );
      assert.deepEqual(listOf(response.headers, "access-control-allow-headers"), REQUEST_HEADERS, what);
      assert.deepEqual(listOf(response.headers, "access-control-expose-headers"), EXPOSED_HEADERS, what);
      assert.ok(Number(response.headers.get("access-control-max-age")) > 0, what);
      assert.ok(listOf(response.headers, "vary").includes("origin"), what);
    }

    // An OPTIONS that is not a preflight is an ordinary request, and /mcp wants a token for it.
    const plain = await fetch(started.mcpUrl, { method: "OPTIONS", headers: { origin: CHATGPT } });
    await plain.body?.cancel();
    assert.equal(plain.status, 401);
  }, () => started.close());
});

Deno.test("ChatGPT's fetches to the OAuth endpoints get CORS headers; pages and /introspect get none", async () => {
  const started = await startOAuthGateway();
  await withCleanup(async () => {
    const { base } = started;
    const registered = await fetch(`${base}/register`, {
      method: "POST",
      headers: { "content-type": "application/json", origin: CHATGPT },
      body: JSON.stringify({
        client_name: "ChatGPT",
        redirect_uris: ["https://chatgpt.com/connector_platform_oauth_redirect"],
        token_endpoint_auth_method: "none",
      }),
    });
    const client = await registered.json();
    assert.equal(registered.status, 201, JSON.stringify(client));
    assertReadableBy(registered, CHATGPT, "POST /register");

    const read = await fetch(`${base}/register/${client.client_id}`, {
      headers: { origin: CHATGPT, authorization: `Bearer ${client.registration_access_token}` },
    });
    await read.body?.cancel();
    assert.equal(read.status, 200);
    assertReadableBy(read, CHATGPT, "GET /register/{id}");

    const form = (fields: Record<string, string>) => ({
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", origin: CHATGPT },
      body: new URLSearchParams(fields).toString(),
    });
    const refused = await fetch(
      `${base}/token`,
      form({ grant_type: "authorization_code", client_id: client.client_id, code: "no-such-code" }),
    );
    assert.equal(refused.status, 400);
    assert.ok((await refused.json()).error, "an OAuth error");
    assertReadableBy(refused, CHATGPT, "a refused POST /token");

    const revoked = await fetch(`${base}/revoke`, form({ client_id: client.client_id, token: "unknown" }));
    await revoked.body?.cancel();
    assertReadableBy(revoked, CHATGPT, "POST /revoke");

    const keys = await fetch(`${base}/jwks.json`, { headers: { origin: CHATGPT } });
    await keys.body?.cancel();
    assertReadableBy(keys, CHATGPT, "GET /jwks.json");

    const other = await register(base);
    const pages: [string, RequestInit][] = [
      [`/authorize?response_type=code&client_id=${other.client_id}`, {}],
      ["/login", { method: "POST" }],
      ["/authorize/consent", { method: "POST" }],
      ["/connections", {}],
      ["/status", {}],
      ["/logout", { method: "POST" }],
      ["/introspect", form({ token: "unknown" })],
    ];
    for (const [path, init] of pages) {
      const response = await fetch(`${base}${path}`, {
        ...init,
        redirect: "manual",
        headers: { ...init.headers as Record<string, string>, origin: CHATGPT },
      });
      await response.body?.cancel();
      assert.equal(response.headers.get("access-control-allow-origin"), null, path);
      assert.equal(response.headers.get("access-control-expose-headers"), null, path);
      const asked = await preflight(`${base}${path}`, CHATGPT, init.method ?? "GET");
      await asked.body?.cancel();
      assert.equal(asked.headers.get("access-control-allow-origin"), null, `preflight ${path}`);
    }
  }, () => started.close());
});

Deno.test("POST /mcp refuses MCP Inspector's Origin with 403 under auth: none until allowed_origins lists it", async () => {
  const started = await startTestGateway(
    registryWith({ only: misbehaving("only") }, { allowed_origins: [INSPECTOR] }),
  );
  await withCleanup(async () => {
    for (const foreign of [CHATGPT, "http://localhost:6275"]) {
      const refused = await fetch(started.mcpUrl, {
        method: "POST",
        headers: { ...JSON_HEADERS, origin: foreign },
        body: INITIALIZE,
      });
      const text = await refused.text();
      assert.equal(refused.status, 403, text);
      assert.match(text, /Origin not allowed/);
      assert.equal(refused.headers.get("access-control-allow-origin"), null, foreign);
      const asked = await preflight(started.mcpUrl, foreign, "POST");
      await asked.body?.cancel();
      assert.equal(asked.headers.get("access-control-allow-origin"), null, `preflight from ${foreign}`);
    }

    const asked = await preflight(started.mcpUrl, INSPECTOR, "POST");
    await asked.body?.cancel();
    assert.equal(asked.status, 204);
    assert.equal(asked.headers.get("access-control-allow-origin"), INSPECTOR);
    const served = await fetch(started.mcpUrl, {
      method: "POST",
      headers: { ...JSON_HEADERS, origin: INSPECTOR },
      body: INITIALIZE,
    });
    await served.body?.cancel();
    assert.equal(served.status, 200);
    assertReadableBy(served, INSPECTOR, "allowed Inspector");
  }, () => started.close());
});
