/** The `mcp_sessions` table family: 2025-era sessions any replica can resume, by the hash of their id. */
import assert from "node:assert/strict";
import {
  deleteMcpSession,
  deleteMcpSessionIfUnseen,
  deleteUnseenMcpSessions,
  findLiveMcpSession,
  insertMcpSession,
  touchMcpSessions,
} from "../../src/store/mcp_sessions.ts";
import { openStore, type Store } from "../../src/store/store.ts";

/** Real epoch milliseconds, beyond 32 bits. */
const T0 = 1_760_000_000_000;

function withStore(work: (store: Store) => void): void {
  const store = openStore(":memory:");
  try {
    work(store);
  } finally {
    store.close();
  }
}

/** Records session `hash` of alice on /mcp, through `clientId` (null: no client). */
function insert(store: Store, hash: string, at = T0, clientId: string | null = "client-1"): void {
  insertMcpSession(store, {
    sessionHash: hash,
    endpoint: "",
    userId: "alice",
    clientId: clientId ?? undefined,
    state: `{"protocolVersion":"2025-11-25"}`,
    createdAt: at,
  });
}

Deno.test("findLiveMcpSession() finds a session seen after the cutoff, as it was recorded", () => {
  withStore((store) => {
    insert(store, "h1");
    insert(store, "h2", T0, null);
    assert.deepEqual(findLiveMcpSession(store, "h1", T0 - 1), {
      endpoint: "",
      userId: "alice",
      clientId: "client-1",
      state: `{"protocolVersion":"2025-11-25"}`,
      seenAt: T0,
    });
    assert.equal(findLiveMcpSession(store, "h2", T0 - 1)?.clientId, undefined);
    assert.equal(findLiveMcpSession(store, "h1", T0), undefined, "seen at the cutoff: expired");
    assert.equal(findLiveMcpSession(store, "unknown", 0), undefined);
  });
});

Deno.test("insertMcpSession() keeps the first record of a hash", () => {
  withStore((store) => {
    insert(store, "h1", T0, "first");
    insert(store, "h1", T0 + 5, "second");
    assert.equal(findLiveMcpSession(store, "h1", 0)?.clientId, "first");
  });
});

Deno.test("touchMcpSessions() moves seen_at forward only, and tells which hashes still have a record", () => {
  withStore((store) => {
    // More than one batch of 32.
    const hashes = Array.from({ length: 40 }, (_, index) => `h${index}`);
    for (const hash of hashes) insert(store, hash);
    deleteMcpSession(store, "h3");
    deleteMcpSession(store, "h35");
    const present = touchMcpSessions(store, hashes, T0 + 60_000);
    assert.deepEqual([...hashes].filter((hash) => !present.has(hash)), ["h3", "h35"]);
    assert.equal(findLiveMcpSession(store, "h39", 0)?.seenAt, T0 + 60_000);
    // A replica that wrote a later time keeps it.
    touchMcpSessions(store, ["h0"], T0 + 30_000);
    assert.equal(findLiveMcpSession(store, "h0", 0)?.seenAt, T0 + 60_000);
    assert.deepEqual(touchMcpSessions(store, [], T0), new Set());
  });
});

Deno.test("deleteMcpSessionIfUnseen() spares a session seen after the cutoff", () => {
  withStore((store) => {
    insert(store, "old", T0);
    insert(store, "seen", T0 + 10);
    assert.equal(deleteMcpSessionIfUnseen(store, "seen", T0 + 5), false);
    assert.equal(deleteMcpSessionIfUnseen(store, "old", T0 + 5), true);
    assert.equal(findLiveMcpSession(store, "old", 0), undefined);
    assert.ok(findLiveMcpSession(store, "seen", 0));
  });
});

Deno.test("deleteUnseenMcpSessions() prunes the sessions last seen at or before the cutoff", () => {
  withStore((store) => {
    insert(store, "a", T0);
    insert(store, "b", T0 + 1);
    insert(store, "c", T0 + 2);
    assert.equal(deleteUnseenMcpSessions(store, T0 + 1), 2);
    assert.ok(findLiveMcpSession(store, "c", 0));
    assert.equal(deleteUnseenMcpSessions(store, T0 + 1), 0);
  });
});
