// The SQLite store: opening it (WAL, full sync, migrations), transactions, and watching that writes succeed.
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import type { Logger } from "../log/logger.ts";
import { type Migration, MIGRATIONS } from "./migrations.ts";
import {
  describeUnwritable,
  StoreOpenError,
  unwritableReason,
  WriteHealth,
  type WriteHealthState,
} from "./write_health.ts";

export { StoreOpenError, StoreUnwritableError, type WriteHealthState } from "./write_health.ts";

/**
 * A prepared statement: `?` placeholders given in order, or `:name` ones given as one object; rows as plain
 * objects (integers as numbers).
 */
export interface SqlStatement {
  run(...values: SqlParameters): { changes: number | bigint };
  get(...values: SqlParameters): SqlRow | undefined;
  all(...values: SqlParameters): SqlRow[];
}

export type SqlRow = Record<string, unknown>;
export type SqlValue = string | number | bigint | null | Uint8Array;
export type SqlParameters = SqlValue[] | [Readonly<Record<string, SqlValue>>];

/**
 * The one connection table families use, the same for SQLite and PostgreSQL: synchronous, one statement at
 * a time (see `postgres/connection.ts` for how PostgreSQL is made so).
 */
export interface SqlConnection {
  prepare(sql: string): SqlStatement;
  exec(sql: string): void;
  readonly isOpen: boolean;
  readonly isTransaction: boolean;
}

/** Which database a store is: SQL that differs between them is written once per dialect. */
export type SqlDialect = "sqlite" | "postgres";

/** The one owner of the store's connection; table families get it through `db`. */
export interface Store {
  readonly db: SqlConnection;
  readonly dialect: SqlDialect;
  /**
   * Whether other gateway processes (replicas) serve from this store at the same time (PostgreSQL): state
   * kept in memory for speed on one replica (rate limits, throttles) is kept in the store instead.
   */
  readonly shared: boolean;
  /** Path of the database file, or ":memory:"; for PostgreSQL its URL without the password. */
  readonly path: string;
  /** Runs `work` in a transaction (IMMEDIATE, so writers queue instead of failing mid-way). */
  transaction<T>(work: () => T): T;
  schemaVersion(): number;
  /**
   * Whether writes succeed. A write that fails because the store cannot be written (disk full, read-only,
   * I/O error) throws `StoreUnwritableError` and makes this not writable until a write succeeds again.
   */
  writeHealth(): WriteHealthState;
  /**
   * While writes fail, tries one small write (at most once per `retryIntervalMs`), so that the store
   * notices space coming back without waiting for traffic; returns whether the store is writable.
   */
  checkWritable(): boolean;
  /**
   * A number that moves when another process changed the store: SQLite's `data_version` (any commit of
   * another connection); PostgreSQL: each announcement of another replica (and each reconnection).
   */
  changedElsewhere(): number;
  /**
   * Tells the other processes on this store that `topic` changed (PostgreSQL: NOTIFY, sent when the
   * current transaction commits). SQLite has no other serving process to tell: nothing happens.
   */
  announce(topic: string, detail?: string): void;
  /** Calls `listener` when another process announces `topic` (and with "" after a reconnection); returns the unsubscribe. */
  onAnnouncement(topic: string, listener: (detail: string) => void): () => void;
  close(): void;
}

