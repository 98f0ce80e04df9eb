/**
 * One call from the client to one backend: metered, relayed with its progress and the backend's
 * requests back to the client, bridged between protocol eras, and answered with the consent link when the
 * caller's third-party token is missing.
 */
import type { JSONRPCRequest } from "@modelcontextprotocol/server";
import type { BackendSettings } from "../../config/types.ts";
import { ConsentRequiredError } from "../../services/consent_required.ts";
import { ANY_RESULT, type CallOrigin } from "../backends/call_origin.ts";
import type { Upstream } from "../backends/upstream.ts";
import { JSONRPC, JsonRpcError, SHUTTING_DOWN } from "../../core/jsonrpc.ts";
import { relayAskingClient } from "../era/input_loop.ts";
import { forModernBackend, INPUT_REQUIRED_METHODS, relayModernNotification } from "../era/modern.ts";
import { callParked, isParkedState, resumeParked } from "../era/parked_flow.ts";
import { consentAnswer } from "./consent.ts";
import { type Params, type RelayRequest, type Result, upstreamOf } from "./request.ts";
import { createdTask, taskOwnersOf } from "./tasks.ts";

/** Methods whose result may be a created task instead of the answer (2025-11-25 tasks, SEP-2663). */
const TASK_CREATING_METHODS: ReadonlySet<string> = new Set(["tools/call", "prompts/get", "resources/read"]);

/**
 * Relays one request to a backend; a missing third-party token becomes the consent answer, and a task
 * the result created becomes the caller's.
 */
export async function relayCall(
  relay: RelayRequest,
  backend: BackendSettings,
  method: string,
  params: Params | undefined,
): Promise<Result> {
  let result: Result;
  try {
    result = await callBackend(relay, backend, method, params);
  } catch (error) {
    if (error instanceof ConsentRequiredError) return consentAnswer(relay, method, error);
    throw error;
  }
  if (TASK_CREATING_METHODS.has(method)) {
    const task = createdTask(result);
    if (task) {
      taskOwnersOf(relay.deps.pool).remember(relay.session.caller, backend.name, task.taskId, task.ttlMs);
    }
  }
  return result;
}

/** Relays one request to a backend, counting it and its time for `/metrics`. */
export async function callBackend(
  relay: RelayRequest,
  backend: BackendSettings,
  method: string,
  params: Params | undefined,
): Promise<Result> {
  const { metrics, events } = relay.deps;
  const started = performance.now();
  let outcome = "ok";
  try {
    return await callAcrossEras(relay, backend, method, params);
  } catch (error) {
    outcome = error instanceof ConsentRequiredError ? "consent_required" : "error";
    const unavailable = error instanceof JsonRpcError &&
      (error.code === JSONRPC.backendUnavailable || error.code === JSONRPC.backendTimeout);
    if (unavailable) {
      events?.add("error", {
        user: relay.session.caller.id,
        backend: backend.name,
        message: `${method}: ${error.message}`,
      });
    }
    throw error;
  } finally {
    metrics?.requests.inc({ backend: backend.name, method, outcome });
    metrics?.latency.observe({ backend: backend.name, method }, (performance.now() - started) / 1000);
  }
}

/** The era bridge of one call: which side speaks which revision decides how questions travel. */
async function callAcrossEras(
  relay: RelayRequest,
  backend: BackendSettings,
  method: string,
  params: Params | undefined,
): Promise<Result> {
  const { session, context } = relay;
  if (session.era === "modern" && INPUT_REQUIRED_METHODS.has(method)) {
    const state = context.mcpReq.requestState<unknown>();
    if (isParkedState(state)) return await resumeParked(relay, state);
    const upstream = await upstreamOf(relay, backend);
    if (upstream.modern) {
      return await sendTo(relay, upstream, method, forModernBackend(session, params, context));
    }
    const progress = progressRelay(relay);
    return await callParked(relay, upstream, method, params, progress?.relay, progress?.flush);
  }
  const upstream = await upstreamOf(relay, backend);
  const forwarded = upstream.modern ? forModernBackend(session, params, context) : params;
  // A 2025-era client cannot take input_required: it is asked for each input the backend wants instead.
  return await relayAskingClient(
    backend.name,
    forwarded,
    (sent) => sendTo(relay, upstream, method, sent),
    (askMethod, askParams) =>
      originOf(relay).request({ method: askMethod, params: askParams }, context.mcpReq.signal),
  );
}

/** Sends one request to a backend on behalf of this request, relaying its progress. */
export async function sendTo(
  relay: RelayRequest,
  upstream: Upstream,
  method: string,
  params: Params | undefined,
): Promise<Result> {
  const progress = progressRelay(relay);
  const { stopping } = relay.deps;
  let result: Result;
  try {
    result = await upstream.request(method, params, originOf(relay), {
      signal: AbortSignal.any([relay.context.mcpReq.signal, relay.session.closed.signal, stopping]),
      onprogress: progress?.relay,
    });
  } catch (error) {
    if (stopping.aborted) {
      throw new JsonRpcError(JSONRPC.shuttingDown, SHUTTING_DOWN);
    }
    throw error;
  }
  // Progress sent before the result must reach the client before it.
  await progress?.flush();
  return result;
}

/** Relays a backend's progress under the token the client chose, when it asked for progress. */
function progressRelay(relay: RelayRequest) {
  const { context } = relay;
  const progressToken = context.mcpReq._meta?.progressToken;
  if (progressToken === undefined) return undefined;
  let sent: Promise<unknown> = Promise.resolve();
  return {
    relay(progress: { progress: number; total?: number; message?: string }) {
      const notification = { method: "notifications/progress", params: { ...progress, progressToken } };
      sent = sent.then(() => context.mcpReq.notify(notification)).catch(() => {});
    },
    flush: () => sent,
  };
}

/** A CallOrigin for a request being handled by the SDK: messages go back on that request's stream. */
function originOf(relay: RelayRequest): CallOrigin {
  const { session, context } = relay;
  return {
    sessionId: session.id,
    userId: session.caller.id,
    request: (request, signal) => context.mcpReq.send(request as JSONRPCRequest, ANY_RESULT, { signal }),
    notify: (notification) =>
      session.era === "modern"
        ? relayModernNotification(notification, context)
        : context.mcpReq.notify(notification),
  };
}
