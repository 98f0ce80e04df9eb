/**
 * The Router: answers one front session's requests. Each method is looked up in the method table (one
 * not there is refused with -32601) and handled by the one handler of its route, which finds the
 * backend, applies the guard and relays the call.
 */
import type { JSONRPCRequest, Notification, ServerContext } from "@modelcontextprotocol/server";
import { ConsentRequiredError } from "../../services/consent_required.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { declaredCapabilities } from "../era/modern.ts";
import { tasksExtensionOf, tasksExtensionRequired } from "../era/tasks_extension.ts";
import { scopeBackends, toolAllowed } from "../scope.ts";
import type { FrontSession, ProxyDependencies } from "../session.ts";
import { relayCall } from "./call.ts";
import { connectCall, connectToolName, consentAnswer } from "./consent.ts";
import { admitRouted, guardCall } from "./guard.ts";
import {
  fanOut,
  listPrompts,
  listResources,
  listTasks,
  listTemplates,
  listTools,
  readOnlyTool,
} from "./lists.ts";
import { routeOf } from "./method_table.ts";
import { backendsOf, type Params, type RelayRequest, type Result, upstreamOf } from "./request.ts";
import { resolveName, resourceBackend, templateBackend } from "./routing.ts";
import { taskOwnersOf } from "./tasks.ts";
import { canonicalResourceUri } from "./uri.ts";

type Handler = (relay: RelayRequest, params: Params | undefined, method: string) => Promise<Result>;

/** The handler of each method of the method table (a unit test holds the two to the same methods). */
export const HANDLERS: Readonly<Record<string, Handler>> = {
  "tools/list": listTools,
  "prompts/list": listPrompts,
  "resources/list": listResources,
  "resources/templates/list": listTemplates,
  "tasks/list": listTasks,
  "tools/call": callTool,
  "prompts/get": getPrompt,
  "resources/read": resource,
  "resources/subscribe": resource,
  "resources/unsubscribe": resource,
  "completion/complete": complete,
  "tasks/get": taskCall,
  "tasks/result": taskCall,
  "tasks/cancel": taskCall,
  "tasks/update": taskCall,
  "logging/setLevel": setLevel,
};

export class Router {
  readonly #deps: ProxyDependencies;
  readonly #session: FrontSession;

  constructor(deps: ProxyDependencies, session: FrontSession) {
    this.#deps = deps;
    this.#session = session;
  }