export interface OpenStoreOptions {
  migrations?: readonly Migration[];
  /** Where a burst of failed writes is logged (once, at error level) and its end (at info). */
  log?: Logger;
  now?: () => number;
  /** How often `checkWritable()` may try a write while writes fail (default 1 s). */
  retryIntervalMs?: number;
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
 * full sync (an acknowledged write survives a crash), and applies pending migrations. A data directory
 * that cannot be written (read-only, full, not this user's) throws `StoreOpenError` saying so.
 */
export function openStore(
  dataDir: string | ":memory:",
  migrationsOrOptions: readonly Migration[] | OpenStoreOptions = {},
): Store {
  const options: OpenStoreOptions = Array.isArray(migrationsOrOptions)
    ? { migrations: migrationsOrOptions }
    : migrationsOrOptions as OpenStoreOptions;
  const now = options.now ?? Date.now;
  let path = ":memory:";
  if (dataDir !== ":memory:") {
    path = join(dataDir, DATABASE_FILE);
    try {
      ensureDataDir(dataDir);
      assertWritableDir(dataDir);
      // Create the file owner-only before SQLite does; its -wal and -shm files copy these permissions.
      Deno.openSync(path, { create: true, write: true, mode: 0o600 }).close();
    } catch (error) {
      throw openError(dataDir, error);
    }
  }
  const db = new DatabaseSync(path);
  try {
    db.exec("PRAGMA journal_mode = WAL");
    db.exec("PRAGMA synchronous = FULL");
    db.exec("PRAGMA foreign_keys = ON");
    db.exec("PRAGMA busy_timeout = 5000");
    migrate(db, options.migrations ?? MIGRATIONS);
  } catch (error) {
    db.close();
    throw dataDir === ":memory:" ? error : openError(dataDir, error);
  }

  const health = new WriteHealth({ path, log: options.log, now });
  watchWrites(db, health);

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
      // SQLite rolls back by itself after some failures (SQLITE_FULL, SQLITE_IOERR); a second ROLLBACK
      // would throw "no transaction is active" and hide the real error.
      if (db.isTransaction) db.exec("ROLLBACK");
      throw error;
    } finally {
      depth -= 1;
    }
  };

  const retryIntervalMs = options.retryIntervalMs ?? 1000;
  let lastRetryAt = -Infinity;
  // Moves when another connection commits. @see https://sqlite.org/pragma.html#pragma_data_version
  let dataVersion: ReturnType<DatabaseSync["prepare"]> | undefined;
  const checkWritable = (): boolean => {
    if (health.state().writable) return true;
    if (!db.isOpen || db.isTransaction || now() - lastRetryAt < retryIntervalMs) return false;
    lastRetryAt = now();
    try {
      // Rewriting the schema version with its own value appends a real frame to the WAL.
      db.exec(`PRAGMA user_version = ${userVersion(db)}`);
    } catch {
      // Still failing: counted in the health state.
    }
    return health.state().writable;
  };

  return {
    // node:sqlite's statements take more than SqlConnection asks for (and the same values).
    db: db as unknown as SqlConnection,
    dialect: "sqlite",
    shared: false,
    path,
    transaction,
    schemaVersion: () => userVersion(db),
    writeHealth: () => health.state(),
    checkWritable,
    changedElsewhere: () => {
      dataVersion ??= db.prepare("PRAGMA data_version");
      return (dataVersion.get() as { data_version: number }).data_version;
    },
    announce: () => {},
    onAnnouncement: () => () => {},
    close() {
      if (db.isOpen) db.close();
    },
  };
}

/** Creates and removes a file in `dataDir`: SQLite needs to create its -wal and -shm files there. */
function assertWritableDir(dataDir: string): void {
  const probe = Deno.makeTempFileSync({ dir: dataDir, prefix: ".gatehouse-write-probe-" });
  Deno.removeSync(probe);
}

/** `error` as the operator should read it: a `StoreOpenError` when the data directory is at fault. */
function openError(dataDir: string, error: unknown): unknown {
  if (error instanceof StoreOpenError) return error;
  const reason = unwritableReason(error);
  if (reason === "read_only") {
    return new StoreOpenError(
      `Cannot open the store: data directory ${dataDir} is not writable (read-only file system)`,
      { cause: error },
    );
  }
  if (reason !== undefined) {
    return new StoreOpenError(
      `Cannot open the store: data directory ${dataDir} cannot be written (${describeUnwritable(reason)})`,
      { cause: error },
    );
  }
  if (error instanceof Deno.errors.PermissionDenied) {
    return new StoreOpenError(
      `Cannot open the store: data directory ${dataDir} is not writable by this user (permission denied)`,
      { cause: error },
    );
  }
  if (error instanceof Error && /unable to open database file/i.test(error.message)) {
    return new StoreOpenError(
      `Cannot open the store: ${join(dataDir, DATABASE_FILE)} cannot be opened for writing`,
      { cause: error },
    );
  }
  return error;
}

