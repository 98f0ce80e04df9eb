// Lets a backend's SEP-2663 task result past the SDK client, which (2.4.0) rejects result types other than
// complete and input_required on 2026-07-28 connections; remove once the SDK client takes task results.
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client";
import { JSONRPC } from "../../core/jsonrpc.ts";

/** The carriers of task results taken past the SDK client (recognised by identity, so unforgeable). */
const carriedTaskResults = new WeakSet<object>();

/**
 * Set before `Client.connect`, this observer is chained by the SDK and sees each message first: a task
 * result becomes an error response carrying it, which the request rejects with and `taskResultOf` turns
 * back into the result. `active` limits it to 2026-07-28 backends.
 */
export function relayTaskResults(transport: Transport, active: () => boolean): void {
  transport.onmessage = (message: JSONRPCMessage) => {
    const response = message as { id?: unknown; result?: unknown; error?: unknown };
    const result = response.result as Record<string, unknown> | undefined;
    if (response.id === undefined || result?.resultType !== "task" || !active()) return;
    const carrier = { result };
    carriedTaskResults.add(carrier);
    delete response.result;
    response.error = { code: JSONRPC.internalError, message: "Task result (relayed)", data: carrier };
  };
}

/** The task result an error carries when `relayTaskResults` turned a backend's answer into it. */
export function taskResultOf(error: unknown): Record<string, unknown> | undefined {
  const data = (error as { data?: unknown } | null | undefined)?.data;
  return data && typeof data === "object" && carriedTaskResults.has(data)
    ? (data as { result: Record<string, unknown> }).result
    : undefined;
}

/** For a request's rejection: the task result it carries, as the request's result; else the error again. */
export function keepTaskResult(error: unknown): Record<string, unknown> {
  const task = taskResultOf(error);
  if (task) return task;
  throw error;
}
