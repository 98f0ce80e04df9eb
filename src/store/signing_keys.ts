// The `signing_keys` table: the token signing keys every replica on a shared store uses, sealed with the
// vault key (the key itself never reaches the database in the clear).
import { preparedStatements } from "./_statements.ts";
import type { Store } from "./store.ts";

/** A stored signing key: its thumbprint and the sealed private JWK. */
export interface StoredSigningKey {
  readonly kid: string;
  readonly sealed: string;
}

const statements = preparedStatements({
  insert: `INSERT INTO signing_keys (kid, sealed, created_at) VALUES (?, ?, ?)
    ON CONFLICT (kid) DO NOTHING`,
  // The oldest unretired key signs: every replica picks the same one, whichever inserted first.
  signing: `SELECT kid, sealed FROM signing_keys WHERE retired_at IS NULL
    ORDER BY created_at, kid LIMIT 1`,
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
