/**
 * Issue 18 with another kind of remote server: a hand-written protected MCP resource on 127.0.0.1 (401 with
 * `resource_metadata` until it gets a token of its authorization server, RFC 9728 metadata; with one, it
 * relays to the token echo fixture over HTTP) whose authorization server is oauth2-mock-server, and A
 * configured with a client registered by hand (`oauth: { client_id, client_secret, scopes }`).
 */
import assert from "node:assert/strict";
import { OAuth2Server } from "npm:oauth2-mock-server@9.3.0";
import { startTestGateway, textOf, within } from "../helpers/mcp_clients.ts";
import { connectClient, linkOfToolResult, startEchoHttpBackend } from "./_world.ts";
import { ALICE, BACKEND, registryOfA, SERVICE, signInAtA, storedAtA } from "./_chained_gatehouses.ts";

/** Letters only: the mock puts Basic credentials undecoded in its ID tokens' `aud` (see _world.ts). */
const CLIENT_ID = "gatehouseatmock";
const CLIENT_SECRET = "mock-client-secret-for-tests";

/** What the mock's endpoints received. */
interface Received {
  /** The query of each authorization request. */
  readonly authorizations: URLSearchParams[];
  /** The form and Authorization header of each token request. */
  readonly tokenRequests: { form: Record<string, unknown>; authorization: string | undefined }[];
  /** The access tokens it issued. */
  readonly issued: Set<string>;
}

async function startMock(): Promise<{ server: OAuth2Server; issuer: string; received: Received }> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate("RS256");
  await server.start(0, "127.0.0.1");
  // The mock names itself `localhost`; everything here stays on 127.0.0.1.
  server.issuer.url = `http://127.0.0.1:${server.address().port}`;
  const received: Received = { authorizations: [], tokenRequests: [], issued: new Set() };
  server.service.on("beforeAuthorizeRedirect", (_redirect: unknown, request: { url?: string }) => {
    received.authorizations.push(new URL(request.url ?? "/", server.issuer.url!).searchParams);
  });
  server.service.on(
    "beforeResponse",
    (
      response: { body: Record<string, unknown> | "" },
      request: { body: Record<string, unknown>; headers: Record<string, string | undefined> },
    ) => {
      received.tokenRequests.push({
        form: { ...request.body },
        authorization: request.headers.authorization,
      });
      if (typeof response.body === "object" && typeof response.body.access_token === "string") {
        received.issued.add(response.body.access_token);
      }
    },
  );
  return { server, issuer: server.issuer.url, received };
}

/** The protected resource: what reached its /mcp (the Authorization header, the status answered). */
function startProtectedResource(issuer: string, issued: Set<string>, echoUrl: string) {
  const calls: { authorization: string | null; status: number }[] = [];
  let origin = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    if (url.pathname.startsWith("/.well-known/oauth-protected-resource")) {
      return Response.json({
        resource: `${origin}/mcp`,
        authorization_servers: [issuer],
        scopes_supported: ["read", "write"],
      });
    }
    if (url.pathname !== "/mcp") return new Response("not found", { status: 404 });
    const authorization = request.headers.get("authorization");
    const token = /^Bearer (.+)$/.exec(authorization ?? "")?.[1];
    if (token === undefined || !issued.has(token)) {
      await request.body?.cancel();
      calls.push({ authorization, status: 401 });
      return new Response(JSON.stringify({ error: "invalid_token" }), {
        status: 401,
        headers: {
          "content-type": "application/json",
          "www-authenticate": `Bearer resource_metadata="${origin}/.well-known/oauth-protected-resource/mcp"`,
        },
      });
    }
    const relayed = await fetch(echoUrl, {
      method: request.method,
      headers: request.headers,
      body: request.method === "POST" ? await request.arrayBuffer() : undefined,
    });
    calls.push({ authorization, status: relayed.status });
    return new Response(relayed.body, { status: relayed.status, headers: relayed.headers });
  });
  origin = `http://127.0.0.1:${server.addr.port}`;
  return { origin, mcpUrl: `${origin}/mcp`, calls, close: () => server.shutdown() };
}

