/**
 * Several replicas on one PostgreSQL store act as one gateway (product §10), end to end: real `gatehouse
 * serve` processes, each with its own data_dir, all with `gateway.store` naming one fresh database. A user
 * signed in on one is served by another (access token, refresh, revocation), a client registered on one is
 * known to the others, every replica publishes the same signing key, and a 2025-era session opened on one
 * continues on another after the first is killed (tests/mcp/session_resume_test.ts on PostgreSQL).
 */
import assert from "node:assert/strict";
import { decodeJwt, decodeProtectedHeader } from "jose";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { eventually } from "../helpers/gatehouse_process.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  ALLOW_EVERYONE,
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import {
  aliceHashOnce,
  basic,
  mcpInitialize,
  obtainCode,
  pkce,
  REDIRECT_URI,
  register,
  signedInTokens,
  tokenCall,
  type Tokens,
} from "../oauth/_flow.ts";
import { type Replicas, startReplicas } from "./_replicas.ts";

/**
 * A revocation made on one replica is refused by the others within about a second (LISTEN/NOTIFY, with a
 * periodic check behind it); twice that leaves room for a loaded machine.
 */
const REVOCATION_BOUND_MS = 2_000;

/** alice (a local user), one stdio backend `mis` on every replica, everyone allowed. */
async function oauthRegistry(): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", registrations_per_hour: 1000 },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
    backends: { mis: misbehaving("mis") },
    policies: [ALLOW_EVERYONE],
  };
}

/** Starts `count` replicas on a fresh database, runs `work`, and stops them whatever happens. */
async function withReplicas(count: number, work: (replicas: Replicas) => Promise<void>): Promise<void> {
  const replicas = await startReplicas(count, await freshDatabase(), await oauthRegistry());
  try {
    await work(replicas);
  } finally {
    await replicas.stop();
  }
}

/** Calls `mis__echo` in a new 2025-era session on `base`'s /mcp with `accessToken`; returns its text. */
async function echoThrough(base: string, accessToken: string, message: string): Promise<string> {
  const headers = { authorization: `Bearer ${accessToken}` };
  const sessionId = await openRawSession(`${base}/mcp`, headers);
  const response = await postRaw(`${base}/mcp`, sessionId, {
    jsonrpc: "2.0",
    id: 2,
    method: "tools/call",
    params: { name: "mis__echo", arguments: { message } },
  }, headers);
  const [answer] = await messagesOf(response);
  assert.equal(response.status, 200, JSON.stringify(answer));
  return textOf(answer?.result);
}

/** RFC 7009 revocation by a public client. */
async function revoke(base: string, clientId: string, token: string): Promise<void> {
  const answer = await tokenCall(base, { token, client_id: clientId }, {}, "/revoke");
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
}

Deno.test("replicas on PostgreSQL: a token from a sign-in on A works on B, refreshes on B, and B's revocation reaches A", async () => {
  await withReplicas(2, async ({ urls: [a, b] }) => {
    // Registration, authorize (local user, PKCE) and token, all on A.
    const { clientId, tokens } = await signedInTokens(a!);
    assert.equal(await echoThrough(b!, tokens.access_token, "A's token on B"), "mis: A's token on B");

    // The refresh family lives in the store: B rotates it, and the new access token works on A.
    const refreshed = await tokenCall(b!, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token,
      client_id: clientId,
    });
    assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
    const rotated = refreshed.body as unknown as Tokens;
    assert.notEqual(rotated.refresh_token, tokens.refresh_token);
    assert.equal(await echoThrough(a!, rotated.access_token, "B's token on A"), "mis: B's token on A");
    const reused = await tokenCall(a!, {
      grant_type: "refresh_token",
      refresh_token: rotated.refresh_token,
      client_id: clientId,
    });
    assert.equal(reused.status, 200, "A rotates what B issued");
    const latest = reused.body as unknown as Tokens;

    // Revoked on B: A refuses the access token within the bound, and the refresh token at once.
    assert.equal((await mcpInitialize(`${a}/mcp`, latest.access_token)).status, 200);
    await revoke(b!, clientId, latest.access_token);
    await eventually(
      async () => (await mcpInitialize(`${a}/mcp`, latest.access_token)).status === 401,
      REVOCATION_BOUND_MS,
    );
    await revoke(b!, clientId, latest.refresh_token);
    const afterRevocation = await tokenCall(a!, {
      grant_type: "refresh_token",
      refresh_token: latest.refresh_token,
      client_id: clientId,
    });
    assert.equal(afterRevocation.status, 400);
    assert.equal(afterRevocation.body.error, "invalid_grant");
  });
});

