/**
 * The MCP endpoints' HTTP front: routes each request to its era's SDK handler (sessionful for 2025-era
 * clients, stateless for 2026-07-28), bounds sessions per user, and fans backend notifications out.
 */
import {
  type ClientCapabilities,
  createMcpHandler,
  isLegacyRequest,
  type JSONRPCRequest,
  type McpHttpHandler,
  type ServerCapabilities,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";
import type { AuditLog } from "../audit/audit.ts";
import { RateLimiter } from "../policy/limits.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { RecentEvents } from "../status/events.ts";
import { type Policy, policyOf } from "../policy/policy.ts";
import type { Caller } from "./caller.ts";
import { SessionEventStore } from "./event_store.ts";
import { ListCache } from "./list_cache.ts";
import { ParkedCalls } from "./parked.ts";
import type { BackendPool } from "./pool.ts";
import {
  admitRequests,
  createProxyServer,
  FrontSession,
  listedObject,
  type ListKind,
  mergeTasks,
  type ProxyDependencies,
  ProxyMcpServer,
  type ProxyScope,
  scopeBackends,
  scopeKey,
} from "./proxy.ts";
import { ANY_RESULT } from "./upstream.ts";

/** Request methods of every protocol revision; a 2026-07-28 request for anything else is answered 404. */
const SPEC_METHODS = new Set([
  "initialize",
  "ping",
  "server/discover",
  "subscriptions/listen",
  "tools/list",
  "tools/call",
  "prompts/list",
  "prompts/get",
  "resources/list",
  "resources/templates/list",
  "resources/read",
  "resources/subscribe",
  "resources/unsubscribe",
  "completion/complete",
  "logging/setLevel",
  "tasks/get",
  "tasks/update",
  "tasks/cancel",
  "tasks/result",
  "tasks/list",
]);

/** The capabilities a 2026-07-28 request declares in its `_meta` envelope. */
function envelopeCapabilities(body: unknown): ClientCapabilities | undefined {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | undefined)?.params?._meta;
  const capabilities = meta?.["io.modelcontextprotocol/clientCapabilities"];
  return capabilities && typeof capabilities === "object" ? capabilities as ClientCapabilities : undefined;
}

/**
 * What a backend never connected yet is taken to offer: more than it may, never less (the front could not
 * relay a notification of a capability it did not announce); lists leave it out of what it lacks.
 */
const ASSUMED_CAPABILITIES: ServerCapabilities = {
  tools: {},
  prompts: {},
  resources: { subscribe: true },
  logging: {},
  completions: {},
};

/**
 * The capabilities a session announces, without waiting on any backend (a handshake that hangs must not
 * delay `initialize`): the union of what each of the session's backends announced when last connected,
 * or ASSUMED_CAPABILITIES for one never connected, whose connection starts meanwhile so later sessions
 * know.
 */
function announcedCapabilities(deps: ProxyDependencies, session: FrontSession): ServerCapabilities {
  const union: ServerCapabilities = {};
  for (const backend of scopeBackends(deps.registry(), session.scope, session.caller)) {
    let capabilities = deps.pool.capabilities(backend.name);
    if (!capabilities) {
      capabilities = ASSUMED_CAPABILITIES;
      // A session's own process starts with its first call: started here, it could outlive the session.
      if (backend.transport.kind !== "stdio" || backend.isolation !== "session") {
        deps.pool.upstream(backend.name, session.caller).catch((error) =>
          deps.log.debug("backend not connected ahead of its first call", { backend: backend.name, error })
        );
      }
    }
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
    if (capabilities.tasks) union.tasks = mergeTasks(union.tasks, capabilities.tasks);
    // Extensions (SEP-2663 tasks, skills) are not announced: their results cannot be relayed yet.
  }
  return union;
}

/** A legacy session with no request for this long is closed. */
const SESSION_IDLE_MS = 60 * 60 * 1000;

interface LegacySession {
  readonly session: FrontSession;
  readonly transport: WebStandardStreamableHTTPServerTransport;
  lastSeenAt: number;
}