Deno.test("remote backend: a protected resource whose authorization server is oauth2-mock-server, with a client registered by hand; the resource parameter reaches the token request", async () => {
  const mock = await startMock();
  const echo = await startEchoHttpBackend();
  const resource = startProtectedResource(mock.issuer, mock.received.issued, echo.url);
  try {
    const a = await startTestGateway(
      await registryOfA({
        http: {
          url: resource.mcpUrl,
          oauth: { client_id: CLIENT_ID, client_secret: CLIENT_SECRET, scopes: ["read"] },
        },
      }),
    );
    try {
      await within(
        45_000,
        (async () => {
          const aBase = a.gateway.url;
          const alice = await signInAtA(aBase, ALICE);
          const client = await connectClient(a.mcpUrl, alice.token, "plain");
          try {
            const tool = `${BACKEND}__whoami`;
            const link = linkOfToolResult(await client.callTool({ name: tool, arguments: {} }));
            assert.ok(link.startsWith(`${aBase}/connect/${SERVICE}?ticket=`), link);

            // A sends the browser to the mock, which sends it straight back to A's callback.
            const toMock = await alice.browser.fetch(link);
            await toMock.body?.cancel();
            assert.equal(toMock.status, 303);
            const authorize = new URL(toMock.headers.get("location")!);
            assert.equal(`${authorize.origin}${authorize.pathname}`, `${mock.issuer}/authorize`);
            const back = await alice.browser.fetch(authorize.href);
            await back.body?.cancel();
            assert.equal(back.status, 302);
            const callback = back.headers.get("location")!;
            assert.ok(callback.startsWith(`${aBase}/connect/${SERVICE}/callback?`), callback);
            const done = await alice.browser.fetch(callback);
            const page = await done.text();
            assert.equal(done.status, 200, page);
            assert.match(page, /Connected/);

            // The configured client and scopes, PKCE, and a token for the resource only (RFC 8707).
            const asked = mock.received.authorizations.at(-1)!;
            assert.equal(asked.get("client_id"), CLIENT_ID);
            assert.equal(asked.get("scope"), "read");
            assert.equal(asked.get("resource"), resource.mcpUrl);
            assert.equal(asked.get("code_challenge_method"), "S256");
            assert.equal(asked.get("redirect_uri"), `${aBase}/connect/${SERVICE}/callback`);
            const exchange = mock.received.tokenRequests.at(-1)!;
            assert.equal(exchange.form.grant_type, "authorization_code");
            assert.equal(exchange.form.resource, resource.mcpUrl, "the resource reached the token request");
            assert.ok(exchange.form.code_verifier, "PKCE");
            const basic = /^Basic (.+)$/i.exec(exchange.authorization ?? "")?.[1];
            // RFC 6749 §2.3.1: Basic credentials are form-encoded first.
            const presented = basic === undefined
              ? exchange.form.client_secret
              : decodeURIComponent(atob(basic).split(":")[1]!);
            assert.equal(presented, CLIENT_SECRET, "the configured secret authenticated A");
            assert.equal(mock.received.issued.size, 1);

            // The call reaches the resource with the mock's token for alice, never A's own.
            const answered = await client.callTool({ name: tool, arguments: {} });
            assert.ok(!answered.isError, JSON.stringify(answered));
            const [token] = mock.received.issued;
            assert.equal(JSON.parse(textOf(answered)).authorization, `Bearer ${token}`);
            assert.ok(storedAtA(a, "alice"), "A keeps alice's token");
            for (const call of resource.calls) {
              assert.ok(
                !(call.authorization ?? "").includes(alice.token),
                "A's own token reached the resource",
              );
            }
            assert.ok(resource.calls.some((call) => call.status === 200), "the resource answered");
            assert.deepEqual(
              resource.calls.filter((call) => call.status === 401).map((call) => call.authorization),
              [null],
              "refused only A's unauthenticated discovery request",
            );
          } finally {
            await client.close();
          }
        })(),
        "the test",
      );
    } finally {
      await a.close();
    }
  } finally {
    await resource.close();
    await echo.stop();
    await mock.server.stop();
  }
});
