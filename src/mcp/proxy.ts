/**
 * The Router: answers one front session by routing each request, through the method table and its
 * guards, to the backends the caller may use, and relaying what comes back in both directions.
 */
import { McpServer, Server } from "@modelcontextprotocol/server";
import type {
  JSONRPCRequest,
  Notification,
  ServerCapabilities,
  ServerContext,
} from "@modelcontextprotocol/server";
import { formatLocation } from "../config/errors.ts";
import type { BackendSettings, Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { VERSION } from "../version.ts";
import type { Caller } from "./caller.ts";
import { JSONRPC, JsonRpcError } from "./errors.ts";
import { NameTable, splitPrefixed } from "./names.ts";
import type { BackendPool } from "./pool.ts";
import { PARKED_STATE_PREFIX, ParkedCall, type ParkedCalls } from "./parked.ts";
import { ANY_RESULT, type CallOrigin, type Upstream } from "./upstream.ts";
import { ConsentRequiredError } from "../services/consent_required.ts";
import type { ListCache } from "./list_cache.ts";
import type { AuditLog } from "../audit/audit.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { RecentEvents } from "../status/events.ts";
import { GlobSet } from "../policy/glob.ts";
import type { LimitScope, RateLimiter } from "../policy/limits.ts";
import { type Policy, type PolicyObject, policyOf, type PolicySubject } from "../policy/policy.ts";
import { routeOf } from "./relay/method_table.ts";
import { createdTask, taskOwnersOf } from "./relay/tasks.ts";
import { canonicalListedUri, canonicalResourceUri, templateMatcher } from "./relay/uri.ts";

type Params = Record<string, unknown>;
type Result = Record<string, unknown>;

/** `/mcp` serves every backend the caller may use; `/mcp/{backend}` one of them, names unprefixed. */
export type ProxyScope = { readonly kind: "aggregate" } | { readonly kind: "backend"; readonly name: string };

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
}

/** Methods that may answer `input_required` in the 2026-07-28 revision. */
const INPUT_REQUIRED_METHODS = new Set(["tools/call", "prompts/get", "resources/read"]);
/** Methods whose result may be a created task instead of the answer (2025-11-25 tasks, SEP-2663). */
const TASK_CREATING_METHODS = new Set(["tools/call", "prompts/get", "resources/read"]);
/** Rounds of input a 2025-era client is asked for before the gateway gives up on a call. */
const MAX_INPUT_ROUNDS = 8;
const CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities";
const PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";
const CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo";
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";
/** The key of the one question a parked call asks at a time. */
const ASK_KEY = "gatehouse";
/** Request state for "open the link, then retry": the retry simply runs the call again. */
const RETRY_STATE = "gatehouse-retry";

/**
 * The tool `/mcp` lists for a backend whose service the user has not connected, when no one's listing of
 * that backend is known yet: calling it brings the consent link.
 */
export const connectToolName = (service: string) => `gatehouse_connect_${service}`;

