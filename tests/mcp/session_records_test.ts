/**
 * SessionRecords (the front's side of `mcp_sessions`) and how LegacySessions keeps the records: ended
 * sessions deleted, idle ones deleted unless another replica saw them, `seen_at` written in one sweep, and
 * sessions ended elsewhere let go here.
 */
import assert from "node:assert/strict";
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import type { Caller } from "../../src/core/caller.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { BackendPool } from "../../src/mcp/backends/pool.ts";
import { SessionEventStore } from "../../src/mcp/event_store.ts";
import { LegacySessions } from "../../src/mcp/front/legacy_sessions.ts";
import {
  type ResumableState,
  SEEN_INTERVAL_MS,
  SESSION_IDLE_MS,
  SessionRecords,
} from "../../src/mcp/front/session_records.ts";
import { FrontSession } from "../../src/mcp/session.ts";
import { findLiveMcpSession, insertMcpSession, touchMcpSessions } from "../../src/store/mcp_sessions.ts";
import { openStore, type Store } from "../../src/store/store.ts";

const T0 = 1_760_000_000_000;
const ALICE: Caller = { id: "alice", name: "alice", groups: [], clientId: "agent" };
const STATE: ResumableState = {
  protocolVersion: "2025-11-25",
  clientInfo: { name: "test", version: "1" },
  clientCapabilities: { roots: {} },
};

interface World {
  readonly store: Store;
  readonly records: SessionRecords;
  readonly logs: Record<string, unknown>[];
  clock: number;
}

function withWorld(work: (world: World) => void | Promise<void>): Promise<void> {
  const store = openStore(":memory:");
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  const world: World = { store, logs, clock: T0, records: undefined! };
  Object.assign(world, { records: new SessionRecords(store, log, () => world.clock) });
  return Promise.resolve(work(world)).finally(() => store.close());
}

/** A held session with a transport that only counts its closes. */
function held(sessions: LegacySessions, id: string, recordKey: string) {
  const session = new FrontSession(id, ALICE, { kind: "aggregate" }, "legacy");
  let closed = 0;
  const transport = {
    close: () => {
      closed++;
      return Promise.resolve();
    },
  } as unknown as WebStandardStreamableHTTPServerTransport;
  sessions.add(session, transport, new SessionEventStore(), recordKey);
  return { session, closed: () => closed };
}

function legacySessions(records: SessionRecords): LegacySessions {
  const pool = { releaseSession() {} } as unknown as BackendPool;
  return new LegacySessions(pool, createLogger({ level: "error", write: () => {} }), records);
}

Deno.test("SessionRecords.find() gives back what opened() recorded, until it expires", async () => {
  await withWorld(async (world) => {
    const key = await world.records.keyOf("session-1");
    assert.notEqual(key, "session-1");
    world.records.opened(
      key,
      new FrontSession("session-1", ALICE, { kind: "backend", name: "mis" }, "legacy"),
      STATE,
    );
    assert.deepEqual(world.records.find(key), {
      endpoint: "mis",
      userId: "alice",
      clientId: "agent",
      state: STATE,
    });
    world.clock += SESSION_IDLE_MS - 1;
    assert.ok(world.records.find(key));
    world.clock += 1;
    assert.equal(world.records.find(key), undefined);
  });
});

Deno.test("SessionRecords.find() does not resume a record whose state it cannot read", async () => {
  await withWorld((world) => {
    for (const [hash, state] of [["a", "not json"], ["b", `{"protocolVersion":"2025-11-25"}`], ["c", "[]"]]) {
      insertMcpSession(world.store, {
        sessionHash: hash!,
        endpoint: "",
        userId: "alice",
        clientId: undefined,
        state: state!,
        createdAt: T0,
      });
      assert.equal(world.records.find(hash!), undefined);
    }
    assert.equal(
      world.logs.filter((line) => line.msg === "MCP session record unreadable: not resumed").length,
      3,
    );
  });
});

Deno.test("SessionRecords logs a write that fails instead of failing the request", async () => {
  await withWorld((world) => {
    world.store.db.exec("DROP TABLE mcp_sessions");
    world.records.opened("k", new FrontSession("s", ALICE, { kind: "aggregate" }, "legacy"), STATE);
    world.records.ended("k");
    assert.deepEqual(world.records.seen(["k"], T0), []);
    assert.equal(world.logs.filter((line) => line.level === "warn").length, 3);
  });
});

Deno.test("LegacySessions.end() deletes the record; close() keeps it for the next replica", async () => {
  await withWorld(async ({ records }) => {
    const sessions = legacySessions(records);
    for (const id of ["ended", "closed"]) {
      records.opened(id, new FrontSession(id, ALICE, { kind: "aggregate" }, "legacy"), STATE);
      held(sessions, id, id);
    }
    await sessions.end("ended");
    await sessions.close("closed");
    assert.equal(sessions.size, 0);
    assert.equal(records.find("ended"), undefined);
    assert.ok(records.find("closed"));
  });
});

Deno.test("LegacySessions.closeIdle() deletes an idle session's record unless another replica saw it lately", async () => {
  await withWorld((world) => {
    const sessions = legacySessions(world.records);
    const start = Date.now();
    world.clock = start;
    for (const id of ["idle", "busy elsewhere"]) {
      world.records.opened(id, new FrontSession(id, ALICE, { kind: "aggregate" }, "legacy"), STATE);
      held(sessions, id, id);
      // Last used at `start` exactly: adding it read the real clock, which a slow machine moves on.
      sessions.find(id, ALICE, { kind: "aggregate" })!.lastSeenAt = start;
    }
    world.clock = start + SESSION_IDLE_MS + 1;
    // Another replica served this one a minute ago.
    touchMcpSessions(world.store, ["busy elsewhere"], world.clock - SEEN_INTERVAL_MS);
    sessions.closeIdle(world.clock);
    assert.equal(sessions.size, 0);
    assert.equal(findLiveMcpSession(world.store, "idle", 0), undefined);
    assert.ok(findLiveMcpSession(world.store, "busy elsewhere", 0));
  });
});

Deno.test("LegacySessions.writeSeen() writes the sessions used since, and lets go those ended elsewhere", async () => {
  await withWorld((world) => {
    const sessions = legacySessions(world.records);
    const entries = new Map(["used", "unused", "ended elsewhere"].map((id) => {
      world.records.opened(id, new FrontSession(id, ALICE, { kind: "aggregate" }, "legacy"), STATE);
      return [id, held(sessions, id, id)] as const;
    }));
    const now = Date.now();
    // Every session is written once after it is added (a resumed one's record may be old)...
    sessions.writeSeen(now);
    assert.equal(findLiveMcpSession(world.store, "unused", 0)?.seenAt, now);
    // ...and then only when used since.
    sessions.find("used", ALICE, { kind: "aggregate" })!.lastSeenAt = now + 1;
    sessions.find("ended elsewhere", ALICE, { kind: "aggregate" })!.lastSeenAt = now + 1;
    world.records.ended("ended elsewhere");
    sessions.writeSeen(now + SEEN_INTERVAL_MS);
    assert.equal(findLiveMcpSession(world.store, "used", 0)?.seenAt, now + SEEN_INTERVAL_MS);
    assert.equal(findLiveMcpSession(world.store, "unused", 0)?.seenAt, now);
    assert.equal(entries.get("ended elsewhere")!.closed(), 1);
    assert.equal(sessions.has("ended elsewhere"), false);
    assert.equal(sessions.size, 2);
  });
});
