// The `service_tokens` table: users' tokens for third-party services, sealed by the vault. Times are
// epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A stored connection without its token. */
export interface StoredConnection {
  readonly userId: string;
  readonly service: string;
  readonly scope: string;
  /** Epoch ms of the access token's expiry, when the service said. */
  readonly expiresAt: number | undefined;
  readonly updatedAt: number;
}

/** A user's sealed token for a service, with its times. */
export interface StoredServiceToken {
  readonly sealed: string;
  readonly expiresAt: number | undefined;
  readonly updatedAt: number;
}

const statements = preparedStatements({
  listAll:
    "SELECT user_id, service, scope, expires_at, updated_at FROM service_tokens ORDER BY user_id, service",
  listOfUser: `SELECT user_id, service, scope, expires_at, updated_at FROM service_tokens WHERE user_id = ?
    ORDER BY service`,
  find: "SELECT sealed, expires_at, updated_at FROM service_tokens WHERE user_id = ? AND service = ?",
  save:
    `INSERT INTO service_tokens (user_id, service, sealed, scope, expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (user_id, service) DO UPDATE SET sealed = excluded.sealed, scope = excluded.scope,
      expires_at = excluded.expires_at, updated_at = excluded.updated_at, refresh_claimed_at = NULL`,
  delete: "DELETE FROM service_tokens WHERE user_id = ? AND service = ?",
  claimRefresh: `UPDATE service_tokens SET refresh_claimed_at = ?
    WHERE user_id = ? AND service = ? AND updated_at = ? AND (refresh_claimed_at IS NULL OR refresh_claimed_at <= ?)`,
  releaseRefresh: `UPDATE service_tokens SET refresh_claimed_at = NULL
    WHERE user_id = ? AND service = ? AND refresh_claimed_at = ?`,
});

/**
 * Claims the refresh of the token saved at `updatedAt`, unless another process claimed it less than
 * `leaseMs` ago or it was replaced meanwhile; returns whether this process refreshes it.
 */
export function claimServiceTokenRefresh(
  store: Store,
  token: { userId: string; service: string; updatedAt: number },
  nowMs: number,
  leaseMs: number,
): boolean {
  const result = statements(store).claimRefresh.run(
    nowMs,
    token.userId,
    token.service,
    token.updatedAt,
    nowMs - leaseMs,
  );
  return changes(result) === 1;
}

/** Gives up a claim that did not end in a saved token (the refresh failed), so that another may try. */
export function releaseServiceTokenRefresh(
  store: Store,
  token: { userId: string; service: string },
  claimedAt: number,
): void {
  statements(store).releaseRefresh.run(token.userId, token.service, claimedAt);
}

interface ConnectionRow {
  user_id: string;
  service: string;
  scope: string;
  expires_at: number | null;
  updated_at: number;
}

/** Stored connections, of one user or of everyone, by user then service. */
export function listServiceConnections(store: Store, userId?: string): StoredConnection[] {
  const rows =
    (userId === undefined
      ? statements(store).listAll.all()
      : statements(store).listOfUser.all(userId)) as unknown as ConnectionRow[];
  return rows.map((row) => ({
    userId: row.user_id,
    service: row.service,
    scope: row.scope,
    expiresAt: row.expires_at ?? undefined,
    updatedAt: row.updated_at,
  }));
}

export function findServiceToken(
  store: Store,
  userId: string,
  service: string,
): StoredServiceToken | undefined {
  const row = statements(store).find.get(userId, service) as
    | { sealed: string; expires_at: number | null; updated_at: number }
    | undefined;
  return row
    ? { sealed: row.sealed, expiresAt: row.expires_at ?? undefined, updatedAt: row.updated_at }
    : undefined;
}

/** Inserts or replaces a user's token for a service. */
export function saveServiceToken(
  store: Store,
  token: {
    userId: string;
    service: string;
    sealed: string;
    scope: string;
    expiresAt: number | undefined;
    updatedAt: number;
  },
): void {
  statements(store).save.run(
    token.userId,
    token.service,
    token.sealed,
    token.scope,
    token.expiresAt ?? null,
    token.updatedAt,
  );
}

export function deleteServiceToken(store: Store, userId: string, service: string): void {
  statements(store).delete.run(userId, service);
}
