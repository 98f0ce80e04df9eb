/**
 * Resuming 2025-era sessions, in process: two gateways on one data directory (as replicas on one store),
 * or one gateway restarted on its own. Concurrent requests resume a session once; a GET with a
 * Last-Event-ID the resuming process does not hold gets a fresh stream; another endpoint's id is unknown;
 * a shutdown keeps the records, a DELETE does not.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { ANONYMOUS } from "../../src/core/caller.ts";
import {
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  registryWith,
  textOf,
  withCleanup,
  withDefaultPolicy,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 10_000;
const TOOLS_LIST = { jsonrpc: "2.0", id: 2, method: "tools/list" };

interface Replica {
  readonly gateway: RunningGateway;
  readonly mcpUrl: string;
  readonly logs: Record<string, unknown>[];
}

/** Gateways on one data directory (auth: none, so every request is anonymous's), started one at a time. */
class Replicas {
  readonly #dir: string;
  readonly #running: Replica[] = [];

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async create(): Promise<Replicas> {
    const dir = await Deno.makeTempDir({ prefix: "gatehouse-resume-front-" });
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      JSON.stringify(withDefaultPolicy(registryWith({ mis: misbehaving("mis") }))),
    );
    await Deno.mkdir(join(dir, "data"), { mode: 0o700 });
    return new Replicas(dir);
  }

  async start(): Promise<Replica> {
    const logs: Record<string, unknown>[] = [];
    const log = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
    const gateway = await startGateway({
      registryPath: join(this.#dir, "registry.yaml"),
      listen: "127.0.0.1:0",
      dataDir: join(this.#dir, "data"),
      log,
      watch: false,
    });
    const replica = { gateway, mcpUrl: `${gateway.url}/mcp`, logs };
    this.#running.push(replica);
    return replica;
  }

  async stop(replica: Replica): Promise<void> {
    this.#running.splice(this.#running.indexOf(replica), 1);
    await within(8_000, replica.gateway.shutdown(), "gateway shutdown");
  }

  async close(): Promise<void> {
    await Promise.all([...this.#running].map((replica) => this.stop(replica)));
    await Deno.remove(this.#dir, { recursive: true });
  }
}

const resumptions = (replica: Replica) =>
  replica.logs.filter((line) => line.msg === "MCP session resumed").length;

function echo(id: number, message: string) {
  return { jsonrpc: "2.0", id, method: "tools/call", params: { name: "mis__echo", arguments: { message } } };
}

Deno.test("McpFront resumes a session once for concurrent first requests on another replica", async () => {
  const replicas = await Replicas.create();
  await withCleanup(async () => {
    const [a, b] = [await replicas.start(), await replicas.start()];
    const sessionId = await within(BOUND_MS, openRawSession(a.mcpUrl), "initialize on A");
    // Straight into B's front, all three before any is answered: they meet in the resumption.
    const post = (message: unknown) =>
      b.gateway.front.handle(
        new Request(b.mcpUrl, {
          method: "POST",
          headers: { ...JSON_HEADERS, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" },
          body: JSON.stringify(message),
        }),
        { kind: "aggregate" },
        ANONYMOUS,
      ).then(messagesOf);
    const answers = await within(
      BOUND_MS,
      Promise.all([post(echo(3, "one")), post(echo(4, "two")), post(TOOLS_LIST)]),
      "concurrent requests on B",
    );
    assert.equal(textOf(answers[0]!.at(-1)!.result), "mis: one");
    assert.equal(textOf(answers[1]!.at(-1)!.result), "mis: two");
    const tools = (answers[2]!.at(-1)!.result as { tools: { name: string }[] }).tools;
    assert.ok(tools.some((tool) => tool.name === "mis__echo"));
    assert.equal(resumptions(b), 1);
    assert.equal(b.gateway.front.stats().legacySessions, 1);
  }, () => replicas.close());
});

Deno.test("McpFront answers a Last-Event-ID it does not hold with a fresh stream, not an error", async () => {
  const replicas = await Replicas.create();
  await withCleanup(async () => {
    const [a, b] = [await replicas.start(), await replicas.start()];
    const sessionId = await within(BOUND_MS, openRawSession(a.mcpUrl), "initialize on A");
    // A call on A leaves events (with ids) in A's memory only.
    const call = await postRaw(a.mcpUrl, sessionId, echo(3, "on A"));
    const text = await call.text();
    const lastEventId = /^id: (.+)$/m.exec(text)?.[1];
    assert.ok(lastEventId, text);
    const controller = new AbortController();
    const resumed = await fetch(b.mcpUrl, {
      headers: {
        accept: "text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-11-25",
        "last-event-id": lastEventId,
      },
      signal: controller.signal,
    });
    assert.equal(resumed.status, 200);
    assert.equal(resumed.headers.get("content-type"), "text/event-stream");
    assert.equal(resumed.headers.get("mcp-session-id"), sessionId);
    controller.abort();
    await resumed.body?.cancel().catch(() => {});
    // The same on A, which holds the events, replays them.
    const replayed = await fetch(a.mcpUrl, {
      headers: {
        accept: "text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-11-25",
        "last-event-id": lastEventId,
      },
    });
    assert.equal(replayed.status, 200);
    assert.match(await replayed.text(), /mis: on A/);
  }, () => replicas.close());
});

Deno.test("McpFront resumes a session only on the endpoint it was opened on", async () => {
  const replicas = await Replicas.create();
  await withCleanup(async () => {
    const [a, b] = [await replicas.start(), await replicas.start()];
    const sessionId = await within(BOUND_MS, openRawSession(a.mcpUrl), "initialize on A");
    const elsewhere = await postRaw(`${b.mcpUrl}/mis`, sessionId, TOOLS_LIST);
    assert.equal(elsewhere.status, 404);
    await elsewhere.body?.cancel();
    assert.equal(resumptions(b), 0);
    const here = await postRaw(b.mcpUrl, sessionId, TOOLS_LIST);
    assert.equal(here.status, 200);
    await here.body?.cancel();
    assert.equal(resumptions(b), 1);
  }, () => replicas.close());
});

Deno.test("McpFront: a restart keeps the sessions' records, DELETE ends a session on every replica", async () => {
  const replicas = await Replicas.create();
  await withCleanup(async () => {
    const first = await replicas.start();
    const sessionId = await within(BOUND_MS, openRawSession(first.mcpUrl), "initialize");
    await replicas.stop(first);

    const restarted = await replicas.start();
    const after = await postRaw(restarted.mcpUrl, sessionId, echo(3, "after a restart"));
    assert.equal(after.status, 200);
    assert.equal(textOf((await messagesOf(after)).at(-1)!.result), "mis: after a restart");

    const other = await replicas.start();
    const ended = await fetch(other.mcpUrl, {
      method: "DELETE",
      headers: { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" },
    });
    assert.equal(ended.status, 200);
    await ended.body?.cancel();
    const third = await replicas.start();
    const gone = await postRaw(third.mcpUrl, sessionId, TOOLS_LIST);
    assert.equal(gone.status, 404);
    await gone.body?.cancel();
    assert.equal(
      restarted.gateway.store.db.prepare("SELECT COUNT(*) AS n FROM mcp_sessions").get()?.n,
      0,
    );
  }, () => replicas.close());
});

Deno.test("McpFront records the version it negotiated, and a replica resumes the session with it", async () => {
  const replicas = await Replicas.create();
  await withCleanup(async () => {
    const [a, b] = [await replicas.start(), await replicas.start()];
    // A version the gateway does not speak: it answers with its own, and that is what the session speaks.
    const opened = await fetch(a.mcpUrl, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: {
          protocolVersion: "2024-01-01",
          capabilities: {},
          clientInfo: { name: "old", version: "1" },
        },
      }),
    });
    const negotiated = ((await messagesOf(opened))[0]?.result as { protocolVersion: string }).protocolVersion;
    const sessionId = opened.headers.get("mcp-session-id")!;
    assert.notEqual(negotiated, "2024-01-01");
    const row = a.gateway.store.db.prepare("SELECT state FROM mcp_sessions").get() as { state: string };
    assert.deepEqual(JSON.parse(row.state), {
      protocolVersion: negotiated,
      clientInfo: { name: "old", version: "1" },
      clientCapabilities: {},
    });
    const listed = await postRaw(b.mcpUrl, sessionId, TOOLS_LIST);
    assert.equal(listed.status, 200);
    await listed.body?.cancel();
    assert.equal(b.logs.find((line) => line.msg === "MCP session resumed")?.protocol_version, negotiated);
  }, () => replicas.close());
});
