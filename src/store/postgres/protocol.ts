// What the PostgreSQL store's connection and its worker say to each other (see `connection.ts`).
import type { SqlValue } from "../store.ts";

/** From the gateway thread to the worker. */
export type WorkerRequest =
  | {
    readonly kind: "init";
    readonly id: number;
    readonly url: string;
    readonly control: Int32Array;
    readonly data: SharedArrayBuffer;
    readonly connectTimeoutSeconds: number;
    readonly statementTimeoutMs: number;
  }
  | {
    readonly kind: "query";
    readonly id: number;
    readonly text: string;
    readonly values: readonly SqlValue[];
    readonly mode: "run" | "get" | "all";
  }
  | { readonly kind: "close"; readonly id: number }
  | { readonly kind: "listen"; readonly channel: string }
  | { readonly kind: "ping" }
  | { readonly kind: "reset" };

/** A synchronous request's answer, in shared memory. */
export type WorkerAnswer =
  | { readonly ok: true; readonly result: unknown }
  | { readonly ok: false; readonly error: WorkerError };

export interface WorkerError {
  readonly message: string;
  /** PostgreSQL's SQLSTATE, or the client's or the system's error code. */
  readonly code?: string;
  readonly severity?: string;
}

/** From the worker, as messages: what does not answer a synchronous request. */
export type WorkerEvent =
  | { readonly kind: "ready" }
  | { readonly kind: "notification"; readonly payload: string }
  | { readonly kind: "listening" }
  | { readonly kind: "listen_failed"; readonly error: string }
  | { readonly kind: "pong"; readonly ok: boolean; readonly error?: string };