  async handle(request: JSONRPCRequest, context: ServerContext): Promise<Result> {
    const relay: RelayRequest = { deps: this.#deps, session: this.#session, context };
    try {
      return await dispatch(relay, request);
    } catch (error) {
      // E.g. a list on a backend's own endpoint, before its service is connected: the link is the answer.
      if (error instanceof ConsentRequiredError) return consentAnswer(relay, request.method, error);
      throw error;
    } finally {
      // A 2026-07-28 request is its own session: connections it owned end with it, unless a call is parked.
      if (this.#session.era === "modern" && !this.#session.keepConnections) {
        this.#deps.pool.releaseSession(this.#session.id);
      }
    }
  }

  /** Client notifications: roots belong to one client, so only connections owned by its session hear them. */
  async notify(notification: Notification): Promise<void> {
    if (notification.method !== "notifications/roots/list_changed") return;
    const session = this.#session;
    if (!session.owner) return;
    for (const backend of scopeBackends(this.#deps.registry(), session.scope, session.caller)) {
      if (backend.transport.kind !== "stdio" || backend.isolation !== "session") continue;
      try {
        const upstream = await this.#deps.pool.upstream(backend.name, session.caller, session.owner);
        await upstream.notify(notification);
      } catch {
        // The backend is down; it will ask for roots again when it is back.
      }
    }
  }
}

/** Product §4: every method has one route and one guard; a method not in the table is refused. */
async function dispatch(relay: RelayRequest, request: JSONRPCRequest): Promise<Result> {
  const method = request.method;
  const handler = routeOf(method) ? HANDLERS[method] : undefined;
  if (!handler) throw new JsonRpcError(JSONRPC.methodNotFound, `Method not found: ${method}`);
  return await handler(relay, request.params as Params | undefined, method);
}

/** A name a request gives: only a string names anything (an array or object is no spelling of one). */
function nameParam(value: unknown, what: string): string {
  if (typeof value !== "string") {
    throw new JsonRpcError(JSONRPC.invalidParams, `Invalid params: ${what} must be a string`);
  }
  return value;
}

async function callTool(relay: RelayRequest, params: Params | undefined): Promise<Result> {
  const exposed = nameParam(params?.name, "name");
  const { backend, name } = await resolveName(relay, "tools", exposed);
  const service = backend.services.find((candidate) => connectToolName(candidate) === name);
  if (service !== undefined) return await connectCall(relay, backend, service);
  if (!toolAllowed(backend, name)) throw new JsonRpcError(JSONRPC.invalidParams, `Unknown tool: ${exposed}`);
  const readOnly = await readOnlyTool(relay, backend, name);
  guardCall(relay, backend, "tools/call", { kind: "tool", name, readOnly });
  return await relayCall(relay, backend, "tools/call", { ...params, name });
}

async function getPrompt(relay: RelayRequest, params: Params | undefined): Promise<Result> {
  const { backend, name } = await resolveName(relay, "prompts", nameParam(params?.name, "name"));
  guardCall(relay, backend, "prompts/get", { kind: "prompt", name });
  return await relayCall(relay, backend, "prompts/get", { ...params, name });
}

/**
 * resources/read, subscribe and unsubscribe: the URI is canonicalised once, and that form is routed,
 * checked against the policies and sent to the backend (so no other spelling can slip past a rule).
 */
async function resource(relay: RelayRequest, params: Params | undefined, method: string): Promise<Result> {
  const uri = canonicalResourceUri(params?.uri);
  const forwarded = { ...params, uri };
  const backend = await resourceBackend(relay, uri);
  // Unsubscribing only ends what the session subscribed to, which the policies allowed then.
  if (method !== "resources/unsubscribe") guardCall(relay, backend, method, { kind: "resource", uri });
  else admitRouted(relay, backend);
  if (method === "resources/read") return await relayCall(relay, backend, method, forwarded);
  const subscribe = method === "resources/subscribe";
  if (subscribe) relay.session.subscriptions.set(uri, backend.name);
  else relay.session.subscriptions.delete(uri);
  const upstream = await upstreamOf(relay, backend);
  if (!upstream.modern) return await relayCall(relay, backend, method, forwarded);
  // 2026-07-28 backends have no subscribe: the gateway listens on their subscriptions/listen stream.
  await upstream.subscribe(uri, subscribe);
  return {};
}

async function complete(relay: RelayRequest, params: Params | undefined): Promise<Result> {
  const ref = params?.ref as { type?: string; name?: string; uri?: string } | undefined;
  if (ref?.type === "ref/prompt") {
    const { backend, name } = await resolveName(relay, "prompts", nameParam(ref.name, "ref.name"));
    guardCall(relay, backend, "completion/complete", { kind: "prompt", name });
    return await relayCall(relay, backend, "completion/complete", { ...params, ref: { ...ref, name } });
  }
  if (ref?.type === "ref/resource") {
    const uri = nameParam(ref.uri, "ref.uri");
    const backend = await templateBackend(relay, uri);
    guardCall(relay, backend, "completion/complete", { kind: "resource", uri });
    return await relayCall(relay, backend, "completion/complete", params);
  }
  throw new JsonRpcError(
    JSONRPC.invalidParams,
    "completion/complete needs a ref of type ref/prompt or ref/resource",
  );
}

/**
 * tasks/get, result, cancel, update: only for the caller's own tasks, sent to the backend that created
 * them; another user's (or client's) task is "not found".
 */
async function taskCall(relay: RelayRequest, params: Params | undefined, method: string): Promise<Result> {
  // 2026-07-28 has only SEP-2663 tasks, for requests that declare the extension (SEP-2575).
  if (relay.session.era === "modern" && !tasksExtensionOf(declaredCapabilities(relay.context))) {
    throw tasksExtensionRequired(method);
  }
  const name = taskOwnersOf(relay.deps.pool).backendOf(relay.session.caller, params?.taskId);
  const backend = backendsOf(relay).find((candidate) => candidate.name === name);
  if (!backend) throw new JsonRpcError(JSONRPC.invalidParams, `Task not found: ${String(params?.taskId)}`);
  admitRouted(relay, backend);
  return await relayCall(relay, backend, method, params);
}

/** logging/setLevel: kept for the session; 2025-era backends are told, 2026-07-28 ones get it per request. */
async function setLevel(relay: RelayRequest, params: Params | undefined): Promise<Result> {
  relay.session.logLevel = typeof params?.level === "string" ? params.level : undefined;
  await fanOut(relay, "logging", async (backend) => {
    const upstream = await upstreamOf(relay, backend);
    if (!upstream.modern) await relayCall(relay, backend, "logging/setLevel", params);
  });
  return {};
}