export interface FrontOptions {
  registry: () => Registry;
  pool: BackendPool;
  log: Logger;
  maxBodyBytes: () => number;
  /** Where the lists of backends awaiting consent are kept across restarts (in memory when absent). */
  store?: Store;
  /** Where policy denials and rate-limit refusals are recorded. */
  audit?: AuditLog;
  metrics?: Metrics;
  events?: RecentEvents;
}

/** Session counts by protocol era, for the status page. */
export interface FrontStats {
  readonly legacySessions: number;
  readonly modernRequests: number;
}

function jsonRpcError(status: number, code: number, message: string): Response {
  return Response.json({ jsonrpc: "2.0", id: null, error: { code, message } }, { status });
}

/** Sends a notification if the session's announced capabilities allow it; a closed stream is no error. */
function notifySession(
  session: FrontSession,
  notification: { method: string; params?: Record<string, unknown> },
) {
  try {
    session.server?.notification(notification).catch(() => {});
  } catch {
    // The session did not announce the capability this notification belongs to.
  }
}

/**
 * The MCP endpoints: 2025-era clients get sessionful Streamable HTTP (Mcp-Session-Id, GET stream,
 * DELETE, resumable SSE); 2026-07-28 clients are served statelessly. Both reach the same proxy.
 */
export class McpFront {
  readonly #options: FrontOptions;
  readonly #sessions = new Map<string, LegacySession>();
  readonly #deps: ProxyDependencies;
  readonly #modern: McpHttpHandler;
  readonly #sweep: ReturnType<typeof setInterval>;
  #modernRequests = 0;

