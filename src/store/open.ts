// Which store a registry names: PostgreSQL at `gateway.store` (shared by replicas), else SQLite in the data
// directory.
import { openPostgresStore } from "./postgres/store.ts";
import { openStore, type OpenStoreOptions, type Store } from "./store.ts";

export async function openConfiguredStore(
  gateway: { readonly dataDir: string; readonly store: string | undefined },
  options: OpenStoreOptions = {},
): Promise<Store> {
  if (gateway.store !== undefined) return await openPostgresStore(gateway.store, options);
  return openStore(gateway.dataDir, options);
}
