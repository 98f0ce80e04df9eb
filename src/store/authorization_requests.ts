// The `authorization_requests` table: validated authorization requests held for a consent form, by the
// hash of the form's handle. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A held request; `params` is a JSON object of its parameters. */
export interface StoredAuthorizationRequest {
  readonly bindingHash: string;
  readonly params: string;
  readonly expiresAt: number;
}

const statements = preparedStatements({
  deleteExpired: "DELETE FROM authorization_requests WHERE expires_at <= ?",
  insert: `INSERT INTO authorization_requests (handle_hash, binding_hash, params, expires_at)
    VALUES (?, ?, ?, ?)`,
  find: "SELECT binding_hash, params, expires_at FROM authorization_requests WHERE handle_hash = ?",
  delete: "DELETE FROM authorization_requests WHERE handle_hash = ?",
});

/** Deletes the held requests that expired by `nowMs`. */
export function deleteExpiredAuthorizationRequests(store: Store, nowMs: number): void {
  statements(store).deleteExpired.run(nowMs);
}

export function insertAuthorizationRequest(
  store: Store,
  request: StoredAuthorizationRequest & { handleHash: string },
): void {
  statements(store).insert.run(request.handleHash, request.bindingHash, request.params, request.expiresAt);
}

export function findAuthorizationRequest(
  store: Store,
  handleHash: string,
): StoredAuthorizationRequest | undefined {
  const row = statements(store).find.get(handleHash) as
    | { binding_hash: string; params: string; expires_at: number }
    | undefined;
  return row ? { bindingHash: row.binding_hash, params: row.params, expiresAt: row.expires_at } : undefined;
}

/** Deletes a held request; false when it was gone already (single use). */
export function deleteAuthorizationRequest(store: Store, handleHash: string): boolean {
  return changes(statements(store).delete.run(handleHash)) === 1;
}
