// The `backend_lists` table: the last lists of backends that need a third-party token. Times are epoch ms.
import type { Store } from "./store.ts";
import { preparedStatements } from "./_statements.ts";

/** A backend's list as stored: the hash of the definition it was listed under, and the items as JSON. */
export interface StoredBackendList {
  readonly definition: string;
  readonly items: string;
}

const statements = preparedStatements({
  find: "SELECT definition, items FROM backend_lists WHERE backend = ? AND method = ?",
  save: `INSERT INTO backend_lists (backend, method, definition, items, updated_at) VALUES (?, ?, ?, ?, ?)
    ON CONFLICT (backend, method) DO UPDATE SET
      definition = excluded.definition, items = excluded.items, updated_at = excluded.updated_at`,
});

export function findBackendList(
  store: Store,
  backend: string,
  method: string,
): StoredBackendList | undefined {
  const row = statements(store).find.get(backend, method) as StoredBackendList | undefined;
  return row ? { definition: row.definition, items: row.items } : undefined;
}

/** Inserts or replaces a backend's list for `method`. */
export function saveBackendList(
  store: Store,
  list: { backend: string; method: string; definition: string; items: string; updatedAt: number },
): void {
  statements(store).save.run(list.backend, list.method, list.definition, list.items, list.updatedAt);
}