  constructor(options: FrontOptions) {
    this.#options = options;
    this.#deps = {
      registry: options.registry,
      pool: options.pool,
      log: options.log,
      parked: new ParkedCalls(),
      toolSchemas: new Map(),
      lists: new ListCache(options.store),
      audit: options.audit,
      limiter: new RateLimiter(),
      toolReadOnly: new Map(),
      metrics: options.metrics,
      events: options.events,
      shortened: new Map(),
    };
    const deps = this.#deps;
    this.#modern = createMcpHandler((context) => {
      const extra = context.authInfo?.extra as
        | { caller: Caller; scope: ProxyScope; clientCapabilities?: ClientCapabilities }
        | undefined;
      if (!extra) throw new Error("Cannot serve a request without a caller");
      const session = new FrontSession(crypto.randomUUID(), extra.caller, extra.scope, "modern");
      // A 2026-07-28 request is a session of its own: backends isolated per session get a connection for
      // it (and for a call it parks), which cannot be sent requests outside a call.
      session.owner = {
        sessionId: session.id,
        userId: extra.caller.id,
        request: () =>
          Promise.reject(new Error("A 2026-07-28 client cannot be sent requests outside a call")),
        notify: () => Promise.resolve(),
        clientCapabilities: extra.clientCapabilities,
      };
      const schemas = () => this.#deps.toolSchemas.get(scopeKey(extra.scope));
      return new ProxyMcpServer(
        deps,
        session,
        announcedCapabilities(deps, session),
        (tool) => schemas()?.get(tool),
      );
    }, {
      legacy: "reject",
      onerror: (error) => options.log.debug("modern MCP request rejected", { error }),
    });
    options.pool.onBroadcast((backend, key, notification) => this.#broadcast(backend, key, notification));
    this.#sweep = setInterval(() => this.#closeIdleSessions(), 60_000);
    Deno.unrefTimer(Number(this.#sweep));
  }

  /** How many tools each backend listed last (for the status page). */
  toolCounts(): Map<string, number> {
    return new Map([...this.#deps.toolReadOnly].map(([backend, tools]) => [backend, tools.size]));
  }

  /** Aggregate names that had to be shortened: `{prefix}__{name}` to what clients see. */
  shortenedNames(): Map<string, string> {
    return new Map(this.#deps.shortened);
  }

  stats(): FrontStats {
    return { legacySessions: this.#sessions.size, modernRequests: this.#modernRequests };
  }

  /** Serves one HTTP request to `/mcp` or `/mcp/{backend}` for an authenticated caller. */
  async handle(request: Request, scope: ProxyScope, caller: Caller): Promise<Response> {
    let parsedBody: unknown;
    if (request.method === "POST") {
      const contentType = request.headers.get("content-type") ?? "";
      if (!contentType.toLowerCase().startsWith("application/json")) {
        return jsonRpcError(415, -32700, "Unsupported Media Type: Content-Type must be application/json");
      }
      const text = await request.text();
      if (text.length > this.#options.maxBodyBytes()) {
        return jsonRpcError(413, -32600, "Request body too large");
      }
      try {
        parsedBody = JSON.parse(text);
      } catch {
        return jsonRpcError(400, -32700, "Parse error: the body is not valid JSON");
      }
      request = new Request(request.url, { method: "POST", headers: request.headers, body: text });
    }

    const limited = this.#rateLimit(parsedBody, scope, caller);
    if (limited) return limited;

    if (!(await isLegacyRequest(request, parsedBody))) {
      const method = (parsedBody as { id?: unknown; method?: unknown } | undefined)?.method;
      if (typeof method === "string" && "id" in (parsedBody as object) && !SPEC_METHODS.has(method)) {
        // 2026-07-28: an unknown method is a 404 (stateless servers route by method).
        return Response.json({
          jsonrpc: "2.0",
          id: (parsedBody as { id: unknown }).id,
          error: { code: -32601, message: `Method not found: ${method}` },
        }, { status: 404 });
      }
      this.#modernRequests += 1;
      return await this.#modern.fetch(request, {
        parsedBody,
        authInfo: {
          token: "",
          clientId: caller.clientId ?? "",
          scopes: [],
          extra: { caller, scope, clientCapabilities: envelopeCapabilities(parsedBody) },
        },
      });
    }

    const sessionId = request.headers.get("mcp-session-id");
    if (sessionId) {
      const entry = this.#sessions.get(sessionId);
      // Another user's or another endpoint's session id is as unknown as a made-up one.
      if (
        !entry || entry.session.caller.id !== caller.id || scopeKey(entry.session.scope) !== scopeKey(scope)
      ) {
        return jsonRpcError(404, -32001, "Session not found");
      }
      entry.lastSeenAt = Date.now();
      return await entry.transport.handleRequest(request, { parsedBody });
    }
    const isInitialize = request.method === "POST" && !Array.isArray(parsedBody) &&
      (parsedBody as { method?: unknown } | undefined)?.method === "initialize";
    if (!isInitialize) return jsonRpcError(400, -32000, "Bad Request: Mcp-Session-Id header is required");
    return await this.#openSession(request, parsedBody, scope, caller);
  }

  /**
   * Counts the body's JSON-RPC requests against the caller's rate limits (and, on `/mcp/{backend}`, the
   * backend's); over a limit, the whole POST is answered 429 with Retry-After.
   */
  #rateLimit(parsedBody: unknown, scope: ProxyScope, caller: Caller): Response | undefined {
    const messages = Array.isArray(parsedBody) ? parsedBody : [parsedBody];
    const requests = messages.filter((message) =>
      message !== null && typeof message === "object" && "method" in message && "id" in message
    ) as { id: unknown; method: unknown }[];
    if (requests.length === 0) return undefined;
    const backend = scope.kind === "backend" ? scope.name : undefined;
    const refused = admitRequests(this.#deps, caller, { kind: "endpoint", backend }, requests.length);
    if (!refused) return undefined;
    this.#options.log.info("request over a rate limit", { user: caller.id, backend });
    const { retryAfter } = refused.data as { retryAfter: number };
    const error = { code: refused.code, message: refused.message, data: refused.data };
    const answers = requests.map((request) => ({ jsonrpc: "2.0", id: request.id, error }));
    return Response.json(Array.isArray(parsedBody) ? answers : answers[0], {
      status: 429,
      headers: { "retry-after": String(retryAfter) },
    });
  }

  async #openSession(
    request: Request,
    parsedBody: unknown,
    scope: ProxyScope,
    caller: Caller,
  ): Promise<Response> {
    const { log } = this.#options;
    const id = crypto.randomUUID();
    const session = new FrontSession(id, caller, scope, "legacy");
    const transport = new WebStandardStreamableHTTPServerTransport({
      sessionIdGenerator: () => id,
      eventStore: new SessionEventStore(),
      maxRequestBodySize: this.#options.maxBodyBytes(),
      onsessionclosed: (closedId) => this.#forget(closedId),
    });
    session.owner = {
      sessionId: id,
      userId: caller.id,
      request: (outgoing, signal) => {
        if (!session.server) return Promise.reject(new Error("Session is closed"));
        return session.server.request(outgoing as JSONRPCRequest, ANY_RESULT, { signal });
      },
      notify: async (notification) => await session.server?.notification(notification),
      clientCapabilities: (parsedBody as { params?: { capabilities?: ClientCapabilities } }).params
        ?.capabilities,
    };
    const deps = this.#deps;
    const server = createProxyServer(deps, session, announcedCapabilities(deps, session));
    server.onclose = () => this.#forget(id);
    await server.connect(transport);
    this.#sessions.set(id, { session, transport, lastSeenAt: Date.now() });
    const response = await transport.handleRequest(request, { parsedBody });
    if (!response.ok) {
      await this.#closeSession(id);
      return response;
    }
    log.info("MCP session opened", {
      session_era: "legacy",
      scope: scopeKey(scope) || "/mcp",
      user: caller.name,
    });
    this.#closeSessionsOverCap(caller, id);
    return response;
  }

  /**
   * Closes the user's least recently used 2025-era sessions beyond `gateway.max_sessions_per_user` (never
   * `opened`, the one that just came): sessions clients forgot must not pile up. Their ids answer 404.
   */
  #closeSessionsOverCap(caller: Caller, opened: string): void {
    const max = this.#options.registry().gateway.maxSessionsPerUser;
    const mine = [...this.#sessions].filter(([, entry]) => entry.session.caller.id === caller.id);
    if (mine.length <= max) return;
    // A stable sort: sessions last seen in the same millisecond leave in the order they were opened.
    const oldest = mine.filter(([id]) => id !== opened)
      .sort(([, a], [, b]) => a.lastSeenAt - b.lastSeenAt)
      .slice(0, mine.length - max);
    for (const [id] of oldest) {
      this.#options.log.info("MCP session closed: over max_sessions_per_user", { user: caller.name, max });
      void this.#closeSession(id);
    }
  }

  #forget(id: string): void {
    const entry = this.#sessions.get(id);
    if (!entry) return;
    this.#sessions.delete(id);
    entry.session.closed.abort();
    this.#options.pool.releaseSession(id);
  }

  async #closeSession(id: string): Promise<void> {
    const entry = this.#sessions.get(id);
    this.#forget(id);
    await entry?.transport.close().catch(() => {});
  }

  #closeIdleSessions(): void {
    const now = Date.now();
    for (const [id, entry] of this.#sessions) {
      if (now - entry.lastSeenAt > SESSION_IDLE_MS) void this.#closeSession(id);
    }
  }

  /**
   * Tells sessions that can see `backend` what changed there; what a user's or a session's own connection
   * says reaches only that user or session.
   */
  #broadcast(
    backend: string,
    connectionKey: string,
    notification: { method: string; params?: Record<string, unknown> },
  ): void {
    const registry = this.#options.registry();
    const [kind, owner] = connectionKey.split(/:(.*)/s);
    for (const { session } of this.#sessions.values()) {
      if (kind === "user" && session.caller.id !== owner) continue;
      if (kind === "session" && session.id !== owner) continue;
      if (
        !scopeBackends(registry, session.scope, session.caller).some((candidate) =>
          candidate.name === backend
        )
      ) {
        continue;
      }
      if (notification.method === "notifications/resources/updated") {
        const uri = String(notification.params?.uri ?? "");
        if (session.subscriptions.get(uri) !== backend) continue;
      }
      notifySession(session, notification);
    }
    // 2026-07-28 listen streams have no owner the gateway could filter on: only shared connections feed them.
    if (kind !== "shared") return;
    if (notification.method === "notifications/tools/list_changed") this.#modern.notify.toolsChanged();
    if (notification.method === "notifications/prompts/list_changed") this.#modern.notify.promptsChanged();
    if (notification.method === "notifications/resources/list_changed") {
      this.#modern.notify.resourcesChanged();
    }
    if (notification.method === "notifications/resources/updated") {
      this.#modern.notify.resourceUpdated(String(notification.params?.uri ?? ""));
    }
  }

  /**
   * A user connected a service: their 2025-11-25 sessions that were sent that URL elicitation hear it is
   * complete, and can retry; all their sessions hear that the tool list may have changed.
   */
  consentCompleted(userId: string, elicitationId: string | undefined): void {
    for (const { session } of this.#sessions.values()) {
      if (session.caller.id !== userId) continue;
      if (elicitationId !== undefined && session.awaitingConsent.delete(elicitationId)) {
        notifySession(session, { method: "notifications/elicitation/complete", params: { elicitationId } });
      }
      // What the user's sessions list may change now that the backend answers for them.
      notifySession(session, { method: "notifications/tools/list_changed" });
    }
    this.#modern.notify.toolsChanged();
  }

  /**
   * After a reload that changed the policies: each session whose user now sees something else (another
   * set of backends, or other items of what it last listed) hears that its lists changed.
   */
  policiesChanged(previous: Registry, next: Registry): void {
    const before = policyOf(previous);
    const after = policyOf(next);
    let any = false;
    for (const { session } of this.#sessions.values()) {
      const kinds = changedKinds(session, previous, next, before, after);
      for (const kind of kinds) notifySession(session, { method: `notifications/${kind}/list_changed` });
      any ||= kinds.length > 0;
    }
    // 2026-07-28 listeners are not tied to a user: they all hear it, and list again.
    if (before.identity !== after.identity) {
      this.#modern.notify.toolsChanged();
      this.#modern.notify.promptsChanged();
      this.#modern.notify.resourcesChanged();
    }
    if (any) this.#options.log.info("policies changed what connected sessions see");
  }

  /** After a reload: every session's lists may have changed. */
  listsChanged(): void {
    for (const { session } of this.#sessions.values()) {
      for (const kind of ["tools", "prompts", "resources"]) {
        notifySession(session, { method: `notifications/${kind}/list_changed` });
      }
    }
    this.#modern.notify.toolsChanged();
    this.#modern.notify.promptsChanged();
    this.#modern.notify.resourcesChanged();
  }

  /** Ends the 2025-era sessions' GET streams (clients reconnect, or resume with Last-Event-ID). */
  endStreams(): void {
    for (const { transport } of this.#sessions.values()) transport.closeStandaloneSSEStream();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await Promise.all([...this.#sessions.keys()].map((id) => this.#closeSession(id)));
    await this.#modern.close();
  }
}

/** The list kinds whose visible items differ for a session between two policies. */
function changedKinds(
  session: FrontSession,
  previous: Registry,
  next: Registry,
  before: Policy,
  after: Policy,
): string[] {
  const names = (registry: Registry) =>
    scopeBackends(registry, session.scope, session.caller).map((backend) => backend.name).join("\n");
  if (names(previous) !== names(next)) return ["tools", "prompts", "resources"];
  const changed = new Set<string>();
  for (const [key, items] of session.lastLists) {
    const [backend, method] = key.split("\n") as [string, string];
    const kind = LIST_KINDS[method];
    if (!kind) continue;
    const differs = items.some((item) => {
      const object = listedObject(kind, item);
      return before.decide(session.caller, backend, object).allowed !==
        after.decide(session.caller, backend, object).allowed;
    });
    if (differs) changed.add(kind === "resourceTemplates" ? "resources" : kind);
  }
  return [...changed];
}

const LIST_KINDS: Record<string, ListKind | undefined> = {
  "tools/list": "tools",
  "prompts/list": "prompts",
  "resources/list": "resources",
  "resources/templates/list": "resourceTemplates",
};