// Statements that change data; anything else (SELECT, PRAGMA reads) says nothing about writing.
const WRITE_STATEMENT =
  /^(?:\s|--[^\n]*\n)*(?:INSERT|UPDATE|DELETE|REPLACE)\b|^(?:\s|--[^\n]*\n)*WITH\b[\s\S]*\b(?:INSERT|UPDATE|DELETE)\b/i;
// What exec() runs that ends in a write reaching the disk when no transaction is left open.
const WRITE_EXEC =
  /^(?:\s|--[^\n]*\n)*(?:COMMIT|END|INSERT|UPDATE|DELETE|REPLACE|CREATE|DROP|ALTER|PRAGMA\s+user_version\s*=)/i;

/**
 * Routes every statement and exec through `health`: a failure that means the store cannot be written
 * becomes a `StoreUnwritableError` (and starts a burst), and a write that commits ends the burst. The
 * connection's own methods are shadowed on the instance, so `store.db` stays a real `DatabaseSync`.
 */
function watchWrites(db: DatabaseSync, health: WriteHealth): void {
  const guard = <T>(write: boolean, call: () => T): T => {
    let result: T;
    try {
      result = call();
    } catch (error) {
      throw health.failed(error) ?? error;
    }
    // Inside a transaction nothing is on disk until COMMIT, which reports on its own.
    if (write && !db.isTransaction) health.succeeded();
    return result;
  };
  const prepare = db.prepare.bind(db);
  const exec = db.exec.bind(db);
  db.exec = (sql: string) => guard(WRITE_EXEC.test(sql), () => exec(sql));
  db.prepare = ((...args: Parameters<DatabaseSync["prepare"]>) => {
    const statement = prepare(...args);
    const write = WRITE_STATEMENT.test(args[0]);
    const methods = statement as unknown as Record<"run" | "get" | "all", (...values: unknown[]) => unknown>;
    for (const name of ["run", "get", "all"] as const) {
      const original = methods[name].bind(statement);
      methods[name] = (...values: unknown[]) => guard(write, () => original(...values));
    }
    return statement;
  }) as DatabaseSync["prepare"];
}

function userVersion(db: DatabaseSync): number {
  const row = db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
  return row?.user_version ?? 0;
}

/** Applies every migration newer than the database, each in its own transaction. */
function migrate(db: DatabaseSync, migrations: readonly Migration[]): void {
  for (const migration of pendingMigrations(userVersion(db), migrations)) {
    db.exec("BEGIN IMMEDIATE");
    try {
      db.exec(migration.sql);
      db.exec(`PRAGMA user_version = ${Number(migration.version)}`);
      db.exec("COMMIT");
    } catch (error) {
      if (db.isTransaction) db.exec("ROLLBACK");
      throw migrationFailed(migration, error);
    }
  }
}

/**
 * The migrations a store at schema version `current` has yet to apply, in order; a store newer than this
 * gatehouse knows is refused (both databases' runners start here).
 */
export function pendingMigrations(current: number, migrations: readonly Migration[]): Migration[] {
  const latest = migrations.at(-1)?.version ?? 0;
  if (current > latest) {
    throw new Error(
      `Cannot open store: its schema version ${current} is newer than this gatehouse knows (${latest}); upgrade gatehouse`,
    );
  }
  return migrations.filter((migration) => migration.version > current);
}

/** The error a migration that failed is reported with. */
export function migrationFailed(migration: Migration, error: unknown): Error {
  return new Error(
    `Cannot apply store migration ${migration.version} "${migration.name}": ${String(error)}`,
    {
      cause: error,
    },
  );
}
