/**
 * The MCP endpoints' HTTP entry: checks the body once (type, size, JSON), counts it against the rate
 * limits, and hands it to its era: 2025-era clients get sessionful Streamable HTTP (Mcp-Session-Id, GET
 * stream, DELETE, resumable SSE), 2026-07-28 clients are served statelessly. Both reach the same relay.
 */
import { JSONRPC, jsonRpcErrorResponse } from "../../core/jsonrpc.ts";
import type { ClientCapabilities, McpHttpHandler, McpServer } from "@modelcontextprotocol/server";
import type { Registry } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import type { Store } from "../../store/store.ts";
import type { AuditLog } from "../../audit/audit.ts";
import { RateLimiter } from "../../policy/limits.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import type { RecentEvents } from "../../metrics/events.ts";
import type { Caller } from "../../core/caller.ts";
import type { BackendPool } from "../backends/pool.ts";
import { ParkedCalls } from "../era/parked.ts";
import { ListCache } from "../list_cache.ts";
import { announcedCapabilities, createModernProxyServer } from "../relay/capabilities.ts";
import { admitRequests } from "../relay/guard.ts";
import { isKnownMethod } from "../relay/method_table.ts";
import { loadServerSdk, type ServerSdk } from "../sdk.ts";
import { FrontSession, type ProxyDependencies, type ProxyScope, scopeKey } from "../session.ts";
import { fastCallOf, FastCalls } from "./fast_calls.ts";
import { type LegacySession, LegacySessions } from "./legacy_sessions.ts";
import { FrontNotifications } from "./notifications.ts";
import { openLegacySession, type SessionContext } from "./session_open.ts";
import { SEEN_INTERVAL_MS, SessionRecords } from "./session_records.ts";
import { SessionResumer, withoutForeignLastEventId } from "./session_resume.ts";

export interface FrontOptions {
  registry: () => Registry;
  pool: BackendPool;
  log: Logger;
  /**
   * Where the lists of backends awaiting consent are kept across restarts, and the 2025-era sessions any
   * replica can resume (in memory, this process only, when absent).
   */
  store?: Store;
  /** Where policy denials and rate-limit refusals are recorded. */
  audit?: AuditLog;
  /** Counts requests against `limits:` (in memory, or in a shared store); a new one when absent. */
  limiter?: RateLimiter;
  metrics?: Metrics;
  events?: RecentEvents;
}

/** Session counts by protocol era, for the status page. */
export interface FrontStats {
  readonly legacySessions: number;
  readonly modernRequests: number;
}

function jsonRpcError(status: number, code: number, message: string, headers?: HeadersInit): Response {
  return jsonRpcErrorResponse(status, code, message, { headers });
}

/** The methods of the Streamable HTTP transport (MCP 2025-11-25 §Transports); CORS preflights never get here. */
const MCP_HTTP_METHODS = ["GET", "POST", "DELETE"];

/** `application/json`, with parameters or none: not a longer type that starts the same (`application/jsonp`). */
const JSON_CONTENT_TYPE = /^application\/json[ \t]*(;|$)/i;

/**
 * A 2026-07-28 request's `requestState` is a string the server issued (SEP-2322); any other type is a
 * malformed request, refused before it is routed like the envelope's other keys.
 */
function malformedRequestState(body: unknown): Response | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const { id, params } = body as { id?: unknown; params?: { requestState?: unknown } };
  const state = params !== null && typeof params === "object" ? params.requestState : undefined;
  if (state === undefined || typeof state === "string") return undefined;
  return jsonRpcErrorResponse(400, JSONRPC.invalidParams, "Invalid params: requestState must be a string", {
    id: typeof id === "string" || typeof id === "number" ? id : null,
  });
}

/** The capabilities a 2026-07-28 request declares in its `_meta` envelope. */
function envelopeCapabilities(body: unknown): ClientCapabilities | undefined {
  const meta = (body as { params?: { _meta?: Record<string, unknown> } } | undefined)?.params?._meta;
  const capabilities = meta?.["io.modelcontextprotocol/clientCapabilities"];
  return capabilities && typeof capabilities === "object" ? capabilities as ClientCapabilities : undefined;
}

export class McpFront {
  readonly #options: FrontOptions;
  readonly #sessions: LegacySessions;
  readonly #context: SessionContext;
  readonly #resumer: SessionResumer | undefined;
  readonly #deps: ProxyDependencies;
  readonly #stopping = new AbortController();
  /** The server SDK (preloaded after start, see sdk.ts) and the 2026-07-28 handler made with it. */
  #sdk: Promise<{ sdk: ServerSdk; modern: McpHttpHandler }> | undefined;
  /** That handler, once made: its `subscriptions/listen` streams hear of changes. */
  #modern: McpHttpHandler | undefined;
  readonly #notifications: FrontNotifications;
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #fast = new FastCalls();
  #modernRequests = 0;

