// The PostgreSQL store's worker: holds the connection (the `postgres` client) and answers the gateway's
// synchronous statements through shared memory (see `connection.ts`), one at a time in arrival order.
// Notifications from other replicas, and the answers to reachability probes, go back as messages.
/// <reference lib="deno.worker" />
import postgres from "postgres";
import type { WorkerAnswer, WorkerEvent, WorkerRequest } from "./protocol.ts";

let sql: postgres.Sql | undefined;
let options: Extract<WorkerRequest, { kind: "init" }> | undefined;
let control: Int32Array | undefined;
let data: SharedArrayBuffer | undefined;
let queue: Promise<void> = Promise.resolve();
let listenChannel: string | undefined;
const encoder = new TextEncoder();

function client(init: Extract<WorkerRequest, { kind: "init" }>): postgres.Sql {
  return postgres(init.url, {
    max: 1,
    connect_timeout: init.connectTimeoutSeconds,
    idle_timeout: 0,
    prepare: true,
    onnotice: () => {},
    connection: { application_name: "gatehouse", statement_timeout: init.statementTimeoutMs },
    // Store integers are epoch ms and counts: exact as JavaScript numbers.
    types: {
      bigint: {
        to: 20,
        from: [20],
        serialize: (value: number) => String(value),
        parse: (value: string) => Number(value),
      },
    },
  });
}

/** Writes an answer into shared memory and wakes the waiting gateway thread. */
function answer(id: number, value: WorkerAnswer): void {
  let bytes = encoder.encode(JSON.stringify(value));
  if (bytes.length > data!.maxByteLength) {
    bytes = encoder.encode(JSON.stringify({ ok: false, error: { message: "result too large" } }));
  }
  if (bytes.length > data!.byteLength) data!.grow(bytes.length);
  new Uint8Array(data!).set(bytes);
  Atomics.store(control!, 1, bytes.length);
  // Last: the id of the request answered, which the gateway thread waits on.
  Atomics.store(control!, 2, id);
  Atomics.notify(control!, 2);
}

function describe(error: unknown): { message: string; code?: string; severity?: string } {
  const { message, code, severity } = error as { message?: unknown; code?: unknown; severity?: unknown };
  return {
    message: typeof message === "string" ? message : String(error),
    code: typeof code === "string" ? code : undefined,
    severity: typeof severity === "string" ? severity : undefined,
  };
}

async function run(request: WorkerRequest): Promise<void> {
  switch (request.kind) {
    case "init": {
      options = request;
      control = request.control;
      data = request.data;
      sql = client(request);
      try {
        await sql`SELECT 1`;
        answer(request.id, { ok: true, result: null });
      } catch (error) {
        answer(request.id, { ok: false, error: describe(error) });
      }
      return;
    }
    case "query": {
      try {
        const rows = await sql!.unsafe(request.text, request.values as postgres.ParameterOrJSON<never>[], {
          prepare: request.values.length > 0,
        });
        const result = request.mode === "run"
          ? { changes: rows.count ?? 0 }
          : request.mode === "get"
          ? rows[0] ?? null
          : Array.from(rows);
        answer(request.id, { ok: true, result });
      } catch (error) {
        answer(request.id, { ok: false, error: describe(error) });
      }
      return;
    }
    case "close": {
      await sql?.end({ timeout: 1 }).catch(() => {});
      answer(request.id, { ok: true, result: null });
      return;
    }
  }
}

/**
 * The client keeps a connection of its own for LISTEN and listens again after reconnecting; `onlisten`
 * runs each time, so that the gateway can catch up on what it may have missed meanwhile.
 */
function listen(channel: string): void {
  sql!.listen(
    channel,
    (payload) => post({ kind: "notification", payload }),
    () => post({ kind: "listening" }),
  ).catch((error) => post({ kind: "listen_failed", error: describe(error).message }));
}

function post(event: WorkerEvent): void {
  self.postMessage(event);
}

self.onmessage = (event: MessageEvent<WorkerRequest>) => {
  const request = event.data;
  if (request.kind === "listen") {
    listenChannel = request.channel;
    listen(request.channel);
    return;
  }
  if (request.kind === "ping") {
    // A probe on a connection of its own, so that a statement stuck on the main one does not hold it.
    const probe = client({ ...options!, connectTimeoutSeconds: Math.min(2, options!.connectTimeoutSeconds) });
    probe`SELECT 1`
      .then(() => post({ kind: "pong", ok: true }))
      .catch((error) => post({ kind: "pong", ok: false, error: describe(error).message }))
      .finally(() => probe.end({ timeout: 0 }).catch(() => {}));
    return;
  }
  if (request.kind === "reset") {
    // A statement did not answer in time (the network, not the server): drop the connection, so that the
    // stuck statement fails and the next ones use a new connection.
    const stuck = sql;
    sql = client(options!);
    stuck?.end({ timeout: 0 }).catch(() => {});
    if (listenChannel !== undefined) listen(listenChannel);
    return;
  }
  queue = queue.then(() => run(request));
};

post({ kind: "ready" });
