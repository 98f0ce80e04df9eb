// Which store a registry names: PostgreSQL at `gateway.store` (shared by replicas), else SQLite in the data
// directory.
import { openPostgresStore } from "./postgres/store.ts";
import { ensureDataDir, openStore, type OpenStoreOptions, type Store } from "./store.ts";

export async function openConfiguredStore(
  gateway: { readonly dataDir: string; readonly store: string | undefined },
  options: OpenStoreOptions = {},
): Promise<Store> {
  if (gateway.store !== undefined) {
    // The data directory still holds what is per replica (generated secrets such as the first admin's).
    ensureDataDir(gateway.dataDir);
    return await openPostgresStore(gateway.store, options);
  }
  return openStore(gateway.dataDir, options);
}