Deno.test("replicas on PostgreSQL: a client registered on A is known to B, and A's browser sign-in holds on B", async () => {
  await withReplicas(2, async ({ urls: [a, b] }) => {
    const registered = await register(a!, { client_name: "Registered on A" });
    const read = await fetch(`${b}/register/${encodeURIComponent(registered.client_id)}`, {
      headers: { authorization: `Bearer ${registered.registration_access_token}` },
    });
    const metadata = await read.json();
    assert.equal(read.status, 200, JSON.stringify(metadata));
    assert.equal(metadata.client_name, "Registered on A");

    // The browser signs in on A (for another client), then authorizes the new client on B: B knows the
    // client and the browser's session, and asks only for consent.
    const browser = new ScriptedBrowser();
    await signedInTokens(a!, { browser });
    const { verifier, challenge } = await pkce();
    const authorize = await browser.fetch(
      `${b}/authorize?${new URLSearchParams({
        response_type: "code",
        client_id: registered.client_id,
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: "S256",
        state: "on-b",
      })}`,
    );
    const page = await authorize.text();
    assert.equal(authorize.status, 200, page);
    assert.ok(page.includes('action="/authorize/consent"'), `expected the consent page on B, got: ${page}`);
    const approved = await browser.post(`${b}/authorize/consent`, { ...formFields(page), decision: "allow" });
    await approved.body?.cancel();
    assert.equal(approved.status, 303);
    const code = new URL(approved.headers.get("location")!).searchParams.get("code");
    assert.ok(code);

    // The code issued on B is exchanged on A.
    const exchanged = await tokenCall(a!, {
      grant_type: "authorization_code",
      client_id: registered.client_id,
      code,
      code_verifier: verifier,
      redirect_uri: REDIRECT_URI,
    });
    assert.equal(exchanged.status, 200, JSON.stringify(exchanged.body));
    assert.equal(decodeJwt(exchanged.body.access_token!).client_id, registered.client_id);

    // And a fresh browser on B signs in there with the same client.
    const { code: codeOnB } = await obtainCode(b!, registered.client_id, { challenge });
    assert.ok(codeOnB);
  });
});

Deno.test("replicas on PostgreSQL: every replica publishes the same signing key, and each one's tokens verify on the others", async () => {
  await withReplicas(3, async ({ urls }) => {
    const sets = await Promise.all(urls.map(async (url) => {
      const response = await fetch(`${url}/jwks.json`);
      assert.equal(response.status, 200);
      return await response.json() as { keys: { kid: string }[] };
    }));
    assert.ok(sets[0]!.keys.length >= 1, JSON.stringify(sets[0]));
    for (const set of sets.slice(1)) assert.deepEqual(set, sets[0]);

    const kids = new Set(sets[0]!.keys.map((key) => key.kid));
    for (const [index, url] of urls.entries()) {
      const { tokens } = await signedInTokens(url);
      assert.ok(
        kids.has(decodeProtectedHeader(tokens.access_token).kid!),
        `replica ${index} signs with a listed key`,
      );
      const other = urls[(index + 1) % urls.length]!;
      assert.equal((await mcpInitialize(`${other}/mcp`, tokens.access_token)).status, 200);
    }
  });
});

const AGENTS = {
  alice: { id: "alice-agent", secret: "alice-agent-secret-for-replica-tests", user: "alice" },
  bob: { id: "bob-agent", secret: "bob-agent-secret-for-replica-tests", user: "bob" },
} as const;
/** Bound on one MCP exchange: a hang fails the test instead of stalling it. */
const MCP_BOUND_MS = 15_000;
const TOOLS_LIST = { jsonrpc: "2.0", id: 9, method: "tools/list" };

async function agentToken(base: string, agent: { id: string; secret: string }): Promise<string> {
  const answer = await tokenCall(base, { grant_type: "client_credentials" }, basic(agent.id, agent.secret));
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return answer.body.access_token!;
}

