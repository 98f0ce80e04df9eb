/**
 * One request being relayed: the gateway's dependencies, the session it came on and the SDK's context for
 * it, with what every relay step asks of them (the reachable backends, the one of a backend endpoint).
 */
import type { ServerContext } from "@modelcontextprotocol/server";
import type { BackendSettings } from "../../config/types.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { scopeBackends } from "../scope.ts";
import type { FrontSession, ProxyDependencies } from "../session.ts";

export type Params = Record<string, unknown>;
export type Result = Record<string, unknown>;

export interface RelayRequest {
  readonly deps: ProxyDependencies;
  readonly session: FrontSession;
  readonly context: ServerContext;
}

/** The backends this request may reach, in registry order. */
export function backendsOf(relay: RelayRequest): BackendSettings[] {
  return scopeBackends(relay.deps.registry(), relay.session.scope, relay.session.caller);
}

/** On `/mcp/{backend}`: that backend (when the caller may use it); on `/mcp`: undefined. */
export function singleBackendOf(relay: RelayRequest): BackendSettings | undefined {
  return relay.session.scope.kind === "backend" ? backendsOf(relay)[0] : undefined;
}

/** A backend of this request's scope by name; one it may not reach is as unknown as one that is not. */
export function backendNamed(relay: RelayRequest, name: string): BackendSettings {
  const backend = relay.deps.registry().backends[name];
  if (!backend || !backendsOf(relay).includes(backend)) {
    throw new JsonRpcError(JSONRPC.invalidParams, `Unknown backend "${name}"`);
  }
  return backend;
}

/** The backend connection this request's calls go to, for its caller and (isolation: session) session. */
export function upstreamOf(relay: RelayRequest, backend: BackendSettings) {
  return relay.deps.pool.upstream(backend.name, relay.session.caller, relay.session.owner);
}
