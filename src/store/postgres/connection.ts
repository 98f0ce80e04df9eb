// The PostgreSQL store's connection, synchronous like SQLite's: every statement is handed to a worker that
// holds the real (asynchronous) client, and this thread waits for the answer in shared memory
// (`Atomics.wait`), so that the store keeps one synchronous interface for both databases. A statement thus
// holds this thread for one round trip to the database (about 0.1 to 0.5 ms on a local network); nothing on
// the path of a relayed call uses the store. A statement that does not answer within the wait bound fails
// as "unreachable", and until the worker answers it, later ones fail at once instead of waiting again.
import type { SqlConnection, SqlParameters, SqlRow, SqlStatement } from "../store.ts";
import { StoreUnwritableError } from "../write_health.ts";
import type { WorkerAnswer, WorkerError, WorkerEvent, WorkerRequest } from "./protocol.ts";
import { orderedValues, translatePlaceholders } from "./sql.ts";

export interface PostgresConnectionOptions {
  readonly url: string;
  /** How long connecting may take (default 3 s). */
  readonly connectTimeoutSeconds?: number;
  /** How long one statement may run at the server (default 5 s). */
  readonly statementTimeoutMs?: number;
  /** What the worker says outside of answers: notifications, probes. */
  readonly onEvent?: (event: WorkerEvent) => void;
}

/** Initial room for answers; it grows up to the maximum as needed. */
const ANSWER_BYTES = 64 * 1024;
const MAX_ANSWER_BYTES = 256 * 1024 * 1024;
/** How long the worker may take to start. */
const OPEN_WAIT_MS = 20_000;

/** An error of the database itself (a constraint, a syntax error), with its SQLSTATE. */
export class PostgresError extends Error {
  readonly code: string | undefined;
  constructor(error: WorkerError) {
    super(error.message);
    this.name = "PostgresError";
    this.code = error.code;
  }
}

export class PostgresConnection implements SqlConnection {
  readonly #worker: Worker;
  readonly #control = new Int32Array(new SharedArrayBuffer(12));
  readonly #data = new SharedArrayBuffer(ANSWER_BYTES, { maxByteLength: MAX_ANSWER_BYTES });
  readonly #decoder = new TextDecoder();
  readonly #waitMs: number;
  #nextId = 1;
  /** A request that did not answer in time; until it does, the worker is busy with it. */
  #stuck: number | undefined;
  #open = true;
  #transaction = false;

  private constructor(worker: Worker, waitMs: number) {
    this.#worker = worker;
    this.#waitMs = waitMs;
  }

  /**
   * Starts the worker, waits (without holding this thread) until it has loaded, then connects. Throws
   * when the database cannot be reached.
   */
  static async open(options: PostgresConnectionOptions): Promise<PostgresConnection> {
    const statementTimeoutMs = options.statementTimeoutMs ?? 5000;
    const connectTimeoutSeconds = options.connectTimeoutSeconds ?? 3;
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("The store's worker did not start")), OPEN_WAIT_MS);
        worker.onerror = (event) => {
          event.preventDefault();
          clearTimeout(timer);
          reject(new Error(`The store's worker failed to start: ${event.message}`));
        };
        worker.onmessage = (event: MessageEvent<WorkerEvent>) => {
          if (event.data.kind !== "ready") return;
          clearTimeout(timer);
          resolve();
        };
      });
    } catch (error) {
      worker.terminate();
      throw error;
    }
    worker.onmessage = (event: MessageEvent<WorkerEvent>) => options.onEvent?.(event.data);
    // A statement waits for the server's own timeout, plus a connection when one must be made first.
    const connection = new PostgresConnection(
      worker,
      statementTimeoutMs + connectTimeoutSeconds * 1000 + 500,
    );
    try {
      connection.#request({
        kind: "init",
        url: options.url,
        control: connection.#control,
        data: connection.#data,
        connectTimeoutSeconds,
        statementTimeoutMs,
      });
    } catch (error) {
      connection.#open = false;
      worker.terminate();
      throw error;
    }
    return connection;
  }

  get isOpen(): boolean {
    return this.#open;
  }

  get isTransaction(): boolean {
    return this.#transaction;
  }

  prepare(sql: string): SqlStatement {
    const statement = translatePlaceholders(sql);
    const query = (mode: "run" | "get" | "all", values: SqlParameters) =>
      this.#request({ kind: "query", text: statement.text, values: orderedValues(statement, values), mode });
    return {
      run: (...values) => query("run", values) as { changes: number },
      get: (...values) => (query("get", values) ?? undefined) as SqlRow | undefined,
      all: (...values) => query("all", values) as SqlRow[],
    };
  }

  exec(sql: string): void {
    const verb = /^\s*(\w+)/.exec(sql)?.[1]?.toUpperCase();
    this.#request({ kind: "query", text: sql, values: [], mode: "run" });
    if (verb === "BEGIN") this.#transaction = true;
    if (verb === "COMMIT" || verb === "ROLLBACK" || verb === "END") this.#transaction = false;
  }

  /** Asks the worker to forward notifications of `channel` as events. */
  listen(channel: string): void {
    this.#worker.postMessage({ kind: "listen", channel } satisfies WorkerRequest);
  }

  /** Asks the worker to probe the database on a connection of its own; the answer comes as an event. */
  ping(): void {
    if (this.#open) this.#worker.postMessage({ kind: "ping" } satisfies WorkerRequest);
  }

  close(): void {
    if (!this.#open) return;
    try {
      if (this.#stuck === undefined) this.#request({ kind: "close" }, 2000);
    } catch {
      // Closing anyway.
    } finally {
      this.#open = false;
      this.#transaction = false;
      this.#worker.terminate();
    }
  }

  #request(request: DistributiveOmit<WorkerRequest, "id">, waitMs = this.#waitMs): unknown {
    if (!this.#open) throw new Error("The store is closed");
    const control = this.#control;
    if (this.#stuck !== undefined) {
      if (Atomics.load(control, 2) < this.#stuck) throw unreachable("an earlier statement has not answered");
      this.#stuck = undefined;
    }
    const id = this.#nextId++;
    this.#worker.postMessage({ ...request, id } as WorkerRequest);
    const deadline = performance.now() + waitMs;
    // The worker writes the answer, its length, then the id of the request it answers (index 2).
    let answered = Atomics.load(control, 2);
    while (answered !== id) {
      const remaining = deadline - performance.now();
      if (remaining <= 0 || Atomics.wait(control, 2, answered, remaining) === "timed-out") {
        if (Atomics.load(control, 2) === id) break;
        this.#stuck = id;
        this.#transaction = false;
        this.#worker.postMessage({ kind: "reset" } satisfies WorkerRequest);
        throw unreachable(`no answer within ${waitMs} ms`);
      }
      answered = Atomics.load(control, 2);
    }
    const length = Atomics.load(control, 1);
    // TextDecoder cannot read shared memory directly: copy the answer out first.
    const bytes = new Uint8Array(length);
    bytes.set(new Uint8Array(this.#data, 0, length));
    const answer = JSON.parse(this.#decoder.decode(bytes)) as WorkerAnswer;
    if (!answer.ok) throw new PostgresError(answer.error);
    return answer.result;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

function unreachable(detail: string): StoreUnwritableError {
  return new StoreUnwritableError("unreachable", { cause: new Error(`PostgreSQL: ${detail}`) });
}
