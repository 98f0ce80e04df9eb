// The `local_users` table: people who sign in with a password kept in the store (the first-start admin).
// Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A local user as stored; `groups` is a JSON array. */
export interface StoredLocalUser {
  readonly passwordHash: string;
  readonly groups: string;
}

const statements = preparedStatements({
  find: "SELECT password_hash, groups FROM local_users WHERE name = ?",
  any: "SELECT 1 FROM local_users LIMIT 1",
  insert: `INSERT INTO local_users (name, password_hash, groups, created_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (name) DO NOTHING`,
});

export function findLocalUser(store: Store, name: string): StoredLocalUser | undefined {
  // No stored name holds U+0000 (PostgreSQL text cannot), and PostgreSQL refuses it even as a parameter.
  if (name.includes("\0")) return undefined;
  const row = statements(store).find.get(name) as { password_hash: string; groups: string } | undefined;
  return row ? { passwordHash: row.password_hash, groups: row.groups } : undefined;
}

/** True when the store holds any local user. */
export function hasLocalUsers(store: Store): boolean {
  return statements(store).any.get() !== undefined;
}

/** Adds a local user unless one of that name exists; returns whether it was added. */
export function insertLocalUser(
  store: Store,
  user: { name: string; passwordHash: string; groups: string; createdAt: number },
): boolean {
  return changes(statements(store).insert.run(user.name, user.passwordHash, user.groups, user.createdAt)) ===
    1;
}
