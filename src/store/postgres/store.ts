// The PostgreSQL store: the same `Store` as SQLite's, shared by every replica. Migrations run under an
// advisory lock (replicas starting together apply them once), transactions take one advisory lock so that
// they run one at a time across replicas (as SQLite's BEGIN IMMEDIATE does across processes), and
// announcements travel by LISTEN/NOTIFY.
import type { Logger } from "../../log/logger.ts";
import { type Migration, MIGRATIONS } from "../migrations.ts";
import {
  migrationFailed,
  type OpenStoreOptions,
  pendingMigrations,
  type SqlConnection,
  type Store,
} from "../store.ts";
import { StoreUnwritableError, WriteHealth } from "../write_health.ts";
import { PostgresConnection } from "./connection.ts";
import type { WorkerEvent } from "./protocol.ts";
import { postgresMigrationSql } from "./sql.ts";

/** The channel every replica listens on. */
const CHANNEL = "gatehouse";
/** Advisory lock keys (arbitrary, fixed): one for migrations, one for transactions. */
const MIGRATION_LOCK = 7_427_001;
const TRANSACTION_LOCK = 7_427_002;

/** Whether `value` names a PostgreSQL store. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(?:ql)?:\/\//i.test(value);
}

/** `url` without its password, for logs and status. */
export function redactedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password !== "") parsed.password = "***";
    parsed.search = "";
    return parsed.href;
  } catch {
    return "postgres://(unparsable URL)";
  }
}

interface Announcement {
  readonly from: string;
  readonly topic: string;
  readonly detail: string;
}

/**
 * Connects to the PostgreSQL database at `url` and applies pending migrations. Throws when it cannot be
 * reached or its schema is newer than this gatehouse knows.
 */
export async function openPostgresStore(url: string, options: OpenStoreOptions = {}): Promise<Store> {
  const now = options.now ?? Date.now;
  const path = redactedUrl(url);
  const instance = crypto.randomUUID();
  const health = new WriteHealth({ path, log: options.log, now });
  const listeners = new Map<string, Set<(detail: string) => void>>();
  let changesElsewhere = 0;

  const onEvent = (event: WorkerEvent) => {
    switch (event.kind) {
      case "notification": {
        const announcement = parseAnnouncement(event.payload);
        if (announcement === undefined || announcement.from === instance) return;
        changesElsewhere += 1;
        for (const listener of listeners.get(announcement.topic) ?? []) {
          dispatch(options.log, () => listener(announcement.detail));
        }
        return;
      }
      case "listening":
        // (Re)connected: whatever was announced while not listening is unknown; treat it as changed.
        changesElsewhere += 1;
        for (const topicListeners of listeners.values()) {
          for (const listener of topicListeners) dispatch(options.log, () => listener(""));
        }
        return;
      case "listen_failed":
        options.log?.warn("cannot listen for other replicas' announcements", { error: event.error });
        return;
      case "pong":
        if (event.ok) health.succeeded();
        else health.failed(new StoreUnwritableError("unreachable", { cause: new Error(event.error) }));
        return;
      case "ready":
        return;
    }
  };

  const connection = await PostgresConnection.open({ url, onEvent });
  const db = guarded(connection, health);
  try {
    migrate(db, options.migrations ?? MIGRATIONS);
  } catch (error) {
    connection.close();
    throw error;
  }
  connection.listen(CHANNEL);

  let depth = 0;
  const transaction = <T>(work: () => T): T => {
    if (depth > 0) return work();
    depth += 1;
    try {
      return lockedTransaction(db, TRANSACTION_LOCK, work);
    } finally {
      depth -= 1;
    }
  };

  const retryIntervalMs = options.retryIntervalMs ?? 1000;
  let lastProbeAt = -Infinity;

  return {
    db,
    dialect: "postgres",
    shared: true,
    path,
    transaction,
    schemaVersion: () => schemaVersion(db),
    writeHealth: () => health.state(),
    checkWritable() {
      // Nothing else may have touched the database lately: probe it, at most once per interval. The probe
      // answers later (an event), so this says what the last one found; it never holds this thread.
      if (now() - lastProbeAt >= retryIntervalMs) {
        lastProbeAt = now();
        connection.ping();
      }
      return health.state().writable;
    },
    changedElsewhere: () => changesElsewhere,
    announce(topic, detail = "") {
      const payload = JSON.stringify({ from: instance, topic, detail } satisfies Announcement);
      db.prepare("SELECT pg_notify(?, ?)").get(CHANNEL, payload);
    },
    onAnnouncement(topic, listener) {
      let topicListeners = listeners.get(topic);
      if (topicListeners === undefined) listeners.set(topic, topicListeners = new Set());
      topicListeners.add(listener);
      return () => topicListeners.delete(listener);
    },
    close: () => connection.close(),
  };
}

