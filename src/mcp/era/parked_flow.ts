/**
 * A 2026-07-28 client calling a 2025-era backend: the backend's request to the client becomes
 * `input_required`, and the call waits, parked, for the client's retry carrying the answer.
 */
import type { ServerContext } from "@modelcontextprotocol/server";
import { JSONRPC, JsonRpcError, SHUTTING_DOWN } from "../../core/jsonrpc.ts";
import type { CallOrigin } from "../backends/call_origin.ts";
import type { Upstream } from "../backends/upstream.ts";
import type { FrontSession, ProxyDependencies } from "../session.ts";
import { missingCapability, relayModernNotification, urlElicitationAsInputRequired } from "./modern.ts";
import { PARKED_STATE_PREFIX, ParkedCall } from "./parked.ts";

type Params = Record<string, unknown>;
type Result = Record<string, unknown>;

/**
 * Questions a backend may ask whenever it likes (a server asks for roots when it starts, and when told they
 * changed), which the call in flight does not depend on.
 */
const UNPROMPTED_QUESTIONS = new Set(["roots/list"]);

/** The key of the one question a parked call asks at a time. */
const ASK_KEY = "gatehouse";

/** Whether a 2026-07-28 retry carries a request state the gateway made for a parked call. */
export function isParkedState(state: unknown): state is string {
  return typeof state === "string" && state.startsWith(PARKED_STATE_PREFIX);
}

export interface ParkedFlow {
  readonly deps: ProxyDependencies;
  readonly session: FrontSession;
  readonly context: ServerContext;
}

/** Starts the backend call parked, and answers with its first outcome (its result, or its question). */
export async function callParked(
  flow: ParkedFlow,
  upstream: Upstream,
  method: string,
  params: Params | undefined,
  onprogress: ((progress: { progress: number; total?: number; message?: string }) => void) | undefined,
  flushProgress: (() => Promise<unknown>) | undefined,
): Promise<Result> {
  const { session, context } = flow;
  const call = new ParkedCall(session.caller.id);
  const origin: CallOrigin = {
    sessionId: session.id,
    userId: session.caller.id,
    request: (ask) => call.ask(ask),
    notify: (notification) => relayModernNotification(notification, context),
  };
  const running = upstream.request(method, params, origin, { signal: call.controller.signal, onprogress });
  // A connection of this request's own (isolation: session) lives as long as the call.
  session.keepConnections = true;
  running.finally(() => flow.deps.pool.releaseSession(session.id)).catch(() => {});
  call.run(running);
  return await nextOutcome(flow, call, flushProgress);
}

/** The client's retry with answers: hand them to the parked call and wait for what comes next. */
export async function resumeParked(flow: ParkedFlow, state: string): Promise<Result> {
  const parked = flow.deps.parked.take(state, flow.session.caller.id);
  if (!parked) throw new JsonRpcError(JSONRPC.invalidParams, "Invalid or expired requestState");
  parked.answer(flow.context.mcpReq.inputResponses?.[ASK_KEY]);
  return await nextOutcome(flow, parked, undefined);
}

async function nextOutcome(
  flow: ParkedFlow,
  parked: ParkedCall,
  flushProgress: (() => Promise<unknown>) | undefined,
): Promise<Result> {
  const { stopping } = flow.deps;
  let outcome;
  try {
    outcome = await parked.next(AbortSignal.any([flow.context.mcpReq.signal, stopping]));
  } catch (error) {
    if (!stopping.aborted) throw error;
    parked.abandon();
    throw new JsonRpcError(JSONRPC.shuttingDown, SHUTTING_DOWN);
  }
  // Progress sent before the outcome must reach the client before it.
  await flushProgress?.();
  if (outcome.kind === "result") return outcome.result;
  if (outcome.kind === "ask") {
    const missing = missingCapability(outcome.ask.method, flow.context);
    if (missing && UNPROMPTED_QUESTIONS.has(outcome.ask.method)) {
      // Asked at any time, not because this call needs it: the backend hears the client has none.
      parked.decline(new JsonRpcError(JSONRPC.methodNotFound, `The client does not provide ${missing}`));
      return await nextOutcome(flow, parked, flushProgress);
    }
    if (missing) {
      // The client cannot answer this: the backend's question fails, and so does the call (SEP-2575).
      parked.abandon();
      throw new JsonRpcError(JSONRPC.missingClientCapability, "Missing required client capability", {
        requiredCapabilities: { [missing]: {} },
      });
    }
    const { _meta: _backendMeta, ...askParams } = outcome.ask.params ?? {};
    return {
      resultType: "input_required",
      inputRequests: { [ASK_KEY]: { method: outcome.ask.method, params: askParams } },
      requestState: flow.deps.parked.park(parked),
    };
  }
  const error = outcome.error;
  if (error instanceof JsonRpcError && error.code === JSONRPC.urlElicitationRequired) {
    return urlElicitationAsInputRequired(error);
  }
  throw error;
}
