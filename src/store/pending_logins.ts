// The `pending_logins` table: sign-ins started at an upstream provider, waiting for its callback. Times are
// epoch ms.
import type { Store } from "./store.ts";
import { preparedStatements } from "./_statements.ts";

/** What a pending sign-in keeps for its callback. */
export interface StoredPendingLogin {
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
}

const statements = preparedStatements({
  deleteExpired: "DELETE FROM pending_logins WHERE expires_at <= ?",
  insert:
    `INSERT INTO pending_logins (state_hash, provider, code_verifier, nonce, return_to, binding_hash, address,
    created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  // Among sign-ins of the same millisecond the one inserted last counts as newest: SQLite's rowid grows with
  // each insert; PostgreSQL has no rowid, and the inserting transaction's id (xmin) grows the same way.
  keepNewestOfBrowser: {
    sqlite: `DELETE FROM pending_logins WHERE binding_hash = ? AND rowid NOT IN (
      SELECT rowid FROM pending_logins WHERE binding_hash = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)`,
    postgres: `DELETE FROM pending_logins WHERE binding_hash = ? AND state_hash NOT IN (
      SELECT state_hash FROM pending_logins WHERE binding_hash = ?
      ORDER BY created_at DESC, CAST(CAST(xmin AS text) AS bigint) DESC LIMIT ?)`,
  },
  take: `DELETE FROM pending_logins WHERE state_hash = ? AND binding_hash = ? AND provider = ?
    RETURNING code_verifier, nonce, return_to`,
});

/** Deletes the pending sign-ins that expired by `nowMs`. */
export function deleteExpiredPendingLogins(store: Store, nowMs: number): void {
  statements(store).deleteExpired.run(nowMs);
}

export function insertPendingLogin(
  store: Store,
  login: StoredPendingLogin & {
    stateHash: string;
    provider: string;
    bindingHash: string;
    /** The client network that started it. */
    address: string;
    createdAt: number;
    expiresAt: number;
  },
): void {
  statements(store).insert.run(
    login.stateHash,
    login.provider,
    login.codeVerifier,
    login.nonce,
    login.returnTo,
    login.bindingHash,
    login.address,
    login.createdAt,
    login.expiresAt,
  );
}

/** Deletes all but the newest `keep` pending sign-ins of one browser. */
export function keepNewestPendingLoginsOfBrowser(store: Store, bindingHash: string, keep: number): void {
  statements(store).keepNewestOfBrowser.run(bindingHash, bindingHash, keep);
}

/** Deletes and returns the pending sign-in of this state, browser and provider (single use). */
export function takePendingLogin(
  store: Store,
  key: { stateHash: string; bindingHash: string; provider: string },
): StoredPendingLogin | undefined {
  const row = statements(store).take.get(key.stateHash, key.bindingHash, key.provider) as
    | { code_verifier: string; nonce: string; return_to: string }
    | undefined;
  return row ? { codeVerifier: row.code_verifier, nonce: row.nonce, returnTo: row.return_to } : undefined;
}