/** POSTs one message in session `sessionId` with `token`, to `url`. */
function postInSession(url: string, token: string, sessionId: string, message: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify(message),
  });
}

Deno.test("replicas on PostgreSQL: a 2025-era session opened on A continues on B after A is killed", async () => {
  const replicas = await startReplicas(2, await freshDatabase(), {
    gateway: { auth: "oauth" },
    clients: Object.fromEntries(
      Object.values(AGENTS).map((agent) => [agent.id, {
        secret: agent.secret,
        grant_types: ["client_credentials"],
        user: agent.user,
      }]),
    ),
    backends: { mis: misbehaving("mis") },
    policies: [ALLOW_EVERYONE],
  });
  const [processA, processB] = replicas.processes;
  const [a, b] = replicas.urls as [string, string];
  // The load balancer: the client's requests go to whichever replica `target` names.
  let target = a;
  const balanced = (input: string | URL | Request, init?: RequestInit) =>
    fetch(String(input instanceof Request ? input.url : input).replace(a, target), init);
  let client: Client | undefined;
  await withCleanup(async () => {
    const [aliceToken, bobToken] = await Promise.all([
      agentToken(a, AGENTS.alice),
      agentToken(b, AGENTS.bob),
    ]);
    const transport = new StreamableHTTPClientTransport(new URL(`${a}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${aliceToken}` } },
      fetch: balanced,
    });
    client = new Client({ name: "replica-test", version: "1.0.0" }, { capabilities: {} });
    await within(MCP_BOUND_MS, client.connect(transport), "connect to A");
    const sessionId = transport.sessionId!;
    assert.ok(sessionId);
    const first = await within(
      MCP_BOUND_MS,
      client.callTool({ name: "mis__echo", arguments: { message: "on A" } }),
      "a call on A",
    );
    assert.equal(textOf(first), "mis: on A");

    target = b;
    await processA!.stop("SIGKILL");

    const stranger = await postInSession(`${b}/mcp`, bobToken, sessionId, TOOLS_LIST);
    assert.equal(stranger.status, 404, "another user's token with that id");
    await stranger.body?.cancel();

    const second = await within(
      MCP_BOUND_MS,
      client.callTool({ name: "mis__echo", arguments: { message: "on B" } }),
      "a call on B",
    );
    assert.equal(textOf(second), "mis: on B");
    assert.equal(transport.sessionId, sessionId, "the same session, no new initialize");
    await processB!.waitForLine((line) => line.includes('"MCP session resumed"'));
    assert.equal(processB!.lines.some((line) => line.includes('"MCP session opened"')), false);

    // DELETE on B ends it in the store: no replica knows it any more.
    await within(MCP_BOUND_MS, transport.terminateSession(), "DELETE on B");
    const ended = await postInSession(`${b}/mcp`, aliceToken, sessionId, TOOLS_LIST);
    assert.equal(ended.status, 404);
    await ended.body?.cancel();
  }, async () => {
    await client?.close().catch(() => {});
    await replicas.stop();
  });
});

Deno.test("replicas on PostgreSQL answer input holding a NUL byte as SQLite does, never 500", async () => {
  await withReplicas(1, async ({ urls: [base] }) => {
    // PostgreSQL text holds no U+0000: such input can name nothing stored, and must be refused as unknown.
    const browser = new ScriptedBrowser();
    const form = formFields(await (await browser.fetch(`${base}/connections`)).text());
    const login = await browser.post(`${base}/login`, { ...form, username: "al\u0000ice", password: "x" });
    await login.body?.cancel();
    assert.equal(login.status, 401, "an unknown account");

    const { challenge } = await pkce();
    const authorize = await fetch(
      `${base}/authorize?${new URLSearchParams({
        response_type: "code",
        client_id: "no\u0000such-client",
        redirect_uri: REDIRECT_URI,
        code_challenge: challenge,
        code_challenge_method: "S256",
      })}`,
    );
    await authorize.body?.cancel();
    assert.equal(authorize.status, 400, "an unknown client");

    const read = await fetch(`${base}/register/${encodeURIComponent("no\u0000such-client")}`, {
      headers: { authorization: "Bearer not-a-registration-token" },
    });
    await read.body?.cancel();
    assert.equal(read.status, 401, "an unknown client or registration token");
  });
});