function connectTool(backend: BackendSettings, service: string): Record<string, unknown> {
  return {
    name: connectToolName(service),
    title: `Connect ${service}`,
    description: `Connect your ${service} account so that the tools of "${backend.name}" become available. ` +
      "Call this to get the link to open; the tools are listed once you have connected.",
    inputSchema: { type: "object", properties: {} },
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

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

/** The endpoint a scope is served on: "" for `/mcp`, the backend name for `/mcp/{backend}`. */
export const scopeKey = (scope: ProxyScope) => scope.kind === "aggregate" ? "" : scope.name;

const toolFilters = new WeakMap<BackendSettings, { include: GlobSet | undefined; exclude: GlobSet }>();

/** The backend's static `tools:` filter (compiled once per backend definition). */
function toolAllowed(backend: BackendSettings, name: string): boolean {
  let filter = toolFilters.get(backend);
  if (!filter) {
    const { include, exclude } = backend.tools;
    filter = {
      include: include.length > 0 ? new GlobSet(include) : undefined,
      exclude: new GlobSet(exclude),
    };
    toolFilters.set(backend, filter);
  }
  return (filter.include?.test(name) ?? true) && !filter.exclude.test(name);
}

export type ListKind = "tools" | "prompts" | "resources" | "resourceTemplates";

/** Whether a listed tool is annotated `readOnlyHint: true`. */
function isReadOnly(tool: Record<string, unknown>): boolean {
  return (tool.annotations as { readOnlyHint?: unknown } | undefined)?.readOnlyHint === true;
}

/** The policy object a listed item stands for. */
export function listedObject(kind: ListKind, item: Record<string, unknown>): PolicyObject {
  if (kind === "tools") return { kind: "tool", name: String(item.name), readOnly: isReadOnly(item) };
  if (kind === "prompts") return { kind: "prompt", name: String(item.name) };
  // Policies match the canonical form of a URI, the form a read of it is checked in.
  if (kind === "resources") return { kind: "resource", uri: canonicalListedUri(String(item.uri)) };
  return { kind: "resource", uri: String(item.uriTemplate) };
}

/** The backends a session can reach, in registry order: those of its scope the policies let it use. */
export function scopeBackends(
  registry: Registry,
  scope: ProxyScope,
  subject: PolicySubject,
): BackendSettings[] {
  const policy = policyOf(registry);
  const backends = scope.kind === "backend"
    ? (Object.hasOwn(registry.backends, scope.name) ? [registry.backends[scope.name]!] : [])
    : Object.values(registry.backends);
  return backends.filter((backend) => policy.usesBackend(subject, backend.name));
}

/**
 * The capabilities to announce: the union of what the session's backends offer, connecting to those not
 * seen yet (a backend that cannot be reached is left out).
 */
export async function frontCapabilities(
  deps: ProxyDependencies,
  session: FrontSession,
): Promise<ServerCapabilities> {
  const backends = scopeBackends(deps.registry(), session.scope, session.caller);
  const known = await Promise.all(backends.map(async (backend) => {
    if (deps.pool.capabilities(backend.name)) return deps.pool.capabilities(backend.name);
    try {
      // A 2026-07-28 request's own connections open only for its calls (which close them again).
      const owner = session.era === "legacy" ? session.owner : undefined;
      return (await deps.pool.upstream(backend.name, session.caller, owner)).capabilities();
    } catch (error) {
      // Not connected to the backend's service yet: announce tools, whose list or call brings the link.
      return error instanceof ConsentRequiredError ? { tools: {} } : undefined;
    }
  }));
  const union: ServerCapabilities = {};
  for (const capabilities of known) {
    if (!capabilities) continue;
    if (capabilities.tools) union.tools = { listChanged: true };
    if (capabilities.prompts) union.prompts = { listChanged: true };
    if (capabilities.resources) {
      union.resources = {
        listChanged: true,
        subscribe: Boolean(union.resources?.subscribe || capabilities.resources.subscribe),
      };
    }
    if (capabilities.logging) union.logging = {};
    if (capabilities.completions) union.completions = {};
    // 2025-11-25 tasks: relayed (each task only to its creator), so announced as the backends offer them.
    if (capabilities.tasks) union.tasks = mergeTasks(union.tasks, capabilities.tasks);
    // Extensions (SEP-2663 tasks, skills) are not announced: their results cannot be relayed yet.
  }
  return union;
}

/**
 * The union of two backends' `tasks` capabilities (each a tree of empty objects, as 2025-11-25 has it):
 * tasks are relayed, each only to its creator, so they are announced as the backends offer them.
 */
export function mergeTasks(into: unknown, from: unknown): NonNullable<ServerCapabilities["tasks"]> {
  const merge = (a: unknown, b: unknown): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown> | undefined) };
    for (const [key, value] of Object.entries((b ?? {}) as Record<string, unknown>)) {
      out[key] = value && typeof value === "object" ? merge(out[key], value) : value;
    }
    return out;
  };
  return merge(into, from) as NonNullable<ServerCapabilities["tasks"]>;
}

