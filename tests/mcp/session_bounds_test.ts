/**
 * End-to-end: what one 2025-era session, one user and one slow backend may cost the gateway — the replay
 * buffer's byte bound, `gateway.max_sessions_per_user`, and an `initialize` that waits on no backend.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../helpers/gatehouse_process.ts";
import {
  connectV2,
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  registryWith,
  startTestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce, signedInTokens, startOAuthGateway } from "../oauth/_flow.ts";
import { hashPassword } from "../../src/login/password.ts";
import type { Client } from "@modelcontextprotocol/client";

const BOUND_MS = 10_000;
const SILENT = join(ROOT, "tests", "fixtures", "silent_server.ts");
const BOB = { username: "bob", password: "bob-password-for-tests" } as const;
const PING = { jsonrpc: "2.0", id: 7, method: "ping" };

/** The events of an SSE body, with their ids. */
async function eventsOf(response: Response): Promise<{ id: string | undefined; data: string }[]> {
  const text = await response.text();
  return text.split(/\r?\n\r?\n/).filter((event) => event.trim() !== "").map((event) => {
    const lines = event.split(/\r?\n/);
    return {
      id: lines.find((line) => line.startsWith("id:"))?.slice(3).trim(),
      data: lines.filter((line) => line.startsWith("data:")).map((line) => line.slice(5)).join("\n").trim(),
    };
  });
}

/** GET with Last-Event-ID: what the gateway replays of that event's stream. */
function resume(url: string, sessionId: string, lastEventId: string): Promise<Response> {
  return fetch(url, {
    headers: {
      accept: "text/event-stream",
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
      "last-event-id": lastEventId,
    },
  });
}

/** Calls the fixture's echo tool in a raw session; returns the priming event's id and the answer. */
async function echoCall(url: string, sessionId: string, id: number, message: string) {
  const response = await postRaw(url, sessionId, {
    jsonrpc: "2.0",
    id,
    method: "tools/call",
    params: { name: "mis__echo", arguments: { message } },
  });
  assert.equal(response.status, 200);
  const events = await eventsOf(response);
  const priming = events.find((event) => event.data === "");
  const answer = events.find((event) => event.data !== "");
  assert.ok(priming?.id && answer, JSON.stringify(events.map((event) => event.id)));
  return { primingId: priming.id, answer: JSON.parse(answer.data) as Record<string, unknown> };
}

Deno.test("McpFront.handle() replays recent events after Last-Event-ID, within the session's byte bound", async () => {
  const gateway = await startTestGateway(registryWith({ mis: misbehaving("mis") }));
  await withCleanup(async () => {
    const url = gateway.mcpUrl;
    const sessionId = await openRawSession(url);
    // A small answer is replayed whole to a client that lost its stream after the priming event.
    const small = await echoCall(url, sessionId, 2, "hello");
    const replayed = await eventsOf(await resume(url, sessionId, small.primingId));
    assert.deepEqual(replayed.map((event) => JSON.parse(event.data)), [small.answer]);

    // Three answers of 1.5 MiB: the 4 MiB buffer keeps the newest, not all of them.
    const big = "x".repeat(1.5 * 1024 * 1024);
    const calls = [];
    for (let id = 3; id <= 5; id++) calls.push(await echoCall(url, sessionId, id, big));
    const first = await eventsOf(await resume(url, sessionId, calls[0]!.primingId));
    assert.deepEqual(first, [], "the oldest big answer was dropped");
    const last = await eventsOf(await resume(url, sessionId, calls[2]!.primingId));
    assert.equal(last.length, 1);
    assert.equal(textOf((JSON.parse(last[0]!.data) as { result: unknown }).result), `mis: ${big}`);
  }, () => gateway.close());
});

/** POSTs one JSON-RPC message in a 2025-11-25 session with a bearer token. */
function postAs(url: string, token: string, sessionId: string, message: unknown): Promise<Response> {
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

Deno.test("McpFront.handle() closes a user's least recently used session beyond max_sessions_per_user", async () => {
  const gateway = await startOAuthGateway({ max_sessions_per_user: 3 }, {
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await hashPassword(BOB.password), groups: ["staff"] },
      },
    },
  });
  await withCleanup(async () => {
    const url = gateway.mcpUrl;
    const alice = (await signedInTokens(gateway.base, { credentials: ALICE })).tokens.access_token;
    const bob = (await signedInTokens(gateway.base, { credentials: BOB })).tokens.access_token;
    const open = (token: string) => openRawSession(url, { authorization: `Bearer ${token}` });
    // Bob's session is the oldest of all: only alice's own sessions count against alice's cap.
    const bobs = [await open(bob), await open(bob)];
    const alices = [];
    for (let index = 0; index < 4; index++) alices.push(await open(alice));

    const first = await postAs(url, alice, alices[0]!, PING);
    assert.equal(first.status, 404, await first.text());
    for (const sessionId of alices.slice(1)) {
      const [answer] = await messagesOf(await postAs(url, alice, sessionId, PING));
      assert.deepEqual(answer?.result, {}, JSON.stringify(answer));
    }
    for (const sessionId of bobs) {
      const [answer] = await messagesOf(await postAs(url, bob, sessionId, PING));
      assert.deepEqual(answer?.result, {}, JSON.stringify(answer));
    }
  }, () => gateway.close());
});

Deno.test("McpFront.handle() answers initialize and lists without waiting on a backend whose handshake hangs", async () => {
  const gateway = await startTestGateway(registryWith({
    good: misbehaving("good"),
    // A process that reads its input and never answers initialize: the pool gives up after `timeout`
    // (kept below the test's shutdown bound, which a handshake still starting holds up).
    silent: { stdio: { command: Deno.execPath(), args: ["run", SILENT] }, timeout: "5s" },
  }));
  const clients: Client[] = [];
  await withCleanup(async () => {
    clients.push(await within(1_500, connectV2(gateway.mcpUrl, "2025-11-25"), "2025-11-25 initialize"));
    clients.push(await within(1_500, connectV2(gateway.mcpUrl, "2026-07-28"), "2026-07-28 discover"));
    assert.ok(clients[0]!.getServerCapabilities()?.tools, "tools are announced");
    // The aggregate list waits for the silent backend at most gateway.list_timeout (2 s), then goes on.
    for (const client of clients) {
      const listed = await within(4_000, client.listTools(), "tools/list on /mcp");
      const names = listed.tools.map((tool) => tool.name);
      assert.ok(names.includes("good__echo"), names.join(", "));
      assert.ok(!names.some((name) => name.startsWith("silent__")), names.join(", "));
    }
    // The good backend serves calls meanwhile.
    const call = clients[0]!.callTool({ name: "good__echo", arguments: { message: "hi" } });
    assert.equal(textOf(await within(BOUND_MS, call, "good__echo")), "good: hi");
  }, async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gateway.close();
  });
});
