// The `signing_keys` table: the token signing keys every replica on a shared store uses, sealed with the
// vault key (the key itself never reaches the database in the clear). One key is unretired and signs; keys
// retired since a cutoff still verify the tokens they signed.
import { preparedStatements } from "./_statements.ts";
import type { Store } from "./store.ts";

/** A stored signing key: its thumbprint and the sealed private JWK. */
export interface StoredSigningKey {
  readonly kid: string;
  readonly sealed: string;
}

/** A key as listed: with when it was made and retired (epoch ms). */
export interface ListedSigningKey extends StoredSigningKey {
  readonly createdAt: number;
  readonly retiredAt: number | undefined;
}

const statements = preparedStatements({
  insert: `INSERT INTO signing_keys (kid, sealed, created_at) VALUES (?, ?, ?)
    ON CONFLICT (kid) DO NOTHING`,
  signing: `SELECT kid, sealed FROM signing_keys WHERE retired_at IS NULL
    ORDER BY created_at DESC, kid LIMIT 1`,
  retireAll: "UPDATE signing_keys SET retired_at = ? WHERE retired_at IS NULL",
  // The signing key first, then the retired ones, newest first.
  since: `SELECT kid, sealed, created_at, retired_at FROM signing_keys
    WHERE retired_at IS NULL OR retired_at > ? ORDER BY retired_at IS NOT NULL, created_at DESC`,
  all: "SELECT kid, sealed, created_at, retired_at FROM signing_keys ORDER BY created_at",
  deleteRetiredBefore: "DELETE FROM signing_keys WHERE retired_at IS NOT NULL AND retired_at <= ?",
});

/** The key that signs, creating it from `candidate` when the store holds none (first start of the first replica). */
export function signingKeyOrInsert(
  store: Store,
  candidate: StoredSigningKey,
  nowMs: number,
): StoredSigningKey {
  return store.transaction(() => {
    const existing = statements(store).signing.get() as StoredSigningKey | undefined;
    if (existing !== undefined) return { kid: existing.kid, sealed: existing.sealed };
    statements(store).insert.run(candidate.kid, candidate.sealed, nowMs);
    return candidate;
  });
}

/** Whether the store holds a key that signs. */
export function hasSigningKey(store: Store): boolean {
  return statements(store).signing.get() !== undefined;
}

/** Retires the signing key and makes `next` the one that signs, in one transaction. */
export function rotateSigningKey(store: Store, next: StoredSigningKey, nowMs: number): void {
  store.transaction(() => {
    statements(store).retireAll.run(nowMs);
    statements(store).insert.run(next.kid, next.sealed, nowMs);
  });
}

/** The signing key and the keys retired after `retiredAfterMs`: the ones tokens may still carry. */
export function verificationSigningKeys(store: Store, retiredAfterMs: number): ListedSigningKey[] {
  return (statements(store).since.all(retiredAfterMs) as unknown as SigningKeyRow[]).map(listed);
}

/** Every stored key, oldest first. */
export function allSigningKeys(store: Store): ListedSigningKey[] {
  return (statements(store).all.all() as unknown as SigningKeyRow[]).map(listed);
}

/** Deletes keys retired by `cutoffMs` (no token they signed is still valid); returns how many. */
export function deleteSigningKeysRetiredBefore(store: Store, cutoffMs: number): number {
  return Number(statements(store).deleteRetiredBefore.run(cutoffMs).changes);
}

interface SigningKeyRow {
  kid: string;
  sealed: string;
  created_at: number;
  retired_at: number | null;
}

function listed(row: SigningKeyRow): ListedSigningKey {
  return {
    kid: row.kid,
    sealed: row.sealed,
    createdAt: row.created_at,
    retiredAt: row.retired_at ?? undefined,
  };
}
