// Whether the store can be written: which failures mean "cannot write" (disk full, read-only, I/O error,
// quota), the state while writes fail, and one error log line per burst of failures.
import type { Logger } from "../log/logger.ts";

/** Why the store cannot be written. */
export type UnwritableReason = "disk_full" | "read_only" | "io_error" | "quota_exceeded" | "unreachable";

const REASON_TEXT: Record<UnwritableReason, string> = {
  disk_full: "the disk is full",
  read_only: "the file system or database is read-only",
  io_error: "a disk I/O error (a full disk quota reports this too)",
  quota_exceeded: "the disk quota is exceeded",
  unreachable: "the database cannot be reached",
};

/** A short phrase for logs and messages: `the disk is full`. */
export function describeUnwritable(reason: UnwritableReason): string {
  return REASON_TEXT[reason];
}

// SQLite primary result codes (https://sqlite.org/rescode.html); extended codes keep them in the low byte.
const SQLITE_READONLY = 8;
const SQLITE_IOERR = 10;
const SQLITE_FULL = 13;

// node:sqlite's exec() errors carry only the message (sqlite3_errmsg), so match its wording too.
const SQLITE_MESSAGES: readonly (readonly [RegExp, UnwritableReason])[] = [
  [/database or disk is full/i, "disk_full"],
  [/attempt to write a readonly database/i, "read_only"],
  [/disk I\/O error/i, "io_error"],
];

const ERRNO_REASONS: Readonly<Record<string, UnwritableReason>> = {
  ENOSPC: "disk_full",
  EROFS: "read_only",
  EDQUOT: "quota_exceeded",
  EIO: "io_error",
};

// PostgreSQL: SQLSTATEs (https://www.postgresql.org/docs/current/errcodes-appendix.html) and the client's and
// the system's codes for a database that cannot be reached or written.
const POSTGRES_REASONS: Readonly<Record<string, UnwritableReason>> = {
  "25006": "read_only", // read_only_sql_transaction (a standby, or default_transaction_read_only)
  "53100": "disk_full", // disk_full
  "53300": "unreachable", // too_many_connections
  "57P01": "unreachable", // admin_shutdown
  "57P02": "unreachable", // crash_shutdown
  "57P03": "unreachable", // cannot_connect_now
  ECONNREFUSED: "unreachable",
  ECONNRESET: "unreachable",
  ETIMEDOUT: "unreachable",
  EHOSTUNREACH: "unreachable",
  ENETUNREACH: "unreachable",
  ENOTFOUND: "unreachable",
  EPIPE: "unreachable",
  CONNECTION_CLOSED: "unreachable",
  CONNECTION_ENDED: "unreachable",
  CONNECTION_DESTROYED: "unreachable",
  CONNECT_TIMEOUT: "unreachable",
};

/**
 * Why `error` (or an error in its `cause` chain) says the store cannot be written, or undefined when it
 * is some other failure (a constraint, a bug, a busy lock).
 */
export function unwritableReason(error: unknown): UnwritableReason | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 4 && current instanceof Error; depth++) {
    if (current instanceof StoreUnwritableError) return current.reason;
    const message = current.message;
    const { errcode, code } = current as { errcode?: unknown; code?: unknown };
    if (typeof errcode === "number") {
      const primary = errcode & 0xff;
      if (primary === SQLITE_FULL) return "disk_full";
      if (primary === SQLITE_READONLY) return "read_only";
      if (primary === SQLITE_IOERR) return "io_error";
    } else if (code === "ERR_SQLITE_ERROR") {
      const match = SQLITE_MESSAGES.find(([pattern]) => pattern.test(message));
      if (match) return match[1];
    }
    if (typeof code === "string" && Object.hasOwn(ERRNO_REASONS, code)) return ERRNO_REASONS[code];
    if (typeof code === "string" && Object.hasOwn(POSTGRES_REASONS, code)) return POSTGRES_REASONS[code];
    // Connection exceptions (class 08).
    if (typeof code === "string" && /^08[0-9A-Z]{3}$/.test(code)) return "unreachable";
    current = current.cause;
  }
  return undefined;
}

/** A write the store refused because it cannot be written; HTTP answers it with 503. */
export class StoreUnwritableError extends Error {
  readonly code = "store_unwritable";
  readonly reason: UnwritableReason;

  constructor(reason: UnwritableReason, options?: ErrorOptions) {
    super(
      reason === "unreachable"
        ? `Cannot use the store: ${describeUnwritable(reason)}`
        : `Cannot write the store: ${describeUnwritable(reason)}`,
      options,
    );
    this.name = "StoreUnwritableError";
    this.reason = reason;
  }
}

/** The store could not be opened for a reason the operator can fix (a read-only or full data directory). */
export class StoreOpenError extends Error {
  readonly code = "store_open_failed";

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "StoreOpenError";
  }
}

/** What `/readyz` reports about writing. */
export interface WriteHealthState {
  readonly writable: boolean;
  /** While not writable: why, since when (epoch ms), and how many writes failed so far. */
  readonly reason?: UnwritableReason;
  readonly since?: number;
  readonly failedWrites: number;
}

/**
 * Tracks whether writes succeed. The first failure of a burst logs one error line; later failures of the
 * same burst only count; the next successful write ends the burst (one info line).
 */
export class WriteHealth {
  readonly #log: Logger | undefined;
  readonly #now: () => number;
  readonly #path: string;
  #state: WriteHealthState = { writable: true, failedWrites: 0 };

  constructor(options: { path: string; log?: Logger; now?: () => number }) {
    this.#path = options.path;
    this.#log = options.log;
    this.#now = options.now ?? Date.now;
  }

  state(): WriteHealthState {
    return this.#state;
  }

  /**
   * Records a failed store call: a `StoreUnwritableError` to throw instead when `error` means the store
   * cannot be written, else undefined (the caller rethrows `error` as it is).
   */
  failed(error: unknown): StoreUnwritableError | undefined {
    const reason = unwritableReason(error);
    if (reason === undefined) return undefined;
    if (this.#state.writable) {
      this.#state = { writable: false, reason, since: this.#now(), failedWrites: 1 };
      this.#log?.error("store cannot be written: writes answer 503 until one succeeds", {
        reason,
        cause: describeUnwritable(reason),
        path: this.#path,
      });
    } else {
      this.#state = { ...this.#state, reason, failedWrites: this.#state.failedWrites + 1 };
    }
    return error instanceof StoreUnwritableError ? error : new StoreUnwritableError(reason, { cause: error });
  }

  /** Records a committed write: ends a burst of failures. */
  succeeded(): void {
    if (this.#state.writable) return;
    const { reason, since, failedWrites } = this.#state;
    this.#state = { writable: true, failedWrites: 0 };
    this.#log?.info("store writable again", {
      reason,
      failed_writes: failedWrites,
      unwritable_ms: since === undefined ? undefined : this.#now() - since,
      path: this.#path,
    });
  }
}
