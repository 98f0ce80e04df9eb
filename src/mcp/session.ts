/**
 * What the relay knows of one front session (who calls, on which endpoint, what it has listed) and the
 * gateway-wide dependencies every part of the relay is given.
 */
import type { JSONRPCRequest, Server, ServerContext } from "@modelcontextprotocol/server";
import type { Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { AuditLog } from "../audit/audit.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { RecentEvents } from "../metrics/events.ts";
import type { RateLimiter } from "../policy/limits.ts";
import type { Caller } from "../core/caller.ts";
import { NameTable } from "./names.ts";
import type { BackendPool } from "./backends/pool.ts";
import type { CallOrigin } from "./backends/call_origin.ts";
import type { ParkedCalls } from "./era/parked.ts";
import type { ListCache } from "./list_cache.ts";

/** `/mcp` serves every backend the caller may use; `/mcp/{backend}` one of them, names unprefixed. */
export type ProxyScope = { readonly kind: "aggregate" } | { readonly kind: "backend"; readonly name: string };

/** The endpoint a scope is served on: "" for `/mcp`, the backend name for `/mcp/{backend}`. */
export const scopeKey = (scope: ProxyScope) => scope.kind === "aggregate" ? "" : scope.name;

/** What a front session knows between requests: where names and URIs it has listed came from. */
export class FrontSession {
  readonly id: string;
  readonly caller: Caller;
  readonly scope: ProxyScope;
  readonly era: "legacy" | "modern";
  tools = new NameTable();
  prompts = new NameTable();
  readonly resourceOwners = new Map<string, string>();
  templateOwners: { pattern: RegExp; template: string; backend: string }[] = [];
  readonly subscriptions = new Map<string, string>();
  /** The SDK server answering this session (legacy sessions keep one for their lifetime). */
  server: Server | undefined;
  /** Answers one request of this session (its Router), for the calls that bypass the SDK server. */
  answer: ((request: JSONRPCRequest, context: ServerContext) => Promise<Record<string, unknown>>) | undefined;
  /** Reaches this session's client outside any call; only legacy sessions have one. */
  owner: CallOrigin | undefined;
  /** The level the client asked for with logging/setLevel (legacy sessions). */
  logLevel: string | undefined;
  /** Set when a 2026-07-28 request's own connections must outlive it (a parked call uses them). */
  keepConnections = false;
  /** URL elicitations (2025-11-25) this session was sent and not yet told are complete. */
  readonly awaitingConsent = new Set<string>();
  /** Each backend's lists as this session last fetched them, by "backend\nmethod", before any filter. */
  readonly lastLists = new Map<string, Record<string, unknown>[]>();
  /** Aborted when the session ends: its calls still running on shared backends are cancelled. */
  readonly closed = new AbortController();

  constructor(id: string, caller: Caller, scope: ProxyScope, era: "legacy" | "modern") {
    this.id = id;
    this.caller = caller;
    this.scope = scope;
    this.era = era;
  }
}

export interface ProxyDependencies {
  registry: () => Registry;
  pool: BackendPool;
  log: Logger;
  parked: ParkedCalls;
  /** The lists of backends that need a third-party token, as last seen (shown to users awaiting consent). */
  lists: ListCache;
  /** Where denials and rate-limit refusals are recorded. */
  audit: AuditLog | undefined;
  metrics: Metrics | undefined;
  /** What the status page shows as recent errors, denials and consent requests. */
  events: RecentEvents | undefined;
  /** Aggregate tool and prompt names that had to be shortened, by `{prefix}__{name}`. */
  shortened: Map<string, string>;
  limiter: RateLimiter;
  /** Whether each backend's tools are annotated readOnlyHint, as last listed (for `read_only` rules). */
  toolReadOnly: Map<string, Map<string, boolean>>;
  /** Input schemas of the tools each endpoint listed last, by endpoint ("" for /mcp) and exposed name. */
  toolSchemas: Map<string, Map<string, Record<string, unknown>>>;
  /**
   * The last complete list of each shared backend, by "backend\nmethod": what `/mcp` shows for a backend
   * that does not answer within `gateway.list_timeout`.
   */
  lastKnownLists: Map<string, Record<string, unknown>[]>;
  /** Aborted when the gateway stops with calls still running: they are answered "shutting down". */
  stopping: AbortSignal;
}
