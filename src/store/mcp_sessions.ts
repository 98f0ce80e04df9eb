// The `mcp_sessions` table: 2025-era MCP sessions (Mcp-Session-Id), by the hash of their id, so that any
// replica on the store (or this one after a restart) can resume one it does not hold. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A session as stored; `state` is JSON text (what the front needs to resume it). */
export interface StoredMcpSession {
  /** "" for `/mcp`, else the backend of `/mcp/{backend}`. */
  readonly endpoint: string;
  readonly userId: string;
  readonly clientId: string | undefined;
  readonly state: string;
  /** Epoch ms. */
  readonly seenAt: number;
}

/** How many hashes one `touch` or `present` statement takes; shorter batches are padded with "". */
const BATCH = 32;
const PLACEHOLDERS = Array.from({ length: BATCH }, () => "?").join(", ");

const statements = preparedStatements({
  insert: `INSERT INTO mcp_sessions (session_hash, endpoint, user_id, client_id, state, created_at, seen_at)
    VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (session_hash) DO NOTHING`,
  findLive: `SELECT endpoint, user_id, client_id, state, seen_at FROM mcp_sessions
    WHERE session_hash = ? AND seen_at > ?`,
  touch: `UPDATE mcp_sessions SET seen_at = ? WHERE seen_at < ? AND session_hash IN (${PLACEHOLDERS})`,
  present: `SELECT session_hash FROM mcp_sessions WHERE session_hash IN (${PLACEHOLDERS})`,
  delete: "DELETE FROM mcp_sessions WHERE session_hash = ?",
  deleteIfUnseen: "DELETE FROM mcp_sessions WHERE session_hash = ? AND seen_at <= ?",
  deleteUnseen: "DELETE FROM mcp_sessions WHERE seen_at <= ?",
});

/** Records a session that was just opened; an id already recorded keeps its first record. */
export function insertMcpSession(
  store: Store,
  session: {
    sessionHash: string;
    endpoint: string;
    userId: string;
    clientId: string | undefined;
    state: string;
    createdAt: number;
  },
): void {
  statements(store).insert.run(
    session.sessionHash,
    session.endpoint,
    session.userId,
    session.clientId ?? null,
    session.state,
    session.createdAt,
    session.createdAt,
  );
}

/** The session with this hash, unless it was last seen at or before `seenAfterMs` (it expired). */
export function findLiveMcpSession(
  store: Store,
  sessionHash: string,
  seenAfterMs: number,
): StoredMcpSession | undefined {
  const row = statements(store).findLive.get(sessionHash, seenAfterMs) as
    | { endpoint: string; user_id: string; client_id: string | null; state: string; seen_at: number }
    | undefined;
  return row
    ? {
      endpoint: row.endpoint,
      userId: row.user_id,
      clientId: row.client_id ?? undefined,
      state: row.state,
      seenAt: row.seen_at,
    }
    : undefined;
}

/**
 * Moves `seen_at` of these sessions forward to `seenAt` (a replica that wrote a later time keeps it);
 * returns the hashes among them that still have a record (the others were ended or pruned).
 */
export function touchMcpSessions(
  store: Store,
  sessionHashes: readonly string[],
  seenAt: number,
): Set<string> {
  const { touch, present } = statements(store);
  const found = new Set<string>();
  for (let start = 0; start < sessionHashes.length; start += BATCH) {
    const batch = sessionHashes.slice(start, start + BATCH);
    const padded = [...batch, ...Array.from({ length: BATCH - batch.length }, () => "")];
    touch.run(seenAt, seenAt, ...padded);
    for (const row of present.all(...padded) as { session_hash: string }[]) found.add(row.session_hash);
  }
  return found;
}

export function deleteMcpSession(store: Store, sessionHash: string): void {
  statements(store).delete.run(sessionHash);
}

/** Deletes the session unless some replica saw it after `seenBeforeMs`; returns whether it did. */
export function deleteMcpSessionIfUnseen(store: Store, sessionHash: string, seenBeforeMs: number): boolean {
  return changes(statements(store).deleteIfUnseen.run(sessionHash, seenBeforeMs)) > 0;
}

/** Deletes every session last seen at or before `seenBeforeMs`; returns how many. */
export function deleteUnseenMcpSessions(store: Store, seenBeforeMs: number): number {
  return changes(statements(store).deleteUnseen.run(seenBeforeMs));
}
