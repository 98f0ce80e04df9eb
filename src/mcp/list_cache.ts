// The lists of backends that need a third-party token, as last listed for anyone: shown to users who have
// not connected the service yet, kept in the store across restarts, dropped when the backend changes.
import { backendIdentity } from "../config/diff.ts";
import type { BackendSettings } from "../config/types.ts";
import { hashSecret } from "../core/secrets.ts";
import { findBackendList, saveBackendList } from "../store/list_cache.ts";
import type { Store } from "../store/store.ts";

type Items = Record<string, unknown>[];

/**
 * The last lists of backends that need a third-party token, kept in the store so that they survive a
 * restart. A user who has not connected the service yet is shown these (a call then brings the consent
 * link). An entry counts only while the backend's definition is the one it was listed under.
 */
export class ListCache {
  readonly #store: Store | undefined;
  readonly #memory = new Map<string, { definition: string; items: string }>();
  readonly #definitions = new WeakMap<BackendSettings, Promise<string>>();

  constructor(store?: Store) {
    this.#store = store;
  }

  #definition(backend: BackendSettings): Promise<string> {
    let definition = this.#definitions.get(backend);
    if (!definition) {
      definition = hashSecret(backendIdentity(backend));
      this.#definitions.set(backend, definition);
    }
    return definition;
  }

  async get(backend: BackendSettings, method: string): Promise<Items | undefined> {
    const definition = await this.#definition(backend);
    const key = `${backend.name}\n${method}`;
    let entry = this.#memory.get(key);
    if (!entry && this.#store) {
      entry = findBackendList(this.#store, backend.name, method);
      if (entry) this.#memory.set(key, entry);
    }
    if (!entry || entry.definition !== definition) return undefined;
    return JSON.parse(entry.items) as Items;
  }

  /** Remembers a backend's list; only a change is written to the store. */
  async set(backend: BackendSettings, method: string, items: Items): Promise<void> {
    const definition = await this.#definition(backend);
    const key = `${backend.name}\n${method}`;
    const json = JSON.stringify(items);
    const known = this.#memory.get(key);
    if (known?.definition === definition && known.items === json) return;
    this.#memory.set(key, { definition, items: json });
    if (this.#store) {
      saveBackendList(this.#store, {
        backend: backend.name,
        method,
        definition,
        items: json,
        updatedAt: Date.now(),
      });
    }
  }
}
