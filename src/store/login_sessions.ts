// The `browser_sessions` table: sign-ins at the gateway, by the hash of their cookie's token. Times are
// epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A browser session as stored; `identity` is JSON text. */
export interface StoredLoginSession {
  readonly identity: string;
  readonly csrf: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

const statements = preparedStatements({
  insert: `INSERT INTO browser_sessions (token_hash, user_id, identity, csrf, created_at, expires_at)
    VALUES (?, ?, ?, ?, ?, ?)`,
  findLive: "SELECT identity, csrf, expires_at FROM browser_sessions WHERE token_hash = ? AND expires_at > ?",
  delete: "DELETE FROM browser_sessions WHERE token_hash = ?",
  deleteLiveOfUser: "DELETE FROM browser_sessions WHERE user_id = ? AND expires_at > ?",
  deleteAllOfUser: "DELETE FROM browser_sessions WHERE user_id = ?",
  deleteExpired: "DELETE FROM browser_sessions WHERE expires_at <= ?",
});

export function insertLoginSession(
  store: Store,
  session: {
    tokenHash: string;
    userId: string;
    identity: string;
    csrf: string;
    createdAt: number;
    expiresAt: number;
  },
): void {
  statements(store).insert.run(
    session.tokenHash,
    session.userId,
    session.identity,
    session.csrf,
    session.createdAt,
    session.expiresAt,
  );
}

/** The session with this token hash, unless it expired by `nowMs`. */
export function findLiveLoginSession(
  store: Store,
  tokenHash: string,
  nowMs: number,
): StoredLoginSession | undefined {
  const row = statements(store).findLive.get(tokenHash, nowMs) as
    | { identity: string; csrf: string; expires_at: number }
    | undefined;
  return row ? { identity: row.identity, csrf: row.csrf, expiresAt: row.expires_at } : undefined;
}

export function deleteLoginSession(store: Store, tokenHash: string): void {
  statements(store).delete.run(tokenHash);
}

/** Deletes every session of a user; returns how many had not expired by `nowMs`. */
export function deleteLoginSessionsOfUser(store: Store, userId: string, nowMs: number): number {
  const live = changes(statements(store).deleteLiveOfUser.run(userId, nowMs));
  statements(store).deleteAllOfUser.run(userId);
  return live;
}

/** Deletes the sessions that expired by `nowMs`. */
export function deleteExpiredLoginSessions(store: Store, nowMs: number): void {
  statements(store).deleteExpired.run(nowMs);
}