function parseAnnouncement(payload: string): Announcement | undefined {
  try {
    const value = JSON.parse(payload) as Partial<Announcement>;
    if (typeof value.from !== "string" || typeof value.topic !== "string") return undefined;
    return {
      from: value.from,
      topic: value.topic,
      detail: typeof value.detail === "string" ? value.detail : "",
    };
  } catch {
    return undefined;
  }
}

function dispatch(log: Logger | undefined, call: () => void): void {
  try {
    call();
  } catch (error) {
    log?.error("an announcement from another replica failed to apply", { error: String(error) });
  }
}

/** Routes every statement through `health`: a failure to reach or write the database starts a burst. */
function guarded(connection: PostgresConnection, health: WriteHealth): SqlConnection {
  const guard = <T>(call: () => T): T => {
    let result: T;
    try {
      result = call();
    } catch (error) {
      throw health.failed(error) ?? error;
    }
    health.succeeded();
    return result;
  };
  return {
    get isOpen() {
      return connection.isOpen;
    },
    get isTransaction() {
      return connection.isTransaction;
    },
    exec: (sql) => guard(() => connection.exec(sql)),
    prepare(sql) {
      const statement = connection.prepare(sql);
      return {
        run: (...values) => guard(() => statement.run(...values)),
        get: (...values) => guard(() => statement.get(...values)),
        all: (...values) => guard(() => statement.all(...values)),
      };
    },
  };
}

const SCHEMA_TABLE = "CREATE TABLE IF NOT EXISTS gatehouse_schema (version BIGINT NOT NULL)";

function schemaVersion(db: SqlConnection): number {
  const row = db.prepare("SELECT version FROM gatehouse_schema").get();
  return Number(row?.version ?? 0);
}

/** Applies every migration newer than the database, all in one transaction under the migration lock. */
function migrate(db: SqlConnection, migrations: readonly Migration[]): void {
  lockedTransaction(db, MIGRATION_LOCK, () => {
    db.exec(SCHEMA_TABLE);
    if (db.prepare("SELECT version FROM gatehouse_schema").get() === undefined) {
      db.prepare("INSERT INTO gatehouse_schema (version) VALUES (0)").run();
    }
    for (const migration of pendingMigrations(schemaVersion(db), migrations)) {
      try {
        db.exec(postgresMigrationSql(migration));
      } catch (error) {
        throw migrationFailed(migration, error);
      }
      db.prepare("UPDATE gatehouse_schema SET version = ?").run(migration.version);
    }
  });
}

/**
 * Runs `work` in a transaction holding the advisory lock `lock` (the transactions of every replica that
 * take it run one at a time); rolled back when `work` throws.
 */
function lockedTransaction<T>(db: SqlConnection, lock: number, work: () => T): T {
  db.exec("BEGIN");
  try {
    db.prepare(`SELECT pg_advisory_xact_lock(${lock})`).get();
    const result = work();
    db.exec("COMMIT");
    return result;
  } catch (error) {
    if (db.isTransaction) {
      try {
        db.exec("ROLLBACK");
      } catch {
        // The connection is gone: so is the transaction.
      }
    }
    throw error;
  }
}