  constructor(options: FrontOptions) {
    this.#options = options;
    const records = options.store ? new SessionRecords(options.store, options.log) : undefined;
    this.#sessions = new LegacySessions(options.pool, options.log, records);
    this.#deps = {
      registry: options.registry,
      pool: options.pool,
      log: options.log,
      parked: new ParkedCalls(),
      toolSchemas: new Map(),
      lists: new ListCache(options.store),
      audit: options.audit,
      limiter: options.limiter ?? new RateLimiter(),
      toolReadOnly: new Map(),
      metrics: options.metrics,
      events: options.events,
      shortened: new Map(),
      lastKnownLists: new Map(),
      stopping: this.#stopping.signal,
    };
    this.#context = { deps: this.#deps, sessions: this.#sessions, records };
    this.#resumer = records && new SessionResumer(records, this.#context);
    this.#notifications = new FrontNotifications({
      sessions: () => this.#sessions.sessions(),
      // No handler before the first MCP request, and so no listen stream to tell.
      modern: () => this.#modern?.notify,
      registry: options.registry,
      log: options.log,
    });
    options.pool.onBroadcast((backend, key, notification) =>
      this.#notifications.backendNotified(backend, key, notification)
    );
    this.#sweep = setInterval(() => {
      this.#sessions.closeIdle();
      this.#sessions.writeSeen();
    }, SEEN_INTERVAL_MS);
    Deno.unrefTimer(Number(this.#sweep));
  }

  /** The server SDK (imported once, see sdk.ts) and the 2026-07-28 handler made with it; a failure is not kept. */
  #loadSdk(): Promise<{ sdk: ServerSdk; modern: McpHttpHandler }> {
    return this.#sdk ??= loadServerSdk().then((sdk) => {
      const modern = sdk.createMcpHandler((context) => this.#modernServer(sdk, context.authInfo?.extra), {
        legacy: "reject",
        onerror: (error) => this.#options.log.debug("modern MCP request rejected", { error }),
      });
      this.#modern = modern;
      return { sdk, modern };
    }, (error) => {
      this.#sdk = undefined;
      throw error;
    });
  }

  /** The server answering one 2026-07-28 request: a session of its own, for the caller the entry found. */
  #modernServer(sdk: ServerSdk, extra: unknown): McpServer {
    const found = extra as
      | { caller: Caller; scope: ProxyScope; clientCapabilities?: ClientCapabilities }
      | undefined;
    if (!found) throw new Error("Cannot serve a request without a caller");
    const deps = this.#deps;
    const session = new FrontSession(crypto.randomUUID(), found.caller, found.scope, "modern");
    // Backends isolated per session get a connection for this request (and for a call it parks), which
    // cannot be sent requests outside a call.
    session.owner = {
      sessionId: session.id,
      userId: found.caller.id,
      request: () => Promise.reject(new Error("A 2026-07-28 client cannot be sent requests outside a call")),
      notify: () => Promise.resolve(),
      clientCapabilities: found.clientCapabilities,
    };
    const schemas = () => deps.toolSchemas.get(scopeKey(found.scope));
    return createModernProxyServer(
      sdk,
      deps,
      session,
      announcedCapabilities(deps, session),
      (tool) => schemas()?.get(tool),
    );
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
    if (!MCP_HTTP_METHODS.includes(request.method)) {
      return jsonRpcError(405, JSONRPC.transportRefused, `Method not allowed: ${request.method}`, {
        allow: MCP_HTTP_METHODS.join(", "),
      });
    }
    let parsedBody: unknown;
    let text: string | undefined;
    if (request.method === "POST") {
      if (!JSON_CONTENT_TYPE.test(request.headers.get("content-type") ?? "")) {
        return jsonRpcError(
          415,
          JSONRPC.parseError,
          "Unsupported Media Type: Content-Type must be application/json",
        );
      }
      try {
        text = await request.text();
      } catch {
        // The client went away mid-body (or sent a broken chunked one): its fault, not an internal error.
        return jsonRpcError(400, JSONRPC.parseError, "Parse error: the body could not be read");
      }
      try {
        parsedBody = JSON.parse(text);
      } catch {
        return jsonRpcError(400, JSONRPC.parseError, "Parse error: the body is not valid JSON");
      }
    }

    const limited = this.#rateLimit(parsedBody, scope, caller);
    if (limited) return limited;

    const { sdk, modern } = await this.#loadSdk();
    const sessionId = request.headers.get("mcp-session-id");
    // A session this process does not hold may be resumed from the store (session_resume.ts); one it
    // holds is served without touching the store.
    const entry = sessionId
      ? this.#sessions.find(sessionId, caller, scope) ??
        await this.#resumer?.resume(sdk, request.url, sessionId, caller, scope)
      : undefined;
    if (entry) {
      const fast = await this.#fastAnswer(entry, request, parsedBody, sdk.SUPPORTED_PROTOCOL_VERSIONS);
      if (fast) return fast;
    }
    // The body was read: the SDK's transport reads it again.
    if (text !== undefined) {
      request = new Request(request.url, { method: "POST", headers: request.headers, body: text });
    }

    if (!(await sdk.isLegacyRequest(request, parsedBody))) {
      const method = (parsedBody as { id?: unknown; method?: unknown } | undefined)?.method;
      if (typeof method === "string" && "id" in (parsedBody as object) && !isKnownMethod(method)) {
        // 2026-07-28: an unknown method is a 404 (stateless servers route by method).
        return Response.json({
          jsonrpc: "2.0",
          id: (parsedBody as { id: unknown }).id,
          error: { code: JSONRPC.methodNotFound, message: `Method not found: ${method}` },
        }, { status: 404 });
      }
      const badState = malformedRequestState(parsedBody);
      if (badState) return badState;
      this.#modernRequests += 1;
      return await modern.fetch(request, {
        parsedBody,
        authInfo: {
          token: "",
          clientId: caller.clientId ?? "",
          scopes: [],
          extra: { caller, scope, clientCapabilities: envelopeCapabilities(parsedBody) },
        },
      });
    }

    if (sessionId) {
      if (!entry) return jsonRpcError(404, JSONRPC.sessionNotFound, "Session not found");
      return await entry.transport.handleRequest(withoutForeignLastEventId(request, entry.events), {
        parsedBody,
      });
    }
    const isInitialize = request.method === "POST" && !Array.isArray(parsedBody) &&
      (parsedBody as { method?: unknown } | undefined)?.method === "initialize";
    if (!isInitialize) {
      return jsonRpcError(400, JSONRPC.transportRefused, "Bad Request: Mcp-Session-Id header is required");
    }
    return await openLegacySession(sdk, this.#context, request, parsedBody, scope, caller);
  }

  /**
   * What the fast path answers on an open 2025-era session (fast_calls.ts): a call, the client's answer
   * to a question asked on a call's stream or its cancellation, a resumption of a call's stream.
   */
  async #fastAnswer(
    entry: LegacySession,
    request: Request,
    body: unknown,
    supportedVersions: readonly string[],
  ): Promise<Response | undefined> {
    if (request.method === "GET") {
      const lastEventId = request.headers.get("last-event-id");
      return lastEventId ? this.#fast.resume(entry.session, lastEventId) : undefined;
    }
    if (request.method !== "POST") return undefined;
    if (this.#fast.take(entry.session, body)) return new Response(null, { status: 202 });
    const call = fastCallOf(request, body, supportedVersions);
    return call ? await this.#fast.answer(entry.session, entry.events, call) : undefined;
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

  /** Deletes the store's records of 2025-era sessions no replica saw for an hour; returns how many. */
  pruneSessionRecords(): number {
    return this.#context.records?.prune() ?? 0;
  }

  /** A user connected a service (see FrontNotifications.consentCompleted). */
  consentCompleted(userId: string, elicitationId: string | undefined): void {
    this.#notifications.consentCompleted(userId, elicitationId);
  }

  /** After a reload that changed the policies (see FrontNotifications.policiesChanged). */
  policiesChanged(previous: Registry, next: Registry): void {
    this.#notifications.policiesChanged(previous, next);
  }

  /** After a reload: every session's lists may have changed. */
  listsChanged(): void {
    this.#notifications.listsChanged();
  }

  /** Ends the 2025-era sessions' GET streams (clients reconnect, or resume with Last-Event-ID). */
  /** Answers every call still running with a JSON-RPC error saying the gateway is shutting down. */
  failRunningCalls(): void {
    this.#stopping.abort();
  }

  endStreams(): void {
    this.#sessions.endStreams();
  }

  async close(): Promise<void> {
    clearInterval(this.#sweep);
    await this.#sessions.closeAll();
    // A load under way makes its handler: wait for it, so that the handler is closed too.
    await this.#sdk?.catch(() => {});
    await this.#modern?.close();
  }
}
