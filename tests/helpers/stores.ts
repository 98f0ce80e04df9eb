/**
 * Store tests on both databases: `forEachStore()` registers a test once per dialect, with SQLite in memory
 * and with a fresh PostgreSQL database (tests/helpers/postgres.ts), and `forEachDatabase()` gives a test a
 * database it can open several connections to (SQLite: a file in a temporary directory).
 */
import type { SqlDialect, Store } from "../../src/store/store.ts";
import { openStore, type OpenStoreOptions } from "../../src/store/store.ts";
import { openPostgresStore } from "../../src/store/postgres/store.ts";
import { freshDatabase } from "./postgres.ts";

/** The dialects every portable store test runs on. */
export const DIALECTS: readonly SqlDialect[] = ["sqlite", "postgres"];

/** One test's database: every `open()` is another connection to the same data, closed when the test ends. */
export interface TestDatabase {
  readonly dialect: SqlDialect;
  /** The SQLite data directory, or the PostgreSQL URL (with its password). */
  readonly location: string;
  open(options?: OpenStoreOptions): Promise<Store>;
}

type TestOptions = Omit<Deno.TestDefinition, "name" | "fn">;

/**
 * Registers `name` once per dialect ("name [sqlite]", "name [postgres]"), each with a store of its own:
 * SQLite in memory, or a fresh PostgreSQL database.
 */
export function forEachStore(
  name: string,
  fn: (store: Store) => void | Promise<void>,
  options: TestOptions = {},
): void {
  for (const dialect of DIALECTS) {
    Deno.test({
      ...options,
      name: `${name} [${dialect}]`,
      fn: () => withStore(dialect, fn),
    });
  }
}

/** Runs `fn` with a store of `dialect` (SQLite in memory, or a fresh PostgreSQL database), then closes it. */
export async function withStore<T>(dialect: SqlDialect, fn: (store: Store) => T | Promise<T>): Promise<T> {
  if (dialect === "postgres") {
    return await withDatabase(dialect, async (database) => fn(await database.open()));
  }
  const store = openStore(":memory:");
  try {
    return await fn(store);
  } finally {
    store.close();
  }
}

/** Registers `name` once per dialect, each with a fresh, empty database that the test opens as it needs. */
export function forEachDatabase(
  name: string,
  fn: (database: TestDatabase) => void | Promise<void>,
  options: TestOptions = {},
): void {
  for (const dialect of DIALECTS) {
    Deno.test({
      ...options,
      name: `${name} [${dialect}]`,
      fn: () => withDatabase(dialect, fn),
    });
  }
}

/** Runs `fn` with a fresh database of `dialect`; closes every store it opened and removes what it left. */
export async function withDatabase<T>(
  dialect: SqlDialect,
  fn: (database: TestDatabase) => T | Promise<T>,
): Promise<T> {
  const opened: Store[] = [];
  let dir: string | undefined;
  try {
    let location: string;
    let open: (options?: OpenStoreOptions) => Promise<Store>;
    if (dialect === "sqlite") {
      dir = await Deno.makeTempDir({ prefix: "gatehouse-store-" });
      location = dir;
      open = (options) => Promise.resolve(openStore(location, options));
    } else {
      location = await freshDatabase();
      open = (options) => openPostgresStore(location, options);
    }
    return await fn({
      dialect,
      location,
      open: async (options) => {
        const store = await open(options);
        opened.push(store);
        return store;
      },
    });
  } finally {
    for (const store of opened) store.close();
    if (dir !== undefined) await Deno.remove(dir, { recursive: true });
  }
}
