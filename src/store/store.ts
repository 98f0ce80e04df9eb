import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { type Migration, MIGRATIONS } from "./migrations.ts";

/** The one owner of the SQLite connection; table families get it through `db`. */
export interface Store {
  readonly db: DatabaseSync;
  /** Path of the database file, or ":memory:". */
  readonly path: string;
  /** Runs `work` in a transaction (IMMEDIATE, so writers queue instead of failing mid-way). */
  transaction<T>(work: () => T): T;
  schemaVersion(): number;
  close(): void;
}

export const DATABASE_FILE = "gatehouse.db";

/** Creates the data directory (mode 0700) when it does not exist; returns whether it did. */
export function ensureDataDir(dataDir: string): boolean {
  try {
    Deno.mkdirSync(dataDir, { recursive: false, mode: 0o700 });
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) return false;
    if (error instanceof Deno.errors.NotFound) {
      Deno.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
    } else {
      throw error;
    }
  }
  // mkdir honours the umask; the data dir holds keys and secrets, so make sure of 0700.
  Deno.chmodSync(dataDir, 0o700);
  return true;
}

/**
 * Opens (creating when needed) the store in `dataDir`, or in memory for ":memory:", in WAL mode with
 * full sync (an acknowledged write survives a crash), and applies pending migrations.
 */
export function openStore(
  dataDir: string | ":memory:",
  migrations: readonly Migration[] = MIGRATIONS,
): Store {
  let path = ":memory:";
  if (dataDir !== ":memory:") {
    ensureDataDir(dataDir);
    path = join(dataDir, DATABASE_FILE);
    // Create the file owner-only before SQLite does; its -wal and -shm files copy these permissions.
    Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
  }
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA busy_timeout = 5000");
    migrate(db, migrations);
  } catch (error) {
    db.close();
    throw error;
  }

  let depth = 0;
  const transaction = <T>(work: () => T): T => {
    if (depth > 0) return work();
    db.exec("BEGIN IMMEDIATE");
    depth += 1;
    try {
      const result = work();
      db.exec("COMMIT");
      return result;
    } catch (error) {
      db.exec("ROLLBACK");
      throw error;
    } finally {
      depth -= 1;
    }
  };

  return {
    db,
    path,
    transaction,
    schemaVersion: () => userVersion(db),
    close() {
      if (db.isOpen) db.close();
    },
  };
}

function userVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
  return row?.user_version ?? 0;
}

/** Applies every migration newer than the database, each in its own transaction. */
function migrate(db: DatabaseSync, migrations: readonly Migration[]): void {
  const current = userVersion(db);
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new Error(
      `Cannot open store: its schema version ${current} is newer than this gatehouse knows (${latest}); upgrade gatehouse`,
    );
  }
  for (const migration of migrations) {
    if (migration.version <= current) continue;
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${Number(migration.version)}`);
      db.exec("COMMIT");
    } catch (error) {
      db.exec("ROLLBACK");
      throw new Error(
        `Cannot apply store migration ${migration.version} "${migration.name}": ${String(error)}`,
      );
    }
  }
}
