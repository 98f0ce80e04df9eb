/**
 * The relay's method table: every JSON-RPC request method the Router serves, with how it is routed and
 * what guards it. A method missing from the table is refused with -32601, never passed through.
 */

/** How a request finds the backend(s) it goes to. */
export type RouteKind =
  /** Sent to every backend of the scope offering the capability; the answers merged and filtered. */
  | "fan-out"
  /** A tool or prompt name (prefixed on `/mcp`) says which backend. */
  | "by-name"
  /** A resource URI, canonicalised first, says which backend (the one that listed it or its template). */
  | "by-uri"
  /** A completion's `ref` (a prompt name or a resource template) says which backend. */
  | "by-ref"
  /** A task id says which backend: the one whose call created it, for the caller who created it only. */
  | "by-task"
  /** Answered by the gateway, which forwards what each backend needs. */
  | "gateway-local";

/** What decides whether the caller may make the request. */
export type GuardKind =
  /** Each listed item is filtered through the policies. */
  | "filter"
  /** The policies decide on the named object (tool, prompt, resource), then the backend's rate limit. */
  | "policy"
  /** Only the user and client that created the task; anyone else is told it does not exist. */
  | "task-owner"
  /** Nothing beyond being allowed the endpoint (the HTTP front checked that). */
  | "endpoint";

export interface MethodRoute {
  readonly route: RouteKind;
  readonly guard: GuardKind;
  /** The backend capability the method needs (fan-out skips backends without it). */
  readonly capability?: "tools" | "prompts" | "resources" | "logging" | "completions" | "tasks";
}

const route = (
  route: RouteKind,
  guard: GuardKind,
  capability?: MethodRoute["capability"],
): MethodRoute => Object.freeze({ route, guard, capability });

/**
 * Every request method of MCP 2024-11-05 .. 2026-07-28 that reaches the Router (ping, initialize,
 * server/discover and subscriptions/listen are answered by the SDK and the HTTP front). Tasks: the
 * 2025-11-25 experimental tasks (`tasks/list`, `tasks/result`) and SEP-2663 (`tasks/update`).
 */
export const METHOD_TABLE: ReadonlyMap<string, MethodRoute> = new Map([
  ["tools/list", route("fan-out", "filter", "tools")],
  ["prompts/list", route("fan-out", "filter", "prompts")],
  ["resources/list", route("fan-out", "filter", "resources")],
  ["resources/templates/list", route("fan-out", "filter", "resources")],
  ["tasks/list", route("fan-out", "task-owner", "tasks")],
  ["tools/call", route("by-name", "policy", "tools")],
  ["prompts/get", route("by-name", "policy", "prompts")],
  ["resources/read", route("by-uri", "policy", "resources")],
  ["resources/subscribe", route("by-uri", "policy", "resources")],
  // Only ends what the session subscribed to (which the policies allowed then).
  ["resources/unsubscribe", route("by-uri", "endpoint", "resources")],
  ["completion/complete", route("by-ref", "policy", "completions")],
  ["tasks/get", route("by-task", "task-owner", "tasks")],
  ["tasks/result", route("by-task", "task-owner", "tasks")],
  ["tasks/cancel", route("by-task", "task-owner", "tasks")],
  ["tasks/update", route("by-task", "task-owner", "tasks")],
  ["logging/setLevel", route("gateway-local", "endpoint", "logging")],
]);

/** The route of a method, or undefined for one the gateway does not know (to be refused with -32601). */
export function routeOf(method: string): MethodRoute | undefined {
  return METHOD_TABLE.get(method);
}

/** Methods the SDK and the HTTP front answer themselves (the session handshake and the 2026-07-28 stream). */
export const FRONT_METHODS: ReadonlySet<string> = new Set([
  "initialize",
  "ping",
  "server/discover",
  "subscriptions/listen",
]);

/** Whether a request method is one the gateway serves at all (answered by the front or routed). */
export function isKnownMethod(method: string): boolean {
  return FRONT_METHODS.has(method) || METHOD_TABLE.has(method);
}