/** Relays a backend's progress under the token the client chose, when it asked for progress. */
function progressRelay(context: ServerContext) {
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

/**
 * A backend's -32042 (2025-11-25 "open this URL first") in the 2026-07-28 form: URL elicitations as
 * `input_required`; the client's retry runs the call again.
 */
export function urlElicitationAsInputRequired(error: JsonRpcError): Result {
  const elicitations = (error.data as { elicitations?: { url?: string; message?: string }[] } | undefined)
    ?.elicitations ?? [];
  const inputRequests = Object.fromEntries(elicitations.map((elicitation, index) => [
    `url-${index}`,
    {
      method: "elicitation/create",
      params: {
        mode: "url",
        url: String(elicitation.url ?? ""),
        message: String(elicitation.message ?? error.message),
      },
    },
  ]));
  return { resultType: "input_required", inputRequests, requestState: RETRY_STATE };
}

const LOG_SEVERITY = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

/**
 * A backend's notification for a 2026-07-28 request: log messages only when the request asked for a log
 * level (`_meta` logLevel), at or above it.
 */
function relayModernNotification(notification: Notification, context: ServerContext): Promise<void> {
  if (notification.method === "notifications/message") {
    const envelope = (context.mcpReq.envelope ?? {}) as Record<string, unknown>;
    const wanted = LOG_SEVERITY.indexOf(String(envelope[LOG_LEVEL_KEY]));
    const level = LOG_SEVERITY.indexOf(
      String((notification.params as { level?: unknown } | undefined)?.level),
    );
    if (wanted < 0 || level < wanted) return Promise.resolve();
  }
  return context.mcpReq.notify(notification);
}

/** The capability a 2026-07-28 client must have declared to answer `method`, when it has not. */
function missingCapability(method: string, context: ServerContext): string | undefined {
  const envelope = (context.mcpReq.envelope ?? {}) as Record<string, unknown>;
  const declared = (envelope[CLIENT_CAPABILITIES_KEY] ?? {}) as Record<string, unknown>;
  const needed = method === "sampling/createMessage"
    ? "sampling"
    : method === "elicitation/create"
    ? "elicitation"
    : method === "roots/list"
    ? "roots"
    : undefined;
  return needed !== undefined && declared[needed] === undefined ? needed : undefined;
}

/** Whether a 2026-07-28 request's client declared URL-mode elicitation (`elicitation.url`). */
function declaresUrlElicitation(context: ServerContext): boolean {
  const envelope = (context.mcpReq.envelope ?? {}) as Record<string, unknown>;
  const declared = (envelope[CLIENT_CAPABILITIES_KEY] ?? {}) as { elicitation?: { url?: unknown } };
  return declared.elicitation?.url !== undefined;
}

/** A CallOrigin for a request being handled by the SDK: messages go back on that request's stream. */
function originOf(session: FrontSession, context: ServerContext): CallOrigin {
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

/** Builds the SDK server that answers one front session by relaying to its backends. */
export function createProxyServer(
  deps: ProxyDependencies,
  session: FrontSession,
  capabilities: ServerCapabilities,
): Server {
  return attachRouter(new Server({ name: "gatehouse", version: VERSION }, { capabilities }), deps, session);
}

/**
 * For 2026-07-28 requests: the same proxy, in the shape whose tool schemas the SDK's HTTP entry reads to
 * check `Mcp-Param-*` headers against the body (SEP-2243) before the call is relayed.
 */
export class ProxyMcpServer extends McpServer {
  readonly #schemaOf: (tool: string) => Record<string, unknown> | undefined;

  constructor(
    deps: ProxyDependencies,
    session: FrontSession,
    capabilities: ServerCapabilities,
    schemaOf: (tool: string) => Record<string, unknown> | undefined,
  ) {
    // Capabilities are announced after construction: given to the constructor, McpServer would answer the
    // lists itself (with its own, empty, registries) instead of relaying them.
    super({ name: "gatehouse", version: VERSION });
    this.server.registerCapabilities(capabilities);
    this.#schemaOf = schemaOf;
    attachRouter(this.server, deps, session);
  }

  // Pinned SDK: this hook is how its HTTP entry finds a tool's inputSchema (tools are the backends' here).
  override toolInputSchemaJson(name: string): Record<string, unknown> | undefined {
    return this.#schemaOf(name);
  }
}

function attachRouter(server: Server, deps: ProxyDependencies, session: FrontSession): Server {
  const router = new Router(deps, session);
  server.fallbackRequestHandler = (request, context) => router.handle(request, context);
  server.fallbackNotificationHandler = (notification) => router.notify(notification);
  session.server = server;
  return server;
}

class Router {
  readonly #deps: ProxyDependencies;
  readonly #session: FrontSession;
  #progressFlush: (() => Promise<unknown>) | undefined;

  constructor(deps: ProxyDependencies, session: FrontSession) {
    this.#deps = deps;
    this.#session = session;
  }

  get #backends(): BackendSettings[] {
    return scopeBackends(this.#deps.registry(), this.#session.scope, this.#session.caller);
  }

  get #policy(): Policy {
    return policyOf(this.#deps.registry());
  }

  /** Whether the caller may see `item` of a list of `backend`. */
  #visible(backend: BackendSettings, kind: ListKind, item: Record<string, unknown>): boolean {
    return this.#policy.decide(this.#session.caller, backend.name, listedObject(kind, item)).allowed;
  }

  /**
   * Refuses a call the policies do not allow (recording which rule decided), and one over a rate limit
   * of the backend it goes to.
   */
  #guard(backend: BackendSettings, method: string, object: PolicyObject): void {
    const caller = this.#session.caller;
    const decision = this.#policy.decide(caller, backend.name, object);
    const what = object.kind === "resource" ? `resource ${object.uri}` : `${object.kind} ${object.name}`;
    if (!decision.allowed) {
      const rule = decision.rule;
      this.#deps.audit?.record("denial", caller.id, {
        backend: backend.name,
        method,
        object: what,
        client_id: caller.clientId ?? null,
        rule: rule?.id ?? null,
        source: rule ? formatLocation(rule.source) : null,
      });
      this.#deps.log.info("call denied by policy", { backend: backend.name, method, user: caller.id });
      this.#deps.metrics?.denials.inc({ backend: backend.name });
      this.#deps.events?.add("denial", {
        user: caller.id,
        backend: backend.name,
        message: `${method}: ${what}`,
      });
      throw new JsonRpcError(JSONRPC.accessDenied, `Access denied: ${what}`);
    }
    if (this.#single) return; // counted against the backend's limits when the HTTP request arrived
    const refused = admitRequests(this.#deps, caller, { kind: "routed", backend: backend.name });
    if (refused) throw refused;
  }

  /** Whether a tool is annotated readOnlyHint; asks the backend when a `read_only` rule needs to know. */
  async #readOnly(backend: BackendSettings, name: string, context: ServerContext): Promise<boolean> {
    if (!this.#policy.readsAnnotations) return false;
    let known = this.#deps.toolReadOnly.get(backend.name)?.get(name);
    if (known === undefined) {
      await this.#listAll(backend, "tools/list", "tools", context).catch(() => []);
      known = this.#deps.toolReadOnly.get(backend.name)?.get(name);
    }
    return known ?? false;
  }

  #backend(name: string): BackendSettings {
    const backend = this.#deps.registry().backends[name];
    if (!backend || !this.#backends.includes(backend)) {
      throw new JsonRpcError(JSONRPC.invalidParams, `Unknown backend "${name}"`);
    }
    return backend;
  }

  get #single(): BackendSettings | undefined {
    return this.#session.scope.kind === "backend" ? this.#backends[0] : undefined;
  }

  /** Relays one request to a backend; a missing third-party token becomes the consent answer. */
  async #call(
    backend: BackendSettings,
    method: string,
    params: Params | undefined,
    context: ServerContext,
  ): Promise<Result> {
    let result: Result;
    try {
      result = await this.#callBackend(backend, method, params, context);
    } catch (error) {
      if (error instanceof ConsentRequiredError) return this.#consentAnswer(method, error, context);
      throw error;
    }
    // A call whose result created a task (2025-11-25 or SEP-2663): the task is the caller's from now on.
    if (TASK_CREATING_METHODS.has(method)) {
      const task = createdTask(result);
      if (task) {
        taskOwnersOf(this.#deps.pool).remember(this.#session.caller, backend.name, task.taskId, task.ttlMs);
      }
    }
    return result;
  }

  /**
   * Section 6: how a client hears that it needs a consent link, in the best form it understands —
   * `input_required` with a URL elicitation (2026-07-28), -32042 (2025-11-25 clients that declare URL
   * elicitation), or a tool result / error carrying the link. Never an HTTP 401.
   */
  #consentAnswer(method: string, consent: ConsentRequiredError, context: ServerContext): Result {
    this.#deps.events?.add("consent", {
      user: this.#session.caller.id,
      backend: undefined,
      message: `asked to connect ${consent.service} (${method})`,
    });
    const message = `Connect your ${consent.service} account to continue: open ${consent.url} then retry.`;
    // SEP-2575: only ask a 2026-07-28 client for input it declared it can give.
    if (
      this.#session.era === "modern" && INPUT_REQUIRED_METHODS.has(method) && declaresUrlElicitation(context)
    ) {
      return {
        resultType: "input_required",
        inputRequests: {
          [`connect-${consent.service}`]: {
            method: "elicitation/create",
            params: { mode: "url", url: consent.url, message },
          },
        },
        requestState: RETRY_STATE,
      };
    }
    const elicitation = this.#session.server?.getClientCapabilities()?.elicitation as
      | { url?: unknown }
      | undefined;
    if (this.#session.era === "legacy" && elicitation?.url !== undefined) {
      this.#session.awaitingConsent.add(consent.elicitationId);
      throw new JsonRpcError(JSONRPC.urlElicitationRequired, message, {
        elicitations: [{ mode: "url", elicitationId: consent.elicitationId, url: consent.url, message }],
      });
    }
    if (method === "tools/call") {
      return { content: [{ type: "text", text: message }], isError: true, _meta: { auth_url: consent.url } };
    }
    throw new JsonRpcError(JSONRPC.consentRequired, message, { auth_url: consent.url });
  }

  /** Relays one request to a backend, counting it and its time for `/metrics`. */
  async #callBackend(
    backend: BackendSettings,
    method: string,
    params: Params | undefined,
    context: ServerContext,
  ): Promise<Result> {
    const metrics = this.#deps.metrics;
    const started = performance.now();
    let outcome = "ok";
    try {
      return await this.#callBackendUnmetered(backend, method, params, context);
    } catch (error) {
      outcome = error instanceof ConsentRequiredError ? "consent_required" : "error";
      const unavailable = error instanceof JsonRpcError &&
        (error.code === JSONRPC.backendUnavailable || error.code === JSONRPC.backendTimeout);
      if (unavailable) {
        this.#deps.events?.add("error", {
          user: this.#session.caller.id,
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

  async #callBackendUnmetered(
    backend: BackendSettings,
    method: string,
    params: Params | undefined,
    context: ServerContext,
  ): Promise<Result> {
    if (this.#session.era === "modern" && INPUT_REQUIRED_METHODS.has(method)) {
      const state = context.mcpReq.requestState<unknown>();
      if (typeof state === "string" && state.startsWith(PARKED_STATE_PREFIX)) {
        return await this.#resumeParked(state, context);
      }
      const upstream = await this.#deps.pool.upstream(
        backend.name,
        this.#session.caller,
        this.#session.owner,
      );
      return upstream.modern
        ? await this.#relay(upstream, method, this.#forModern(params, context), context)
        : await this.#callParked(upstream, method, params, context);
    }
    const upstream = await this.#deps.pool.upstream(backend.name, this.#session.caller, this.#session.owner);
    const forwarded = upstream.modern ? this.#forModern(params, context) : params;
    let result = await this.#relay(upstream, method, forwarded, context);
    // A 2025-era client cannot take input_required: ask it for each input the backend wants, then retry.
    for (let round = 0; result.resultType === "input_required" && round < MAX_INPUT_ROUNDS; round++) {
      const origin = originOf(this.#session, context);
      const inputResponses: Record<string, unknown> = {};
      for (const [key, ask] of Object.entries((result.inputRequests ?? {}) as Record<string, Params>)) {
        inputResponses[key] = await origin.request(
          { method: String(ask.method), params: ask.params as Params | undefined },
          context.mcpReq.signal,
        );
      }
      const retry = { ...forwarded, inputResponses, requestState: result.requestState };
      result = await this.#relay(upstream, method, retry, context);
    }
    if (result.resultType === "input_required") {
      throw new JsonRpcError(JSONRPC.internalError, `Backend "${backend.name}" kept asking for input`);
    }
    return result;
  }

  /** Sends one request to a backend on behalf of this request, relaying its progress. */
  async #relay(upstream: Upstream, method: string, params: Params | undefined, context: ServerContext) {
    const progress = progressRelay(context);
    const result = await upstream.request(method, params, originOf(this.#session, context), {
      signal: AbortSignal.any([context.mcpReq.signal, this.#session.closed.signal]),
      onprogress: progress?.relay,
    });
    // Progress sent before the result must reach the client before it.
    await progress?.flush();
    return result;
  }

  /**
   * What a 2026-07-28 backend needs beside the params: the client's own capabilities and log level
   * (so it asks only for input the client can give), and its echo of input responses and state.
   */
  #forModern(params: Params | undefined, context: ServerContext): Params {
    const envelope = (context.mcpReq.envelope ?? {}) as Record<string, unknown>;
    const legacyClient = this.#session.server?.getClientCapabilities();
    // Per-request opt-ins (such as the tasks extension's) travel in the envelope too; the gateway's own
    // client states the protocol version and client info.
    const { [PROTOCOL_VERSION_KEY]: _version, [CLIENT_INFO_KEY]: _info, ...forwardedEnvelope } = envelope;
    const meta: Params = { ...forwardedEnvelope, ...(params?._meta as Params | undefined) };
    // Extensions the gateway cannot relay (tasks: the SDK client rejects task results) are not offered on.
    const { extensions: _extensions, ...capabilities } =
      (envelope[CLIENT_CAPABILITIES_KEY] ?? legacyClient ?? {}) as Record<string, unknown>;
    meta[CLIENT_CAPABILITIES_KEY] = capabilities;
    // A 2025-era client that never set a level hears every level, as a 2025-era backend would send them.
    const logLevel = envelope[LOG_LEVEL_KEY] ?? this.#session.logLevel ??
      (this.#session.era === "legacy" ? "debug" : undefined);
    if (logLevel !== undefined) meta[LOG_LEVEL_KEY] = logLevel;
    const state = context.mcpReq.requestState<unknown>();
    return {
      ...params,
      _meta: meta,
      ...(context.mcpReq.inputResponses ? { inputResponses: context.mcpReq.inputResponses } : {}),
      ...(typeof state === "string" && state !== RETRY_STATE ? { requestState: state } : {}),
    };
  }

  /**
   * A 2026-07-28 client and a 2025-era backend: the backend's question becomes `input_required`, and the
   * call waits, parked, for the client's retry with the answer.
   */
  async #callParked(
    upstream: Upstream,
    method: string,
    params: Params | undefined,
    context: ServerContext,
  ): Promise<Result> {
    const caller = this.#session.caller;
    const call = new ParkedCall(caller.id);
    const origin: CallOrigin = {
      sessionId: this.#session.id,
      userId: caller.id,
      request: (ask) => call.ask(ask),
      notify: (notification) => relayModernNotification(notification, context),
    };
    const sessionId = this.#session.id;
    const progress = progressRelay(context);
    const running = upstream.request(method, params, origin, {
      signal: call.controller.signal,
      onprogress: progress?.relay,
    });
    this.#progressFlush = progress?.flush;
    // A connection of this request's own (isolation: session) lives as long as the call.
    this.#session.keepConnections = true;
    running.finally(() => this.#deps.pool.releaseSession(sessionId)).catch(() => {});
    call.run(running);
    return await this.#nextOutcome(call, context);
  }

  /** The client's retry with answers: hand them to the parked call and wait for what comes next. */
  async #resumeParked(state: string, context: ServerContext): Promise<Result> {
    const parked = this.#deps.parked.take(state, this.#session.caller.id);
    if (!parked) throw new JsonRpcError(JSONRPC.invalidParams, "Invalid or expired requestState");
    parked.answer(context.mcpReq.inputResponses?.[ASK_KEY]);
    return await this.#nextOutcome(parked, context);
  }

  async #nextOutcome(parked: ParkedCall, context: ServerContext): Promise<Result> {
    const outcome = await parked.next(context.mcpReq.signal);
    // Progress sent before the outcome must reach the client before it.
    await this.#progressFlush?.();
    if (outcome.kind === "result") return outcome.result;
    if (outcome.kind === "ask") {
      const missing = missingCapability(outcome.ask.method, context);
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
        requestState: this.#deps.parked.park(parked),
      };
    }
    const error = outcome.error;
    if (error instanceof JsonRpcError && error.code === JSONRPC.urlElicitationRequired) {
      return urlElicitationAsInputRequired(error);
    }
    throw error;
  }

  /** Collects every page of a list from one backend. */
  async #listAll(
    backend: BackendSettings,
    method: string,
    key: string,
    context: ServerContext,
  ): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 100; page++) {
      let result: Result;
      try {
        result = await this.#callBackend(backend, method, cursor ? { cursor } : undefined, context);
      } catch (error) {
        if (!(error instanceof ConsentRequiredError)) throw error;
        // A user who has not connected the backend's service yet sees what it offers (as it was last
        // listed for someone who had), so that calling it brings them the consent link. When no one has,
        // `/mcp` offers one tool that brings the link; the backend's own endpoint answers with the link.
        const cached = await this.#deps.lists.get(backend, method);
        if (cached) return cached;
        if (this.#single) throw error;
        return method === "tools/list" ? [connectTool(backend, error.service)] : [];
      }
      items.push(...((result[key] as Record<string, unknown>[] | undefined) ?? []));
      cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
      if (!cursor) break;
    }
    if (backend.services.length > 0) await this.#deps.lists.set(backend, method, items);
    if (method === "tools/list") {
      this.#deps.toolReadOnly.set(
        backend.name,
        new Map(items.map((tool) => [String(tool.name), isReadOnly(tool)])),
      );
    }
    this.#session.lastLists.set(`${backend.name}\n${method}`, items);
    return items;
  }

  /** Runs `work` for every backend offering `capability`, leaving out those that fail. */
  async #fanOut<T>(
    capability: keyof ServerCapabilities,
    work: (backend: BackendSettings) => Promise<T>,
  ): Promise<{ backend: BackendSettings; value: T }[]> {
    const results = await Promise.all(this.#backends.map(async (backend) => {
      const capabilities = this.#deps.pool.capabilities(backend.name);
      if (capabilities && !capabilities[capability]) return undefined;
      try {
        return { backend, value: await work(backend) };
      } catch (error) {
        // On a backend's own endpoint there is nothing else to list: the answer is the consent link.
        if (error instanceof ConsentRequiredError && this.#single) throw error;
        this.#deps.log.warn("backend left out of a list", { backend: backend.name, error });
        return undefined;
      }
    }));
    return results.filter((result) => result !== undefined);
  }

  async handle(request: JSONRPCRequest, context: ServerContext): Promise<Result> {
    if (this.#session.era === "legacy") return await this.#handleOrConsent(request, context);
    try {
      return await this.#handleOrConsent(request, context);
    } finally {
      // A 2026-07-28 request is its own session: connections it owned end with it, unless a call is parked.
      if (!this.#session.keepConnections) this.#deps.pool.releaseSession(this.#session.id);
    }
  }

  /** A list on a backend's own endpoint, before its service is connected, answers with the link. */
  async #handleOrConsent(request: JSONRPCRequest, context: ServerContext): Promise<Result> {
    try {
      return await this.#handle(request, context);
    } catch (error) {
      if (error instanceof ConsentRequiredError) return this.#consentAnswer(request.method, error, context);
      throw error;
    }
  }

  async #handle(request: JSONRPCRequest, context: ServerContext): Promise<Result> {
    const params = request.params as Params | undefined;
    const method = request.method;
    // Spec §4 of the product: every method has one route and guard; one not in the table is refused.
    const route = routeOf(method);
    if (!route) throw new JsonRpcError(JSONRPC.methodNotFound, `Method not found: ${method}`);
    switch (route.route) {
      case "fan-out":
        if (method === "tools/list") return await this.#listTools(context);
        if (method === "prompts/list") return await this.#listPrompts(context);
        if (method === "resources/list") return await this.#listResources(context);
        if (method === "resources/templates/list") return await this.#listTemplates(context);
        return await this.#listTasks(params, context);
      case "by-name":
        if (method === "tools/call") return await this.#callTool(params, context);
        return await this.#getPrompt(params, context);
      case "by-uri":
        return await this.#resource(method, params, context);
      case "by-ref":
        return await this.#complete(params, context);
      case "by-task":
        return await this.#taskCall(method, params, context);
      case "gateway-local":
        return await this.#setLevel(params, context);
    }
  }

  async #getPrompt(params: Params | undefined, context: ServerContext): Promise<Result> {
    const { backend, name } = await this.#resolveName("prompts", String(params?.name ?? ""), context);
    this.#guard(backend, "prompts/get", { kind: "prompt", name });
    return await this.#call(backend, "prompts/get", { ...params, name }, context);
  }

  /**
   * resources/read, subscribe and unsubscribe: the URI is canonicalised once, and that form is routed,
   * checked against the policies and sent to the backend (so no other spelling can slip past a rule).
   */
  async #resource(method: string, params: Params | undefined, context: ServerContext): Promise<Result> {
    const uri = canonicalResourceUri(params?.uri);
    const forwarded = { ...params, uri };
    const backend = await this.#resourceBackend(uri, context);
    if (method !== "resources/unsubscribe") this.#guard(backend, method, { kind: "resource", uri });
    if (method === "resources/read") return await this.#call(backend, method, forwarded, context);
    const subscribe = method === "resources/subscribe";
    if (subscribe) this.#session.subscriptions.set(uri, backend.name);
    else this.#session.subscriptions.delete(uri);
    const upstream = await this.#deps.pool.upstream(backend.name, this.#session.caller, this.#session.owner);
    if (!upstream.modern) return await this.#call(backend, method, forwarded, context);
    await upstream.subscribe(uri, subscribe);
    return {};
  }

  async #setLevel(params: Params | undefined, context: ServerContext): Promise<Result> {
    // 2026-07-28 backends have no setLevel: they get the level with each request instead.
    this.#session.logLevel = typeof params?.level === "string" ? params.level : undefined;
    await this.#fanOut("logging", async (backend) => {
      const upstream = await this.#deps.pool.upstream(
        backend.name,
        this.#session.caller,
        this.#session.owner,
      );
      if (!upstream.modern) await this.#call(backend, "logging/setLevel", params, context);
    });
    return {};
  }

  /**
   * tasks/get, result, cancel, update: only for the caller's own tasks, sent to the backend that created
   * them; another user's (or client's) task is "not found". Relayed with the generic request path, whose
   * result schema accepts task results.
   */
  async #taskCall(method: string, params: Params | undefined, context: ServerContext): Promise<Result> {
    const name = taskOwnersOf(this.#deps.pool).backendOf(this.#session.caller, params?.taskId);
    const backend = this.#backends.find((candidate) => candidate.name === name);
    if (!backend) throw new JsonRpcError(JSONRPC.invalidParams, `Task not found: ${String(params?.taskId)}`);
    if (!this.#single) {
      const refused = admitRequests(this.#deps, this.#session.caller, {
        kind: "routed",
        backend: backend.name,
      });
      if (refused) throw refused;
    }
    return await this.#call(backend, method, params, context);
  }

  /** tasks/list (2025-11-25): every backend's list, keeping only the caller's own tasks; one page. */
  async #listTasks(_params: Params | undefined, context: ServerContext): Promise<Result> {
    const owners = taskOwnersOf(this.#deps.pool);
    const caller = this.#session.caller;
    const lists = await this.#fanOut("tasks", async (backend) => {
      const tasks = (this.#deps.pool.capabilities(backend.name)?.tasks ?? {}) as { list?: unknown };
      if (tasks.list === undefined) return [];
      // Not through #listAll: a task list is nobody's to cache or share.
      const items: Record<string, unknown>[] = [];
      let cursor: string | undefined;
      for (let page = 0; page < 100; page++) {
        const result = await this.#callBackend(
          backend,
          "tasks/list",
          cursor ? { cursor } : undefined,
          context,
        );
        items.push(...((result.tasks as Record<string, unknown>[] | undefined) ?? []));
        cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
        if (!cursor) break;
      }
      return items;
    });
    const tasks = lists.flatMap(({ backend, value }) =>
      value.filter((task) => owners.owns(caller, backend.name, task.taskId))
    );
    return { tasks };
  }

  async notify(notification: Notification): Promise<void> {
    // Roots belong to one client: only connections owned by this session hear that they changed.
    if (notification.method !== "notifications/roots/list_changed") return;
    for (const backend of this.#backends) {
      if (backend.transport.kind !== "stdio" || backend.isolation !== "session") continue;
      try {
        if (!this.#session.owner) continue;
        const upstream = await this.#deps.pool.upstream(
          backend.name,
          this.#session.caller,
          this.#session.owner,
        );
        await upstream.notify(notification);
      } catch {
        // The backend is down; it will ask for roots again when it is back.
      }
    }
  }

  async #listTools(context: ServerContext): Promise<Result> {
    const lists = await this.#fanOut(
      "tools",
      (backend) => this.#listAll(backend, "tools/list", "tools", context),
    );
    const single = this.#single;
    const names = new NameTable();
    const tools = lists.flatMap(({ backend, value }) =>
      value
        .filter((tool) =>
          backend.services.some((service) => connectToolName(service) === tool.name) ||
          (toolAllowed(backend, String(tool.name)) && this.#visible(backend, "tools", tool))
        )
        .map((tool) =>
          single ? tool : { ...tool, name: names.add(backend.prefix, backend.name, String(tool.name)) }
        )
    );
    if (!single) {
      this.#session.tools = names;
      for (const [from, to] of names.shortened) this.#deps.shortened.set(from, to);
    }
    const schemas = new Map<string, Record<string, unknown>>();
    for (const tool of tools) {
      if (tool.inputSchema && typeof tool.inputSchema === "object") {
        schemas.set(String(tool.name), tool.inputSchema as Record<string, unknown>);
      }
    }
    this.#deps.toolSchemas.set(scopeKey(this.#session.scope), schemas);
    return { tools };
  }

  /**
   * The backend and original name behind an aggregate tool or prompt name: from the session's last
   * list, else by its prefix, else by listing again (a shortened name can only be found that way).
   */
  async #resolveName(
    kind: "tools" | "prompts",
    exposed: string,
    context: ServerContext,
  ): Promise<{ backend: BackendSettings; name: string }> {
    const single = this.#single;
    if (single) return { backend: single, name: exposed };
    const table = () => kind === "tools" ? this.#session.tools : this.#session.prompts;
    let found = table().resolve(exposed);
    if (!found) {
      const split = splitPrefixed(exposed);
      const backend = split && this.#backends.find((candidate) => candidate.prefix === split.prefix);
      if (backend && split) found = { backend: backend.name, name: split.name };
    }
    if (!found) {
      await (kind === "tools" ? this.#listTools(context) : this.#listPrompts(context));
      found = table().resolve(exposed);
    }
    if (!found) {
      throw new JsonRpcError(
        JSONRPC.invalidParams,
        `Unknown ${kind === "tools" ? "tool" : "prompt"}: ${exposed}`,
      );
    }
    return { backend: this.#backend(found.backend), name: found.name };
  }

  async #callTool(params: Params | undefined, context: ServerContext): Promise<Result> {
    const exposed = String(params?.name ?? "");
    const { backend, name } = await this.#resolveName("tools", exposed, context);
    const service = backend.services.find((candidate) => connectToolName(candidate) === name);
    if (service !== undefined) return await this.#connectCall(backend, service, context);
    if (!toolAllowed(backend, name)) {
      throw new JsonRpcError(JSONRPC.invalidParams, `Unknown tool: ${exposed}`);
    }
    const readOnly = await this.#readOnly(backend, name, context);
    this.#guard(backend, "tools/call", { kind: "tool", name, readOnly });
    return await this.#call(backend, "tools/call", { ...params, name }, context);
  }

  /** The tool listed in place of a backend awaiting consent: the link, or word that it is connected. */
  async #connectCall(backend: BackendSettings, service: string, context: ServerContext): Promise<Result> {
    try {
      await this.#deps.pool.upstream(backend.name, this.#session.caller, this.#session.owner);
    } catch (error) {
      if (error instanceof ConsentRequiredError) return this.#consentAnswer("tools/call", error, context);
      throw error;
    }
    return {
      content: [{
        type: "text",
        text: `Your ${service} account is connected: list the tools again to see those of "${backend.name}".`,
      }],
    };
  }

  async #listPrompts(context: ServerContext): Promise<Result> {
    const lists = await this.#fanOut(
      "prompts",
      (backend) => this.#listAll(backend, "prompts/list", "prompts", context),
    );
    const single = this.#single;
    const names = new NameTable();
    const prompts = lists.flatMap(({ backend, value }) =>
      value.filter((prompt) => this.#visible(backend, "prompts", prompt)).map((prompt) =>
        single ? prompt : { ...prompt, name: names.add(backend.prefix, backend.name, String(prompt.name)) }
      )
    );
    if (!single) this.#session.prompts = names;
    return { prompts };
  }

  async #listResources(context: ServerContext): Promise<Result> {
    const lists = await this.#fanOut(
      "resources",
      (backend) => this.#listAll(backend, "resources/list", "resources", context),
    );
    const resources: Record<string, unknown>[] = [];
    for (const { backend, value } of lists) {
      for (const resource of value) {
        const uri = canonicalListedUri(String(resource.uri));
        const owner = this.#session.resourceOwners.get(uri);
        if (owner && owner !== backend.name) {
          this.#deps.log.warn("resource URI listed by two backends; the first keeps it", {
            uri,
            kept: owner,
            dropped: backend.name,
          });
          continue;
        }
        // Routed even when hidden: reading it is then refused (and audited) rather than "not found".
        this.#session.resourceOwners.set(uri, backend.name);
        if (this.#visible(backend, "resources", resource)) resources.push(resource);
      }
    }
    return { resources };
  }

  async #listTemplates(context: ServerContext): Promise<Result> {
    const lists = await this.#fanOut(
      "resources",
      (backend) => this.#listAll(backend, "resources/templates/list", "resourceTemplates", context),
    );
    const owners: FrontSession["templateOwners"] = [];
    // Every template routes (a read under a hidden one is refused, not "not found"); visible ones are listed.
    const resourceTemplates = lists.flatMap(({ backend, value }) =>
      value.filter((template) => {
        const uriTemplate = String(template.uriTemplate);
        owners.push({ pattern: templateMatcher(uriTemplate), template: uriTemplate, backend: backend.name });
        return this.#visible(backend, "resourceTemplates", template);
      })
    );
    this.#session.templateOwners = owners;
    return { resourceTemplates };
  }

  #ownerOf(uri: string): string | undefined {
    return this.#session.resourceOwners.get(uri) ??
      this.#session.templateOwners.find((owner) => owner.pattern.test(uri))?.backend;
  }

  async #resourceBackend(uri: string, context: ServerContext): Promise<BackendSettings> {
    const single = this.#single;
    if (single) return single;
    let owner = this.#ownerOf(uri);
    if (!owner) {
      await this.#listResources(context);
      await this.#listTemplates(context);
      owner = this.#ownerOf(uri);
    }
    if (!owner) throw new JsonRpcError(JSONRPC.invalidParams, `Resource not found: ${uri}`, { uri });
    return this.#backend(owner);
  }

  async #complete(params: Params | undefined, context: ServerContext): Promise<Result> {
    const ref = params?.ref as { type?: string; name?: string; uri?: string } | undefined;
    if (ref?.type === "ref/prompt") {
      const { backend, name } = await this.#resolveName("prompts", String(ref.name ?? ""), context);
      this.#guard(backend, "completion/complete", { kind: "prompt", name });
      return await this.#call(backend, "completion/complete", { ...params, ref: { ...ref, name } }, context);
    }
    if (ref?.type === "ref/resource") {
      const uri = String(ref.uri ?? "");
      const single = this.#single;
      let backendName = single?.name ??
        this.#session.templateOwners.find((owner) => owner.template === uri)?.backend ??
        this.#ownerOf(uri);
      if (!backendName) {
        await this.#listTemplates(context);
        backendName = this.#session.templateOwners.find((owner) => owner.template === uri)?.backend;
      }
      if (!backendName) throw new JsonRpcError(JSONRPC.invalidParams, `Unknown resource template: ${uri}`);
      const backend = this.#backend(backendName);
      this.#guard(backend, "completion/complete", { kind: "resource", uri });
      return await this.#call(backend, "completion/complete", params, context);
    }
    throw new JsonRpcError(
      JSONRPC.invalidParams,
      "completion/complete needs a ref of type ref/prompt or ref/resource",
    );
  }
}

export type { Upstream };
