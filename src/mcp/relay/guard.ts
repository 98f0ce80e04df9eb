/**
 * The relay's guards: the policy decision on what a call names (recorded when it denies), the rate
 * limits of the caller and the backend, and the filter every list goes through.
 */
import { formatLocation } from "../../config/errors.ts";
import type { BackendSettings } from "../../config/types.ts";
import type { LimitScope } from "../../policy/limits.ts";
import { type PolicyObject, policyOf } from "../../policy/policy.ts";
import type { Caller } from "../../core/caller.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { listedObject, type ListKind } from "../scope.ts";
import type { ProxyDependencies } from "../session.ts";
import { type RelayRequest, singleBackendOf } from "./request.ts";

/**
 * Takes `count` requests of the caller from the rate limits of `scope`; over a limit, counts and (once a
 * minute per limit and user) audits the refusal and returns it as the error to answer with.
 */
export function admitRequests(
  deps: ProxyDependencies,
  caller: Caller,
  scope: LimitScope,
  count = 1,
): JsonRpcError | undefined {
  const admission = deps.limiter.take(deps.registry(), caller, scope, count);
  if (admission.ok) return undefined;
  deps.metrics?.rateLimited.inc({ scope: scope.kind === "endpoint" ? "user" : "backend" });
  if (admission.first) {
    deps.audit?.record("rate_limit", caller.id, {
      backend: scope.backend ?? null,
      limit: admission.limit.id ?? null,
      requests_per_minute: admission.limit.requestsPerMinute,
    });
  }
  return new JsonRpcError(
    JSONRPC.rateLimited,
    `Rate limit reached: retry in ${admission.retryAfterSeconds} s`,
    { retryAfter: admission.retryAfterSeconds },
  );
}

/**
 * A request routed from `/mcp` to `backend` counts against that backend's limits (on `/mcp/{backend}`
 * it was counted when the HTTP request arrived).
 */
export function admitRouted(relay: RelayRequest, backend: BackendSettings): void {
  if (singleBackendOf(relay)) return;
  const refused = admitRequests(relay.deps, relay.session.caller, { kind: "routed", backend: backend.name });
  if (refused) throw refused;
}

/** Whether the caller may see `item` of a list of `backend`. */
export function visible(
  relay: RelayRequest,
  backend: BackendSettings,
  kind: ListKind,
  item: Record<string, unknown>,
): boolean {
  return policyOf(relay.deps.registry()).decide(relay.session.caller, backend.name, listedObject(kind, item))
    .allowed;
}

/**
 * Refuses a call the policies do not allow (recording which rule decided, never telling the client), and
 * one over a rate limit of the backend it goes to.
 */
export function guardCall(
  relay: RelayRequest,
  backend: BackendSettings,
  method: string,
  object: PolicyObject,
): void {
  const { deps } = relay;
  const caller = relay.session.caller;
  const decision = policyOf(deps.registry()).decide(caller, backend.name, object);
  if (!decision.allowed) {
    const what = object.kind === "resource" ? `resource ${object.uri}` : `${object.kind} ${object.name}`;
    const rule = decision.rule;
    deps.audit?.record("denial", caller.id, {
      backend: backend.name,
      method,
      object: what,
      client_id: caller.clientId ?? null,
      rule: rule?.id ?? null,
      source: rule ? formatLocation(rule.source) : null,
    });
    deps.log.info("call denied by policy", { backend: backend.name, method, user: caller.id });
    deps.metrics?.denials.inc({ backend: backend.name });
    deps.events?.add("denial", { user: caller.id, backend: backend.name, message: `${method}: ${what}` });
    throw new JsonRpcError(JSONRPC.accessDenied, `Access denied: ${what}`);
  }
  admitRouted(relay, backend);
}
