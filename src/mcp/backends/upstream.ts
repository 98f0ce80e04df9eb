// One connection to a backend (a stdio process or an HTTP session): calls, their routing back, its health.
import { Client, type McpSubscription } from "@modelcontextprotocol/client";
import type {
  ClientCapabilities,
  JSONRPCRequest,
  Notification,
  ServerCapabilities,
  Tool,
} from "@modelcontextprotocol/client";
import { z } from "zod";
import type { BackendSettings } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import { VERSION } from "../../version.ts";
import { JSONRPC, JsonRpcError } from "../errors.ts";
import type { createClientTransport } from "./transports.ts";
import { stderrRateLimitFor, StdioTransport } from "./stdio_transport.ts";

/** How long a `protocol: auto` backend has to answer server/discover before it is taken as 2025-era. */
const PROBE_TIMEOUT_MS = 10_000;

/** Results are relayed as they are: the backend's result object, unvalidated beyond being an object. */
export const ANY_RESULT = z.looseObject({});
type AnyResult = z.infer<typeof ANY_RESULT>;

/** The front-end session a backend call was made for, able to carry messages back to its client. */
export interface CallOrigin {
  /** The front session (legacy) or request (modern) id; messages never cross between these. */
  readonly sessionId: string;
  readonly userId: string;
  /** Sends a server-to-client request (sampling, elicitation, roots) to the client, tied to the call. */
  request(
    request: { method: string; params?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<AnyResult>;
  /** Sends a notification (such as a log message) to the client, tied to the call. */
  notify(notification: Notification): Promise<void>;
  /** What the client declared it can answer; a connection of its own declares the same to the backend. */
  readonly clientCapabilities?: ClientCapabilities;
}

export interface UpstreamHooks {
  /** A backend notification for whoever listens to this backend (list changes, resource updates). */
  onBroadcast(upstream: Upstream, notification: Notification): void;
  /** A server-to-client request or log message could not be routed to exactly one session. */
  onRefused(upstream: Upstream, method: string): void;
  onClosed(upstream: Upstream): void;
  /** The backend forgot its HTTP session and a new one was started (counted as a restart). */
  onSessionRenewed?(upstream: Upstream): void;
  /** A call was not answered within the backend's call timeout. */
  onTimeout?(upstream: Upstream, method: string): void;
  /** The backend stopped answering (`error` says why), or answers again (`error` undefined). */
  onReachability?(upstream: Upstream, error: string | undefined): void;
}

/** A call in flight: who made it, and how many of the backend's questions about it await an answer. */
interface InFlightCall {
  readonly origin: CallOrigin;
  asking: number;
  readonly method: string;
  readonly since: number;
}

export type UpstreamState = "starting" | "up" | "closed";

/**
 * One connection to a backend: a stdio process, or a session with an HTTP backend. Tracks the calls
 * in flight on it, so that what the backend sends back unprompted reaches only the session it is for.
 */
export class Upstream {
  readonly backend: BackendSettings;
  /** What this connection is keyed by in the pool: "shared", "user:ID" or "session:ID". */
  readonly key: string;
  /** The single session this connection belongs to (isolation: session), if any. */
  readonly owner: CallOrigin | undefined;
  /** The service tokens this connection was started with (a stdio process cannot take new ones). */
  readonly serviceTokens: ReadonlyMap<string, string>;
  readonly client: Client;
  state: UpstreamState = "starting";
  lastUsedAt = Date.now();
  startedAt = 0;
  lastError: string | undefined;
  /** True once the connection ended without being closed by the gateway (a crash, or a hang-up). */
  crashed = false;
  /** True while calls or health checks cannot reach the backend; the next answer clears it. */
  unreachable = false;
  /** Calls in flight, each with how many of its backend's questions are waiting for the client. */
  readonly #inFlight = new Map<number, InFlightCall>();
  readonly #hooks: UpstreamHooks;
  readonly #progress = new Map<string, (progress: Progress) => void>();
  /** The backend's tools as it last listed them (for SEP-2243 header mirroring on tools/call). */
  readonly #tools = new Map<string, Tool>();
  readonly #subscriptions = new Map<string, number>();
  #listening: McpSubscription | undefined;
  readonly #log: Logger;
  #nextCall = 0;
  #closing = false;
  #transport: ReturnType<typeof createClientTransport> | undefined;
  /** Makes the transport of a new backend session (Streamable HTTP only). */
  readonly #newTransport: (() => ReturnType<typeof createClientTransport>) | undefined;
  #connectTimeoutMs = 0;
  /** Which backend session this is (1 for the first): a call knows whether its session was renewed. */
  #session = 1;
  #renewing: Promise<void> | undefined;
  /** Set while the old session's transport is closed for a new one: that close is no hang-up. */
  #swapping = false;

  constructor(options: {
    backend: BackendSettings;
    key: string;
    owner?: CallOrigin;
    serviceTokens?: ReadonlyMap<string, string>;
    hooks: UpstreamHooks;
    log: Logger;
    /** For Streamable HTTP backends: a fresh transport, to start a new session when the old one is gone. */
    newTransport?: () => ReturnType<typeof createClientTransport>;
  }) {
    this.backend = options.backend;
    this.key = options.key;
    this.owner = options.owner;
    this.serviceTokens = options.serviceTokens ?? new Map();
    this.#hooks = options.hooks;
    this.#log = options.log;
    this.#newTransport = options.newTransport;
    this.client = new Client(
      { name: "gatehouse", version: VERSION },
      {
        // A connection shared by several clients offers everything and relays; one owned by a session
        // offers just what that client can answer, so the backend asks only for that.
        capabilities: options.owner?.clientCapabilities ??
          { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } },
        // Backends of the 2026-07-28 era answer input_required; hand it back to relay it to the client.
        inputRequired: { autoFulfill: false },
        // `protocol: auto` asks the backend which revision it speaks (server/discover, falling back to
        // initialize); `legacy` goes straight to initialize.
        ...(options.backend.protocol === "auto"
          ? { versionNegotiation: { mode: "auto" as const, probe: { timeoutMs: PROBE_TIMEOUT_MS } } }
          : {}),
      },
    );
    this.client.fallbackRequestHandler = (request, context) =>
      this.#relayRequest(request, context.mcpReq.signal);
    this.client.fallbackNotificationHandler = (notification) => this.#onNotification(notification);
    // Not the SDK's `onprogress`: the SDK runs notification handlers a microtask late but settles a
    // response at once, so progress read together with the result found its handler gone. Our own
    // token map outlives the response until request() has returned.
    this.client.setNotificationHandler("notifications/progress", (notification) => {
      const { progressToken, ...progress } = notification.params;
      this.#progress.get(String(progressToken))?.(progress);
    });
    this.client.setNotificationHandler(
      "notifications/message",
      (notification) => this.#onNotification(notification),
    );
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** What is in flight, for diagnostics: methods, ages and open questions, never who or what. */
  describeInFlight(): { method: string; age_ms: number; asking: number }[] {
    const now = Date.now();
    return [...this.#inFlight.values()].map((call) => ({
      method: call.method,
      age_ms: now - call.since,
      asking: call.asking,
    }));
  }

  /** Connects (spawning the process for stdio) within `timeoutMs`. */
  async start(transport: ReturnType<typeof createClientTransport>, timeoutMs: number): Promise<void> {
    this.#transport = transport;
    this.#connectTimeoutMs = timeoutMs;
    this.client.onclose = () => this.#onClose();
    this.client.onerror = (error) => this.#log.debug("backend connection error", { error });
    // Piped before the handshake: what a process prints while it fails to start is logged too.
    if (transport instanceof StdioTransport) this.#pipeStderr(transport);
    try {
      await this.client.connect(transport, this.#connectOptions());
    } catch (error) {
      throw this.#startFailed(transport, error);
    }
    this.state = "up";
    this.startedAt = Date.now();
    // A 2026-07-28 backend tells of changes only on a subscriptions/listen stream.
    if (this.modern) await this.#listen();
  }

  /**
   * Resource subscriptions of the sessions using this connection. 2025-era backends get
   * resources/subscribe; a 2026-07-28 backend gets one listen stream naming every subscribed URI.
   */
  async subscribe(uri: string, subscribed: boolean): Promise<void> {
    const count = (this.#subscriptions.get(uri) ?? 0) + (subscribed ? 1 : -1);
    if (count > 0) this.#subscriptions.set(uri, count);
    else this.#subscriptions.delete(uri);
    if (this.modern) await this.#listen();
  }

  async #listen(): Promise<void> {
    const previous = this.#listening;
    const capabilities = this.capabilities() ?? {};
    try {
      this.#listening = await this.client.listen({
        toolsListChanged: Boolean(capabilities.tools?.listChanged),
        promptsListChanged: Boolean(capabilities.prompts?.listChanged),
        resourcesListChanged: Boolean(capabilities.resources?.listChanged),
        resourceSubscriptions: [...this.#subscriptions.keys()],
      });
    } catch (error) {
      this.#log.warn("backend refused a change subscription", { backend: this.backend.name, error });
    }
    await previous?.close().catch(() => {});
  }

  #connectOptions() {
    return {
      timeout: this.#connectTimeoutMs,
      ...(this.backend.protocol === "legacy" ? { prior: { kind: "legacy" as const } } : {}),
    };
  }

  /** True when the backend speaks the 2026-07-28 revision (stateless, input_required, per-request _meta). */
  get modern(): boolean {
    return this.client.getProtocolEra() === "modern";
  }

  capabilities(): ServerCapabilities | undefined {
    return this.client.getServerCapabilities();
  }

  /** The process id of a stdio backend. */
  get pid(): number | null {
    const transport = this.#transport;
    return transport && "pid" in transport ? transport.pid : null;
  }

  /**
   * Sends a request for `origin`, relaying progress through `onprogress`, bounded by the backend's call
   * timeout; a timeout or the caller's abort cancels the backend request.
   */
  async request(
    method: string,
    params: Record<string, unknown> | undefined,
    origin: CallOrigin,
    options: {
      signal?: AbortSignal;
      onprogress?: (progress: { progress: number; total?: number; message?: string }) => void;
    },
  ): Promise<AnyResult> {
    if (this.state !== "up") {
      throw new JsonRpcError(JSONRPC.backendUnavailable, `Backend "${this.backend.name}" is not connected`);
    }
    const id = this.#nextCall++;
    this.#inFlight.set(id, { origin, asking: 0, method, since: Date.now() });
    this.lastUsedAt = Date.now();
    const timeoutMs = this.backend.callTimeoutSeconds * 1000;
    const progressToken = options.onprogress ? `gatehouse-${id}` : undefined;
    if (progressToken) this.#progress.set(progressToken, options.onprogress!);
    params = progressToken
      ? { ...params, _meta: { ...(params?._meta as Record<string, unknown> | undefined), progressToken } }
      : params;
    const requestOptions = {
      signal: options.signal,
      timeout: timeoutMs,
      maxTotalTimeout: timeoutMs,
      allowInputRequired: true,
    };
    try {
      const result = await this.#inSession(async () => {
        const tool = method === "tools/call" && this.modern
          ? this.#tools.get(String(params?.name))
          : undefined;
        if (tool) {
          // The SDK mirrors the tool's x-mcp-header arguments into Mcp-Param-* headers (SEP-2243).
          return await this.client.callTool(params as Parameters<Client["callTool"]>[0], {
            ...requestOptions,
            toolDefinition: tool,
          }) as AnyResult;
        }
        return await this.client.request({ method, params } as JSONRPCRequest, ANY_RESULT, requestOptions);
      });
      if (method === "tools/list" && Array.isArray(result.tools)) {
        if (!params?.cursor) this.#tools.clear();
        for (const listed of result.tools as Tool[]) this.#tools.set(String(listed.name), listed);
      }
      this.#reachable(undefined);
      return result;
    } catch (error) {
      throw this.#translateError(error, method, options.signal);
    } finally {
      // Progress read with the result was queued before this continuation, so it has been relayed.
      if (progressToken) this.#progress.delete(progressToken);
      this.#inFlight.delete(id);
      this.lastUsedAt = Date.now();
    }
  }

  /**
   * Asks the backend whether it answers: ping, or server/discover for a 2026-07-28 backend (that revision
   * has no ping, and discover is its cheapest request). Throws when it does not.
   */
  async checkHealth(timeoutMs: number): Promise<void> {
    try {
      await this.#inSession(async () => {
        if (this.modern) {
          await this.client.request({ method: "server/discover" }, ANY_RESULT, { timeout: timeoutMs });
        } else await this.client.ping({ timeout: timeoutMs });
      });
      this.#reachable(undefined);
    } catch (error) {
      this.#reachable(`health check failed: ${error instanceof Error ? error.message : String(error)}`);
      throw error;
    }
  }

  /**
   * Runs `send` on the current backend session. MCP 2025-11-25 basic/transports §Session Management: a
   * server answers 404 to a session it no longer knows (it restarted), and the client must start a new
   * session with a new initialize. The request never ran there, so it is sent once more on the new one.
   */
  async #inSession<T>(send: () => Promise<T>): Promise<T> {
    // Calls arriving while a new session is being started wait for it rather than fail.
    await this.#renewing?.catch(() => {});
    const session = this.#session;
    try {
      return await send();
    } catch (error) {
      if (!this.#sessionLost(error)) throw error;
      await this.#renewSession(session);
      return await send();
    }
  }

  #sessionLost(error: unknown): boolean {
    const transport = this.#transport;
    if (!this.#newTransport || !transport || !("sessionId" in transport) || !transport.sessionId) {
      return false;
    }
    const status = (error as { status?: unknown } | null)?.status;
    return status === 404 || (error instanceof Error && /session not found/i.test(error.message));
  }

  /** Starts one new session for every call that found session `lost` gone. */
  #renewSession(lost: number): Promise<void> {
    if (this.#session === lost && !this.#renewing) {
      this.#session += 1;
      this.#renewing = this.#reconnect().finally(() => {
        this.#renewing = undefined;
      });
    }
    return this.#renewing ?? Promise.resolve();
  }

  async #reconnect(): Promise<void> {
    this.#log.info("backend session gone; starting a new one", { backend: this.backend.name, key: this.key });
    this.#swapping = true;
    try {
      await this.client.close().catch(() => {});
      const transport = this.#newTransport!();
      this.#transport = transport;
      await this.client.connect(transport, this.#connectOptions());
    } catch (error) {
      await this.client.close().catch(() => {});
      this.#swapping = false;
      // No new session either: this connection is finished, and the pool starts another on next use.
      this.lastError = `cannot start a new session: ${
        error instanceof Error ? error.message : String(error)
      }`;
      this.#onClose(true);
      throw error;
    }
    this.#swapping = false;
    this.startedAt = Date.now();
    this.#hooks.onSessionRenewed?.(this);
  }

  /** Records whether the backend answers, telling the pool when that changes. */
  #reachable(error: string | undefined): void {
    if (error === undefined && !this.unreachable) return;
    this.unreachable = error !== undefined;
    if (error !== undefined) this.lastError = error;
    this.#hooks.onReachability?.(this, error);
  }

  /** Forwards a client notification (cancellation is handled by the SDK through the abort signal). */
  async notify(notification: Notification): Promise<void> {
    if (this.state === "up") await this.client.notification(notification);
  }

  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    this.state = "closed";
    try {
      await this.client.close();
    } catch (error) {
      this.#log.debug("backend close failed", { error });
    }
  }

  /**
   * The call a backend-initiated message belongs to, when it can be known: the owner of a session's own
   * connection; else the only session with calls in flight. With several, a call already waiting for an
   * answer to its own question is not the one asking, so if exactly one call is free and every call in
   * flight is the same user's, it is that one. Otherwise nobody gets it: never another user's session.
   */
  #target(): InFlightCall | undefined {
    const calls = [...this.#inFlight.values()];
    if (this.owner) {
      // Every call here is the owner's session's: the one free to ask, else the session itself.
      const free = calls.filter((call) => call.asking === 0);
      return free.length === 1 ? free[0] : { origin: this.owner, asking: 0, method: "", since: 0 };
    }
    if (new Set(calls.map((call) => call.origin.sessionId)).size === 1) return calls[0];
    if (new Set(calls.map((call) => call.origin.userId)).size !== 1) return undefined;
    const free = calls.filter((call) => call.asking === 0);
    return new Set(free.map((call) => call.origin.sessionId)).size === 1 ? free[0] : undefined;
  }

  async #relayRequest(
    request: { method: string; params?: unknown },
    signal: AbortSignal,
  ): Promise<AnyResult> {
    const target = this.#target();
    if (!target) {
      this.#hooks.onRefused(this, request.method);
      throw new JsonRpcError(
        JSONRPC.routingRefused,
        `Cannot relay ${request.method}: no single client session is waiting on this backend`,
      );
    }
    target.asking += 1;
    try {
      return await target.origin.request(
        { method: request.method, params: request.params as Record<string, unknown> },
        signal,
      );
    } finally {
      target.asking -= 1;
    }
  }

  async #onNotification(notification: Notification): Promise<void> {
    const method = notification.method;
    if (method === "notifications/message") {
      const target = this.#target();
      if (target) await target.origin.notify(notification);
      else this.#hooks.onRefused(this, method);
      return;
    }
    this.#hooks.onBroadcast(this, notification);
  }

  #onClose(failedRenewal = false): void {
    if (this.#swapping) return;
    const unexpected = !this.#closing;
    this.#closing = true;
    this.state = "closed";
    if (unexpected) {
      this.crashed = true;
      if (!failedRenewal) this.lastError = "connection closed";
      this.#log.warn("backend connection closed", { backend: this.backend.name, key: this.key });
    }
    this.#hooks.onClosed(this);
  }

  /** Logs a process's stderr (at most 20 lines per 10 s per backend) and the messages it had dropped. */
  #pipeStderr(transport: StdioTransport): void {
    const log = this.#log.child({ backend: this.backend.name });
    const limit = stderrRateLimitFor(this.#log, this.backend.name);
    const suppressed = (lines: number) => {
      if (lines > 0) log.info("backend stderr suppressed", { lines });
    };
    transport.onstderr = (line) => {
      const admitted = limit.admit();
      suppressed(admitted.suppressed);
      if (admitted.log) log.info("backend stderr", { line });
    };
    transport.onstderrend = () => suppressed(limit.flush());
    transport.ondropped = ({ bytes, id }) =>
      log.warn("backend message dropped", {
        bytes,
        max_response_size: this.backend.maxResponseBytes,
        // Without an id of a call in flight, nobody's call could be failed in its place.
        failed_call: id !== undefined,
      });
  }

  /** Logs a failed start with what the process printed and how it ended; the error to report. */
  #startFailed(transport: ReturnType<typeof createClientTransport>, error: unknown): unknown {
    if (!(transport instanceof StdioTransport)) return error;
    const exit = transport.exit;
    this.#log.warn("backend failed to start", {
      backend: this.backend.name,
      error: error instanceof Error ? error.message : String(error),
      exit_code: exit?.code,
      signal: exit?.signal ?? undefined,
      stderr: transport.recentStderr,
    });
    if (!exit) return error;
    const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
    return new Error(`the process exited with ${how} during its handshake`);
  }

  #translateError(error: unknown, method: string, signal: AbortSignal | undefined): Error {
    if (error instanceof JsonRpcError) return error;
    if (
      error && typeof error === "object" && "code" in error && typeof error.code === "number" &&
      error.code < 0
    ) {
      const protocolError = error as { code: number; message?: string; data?: unknown };
      return new JsonRpcError(
        protocolError.code,
        String(protocolError.message ?? "Backend error"),
        protocolError.data,
      );
    }
    const message = error instanceof Error ? error.message : String(error);
    if (/timed? ?out/i.test(message)) {
      this.#hooks.onTimeout?.(this, method);
      return new JsonRpcError(
        JSONRPC.backendTimeout,
        `Backend "${this.backend.name}" did not answer ${method} within ${this.backend.callTimeoutSeconds} s`,
      );
    }
    // The caller giving up says nothing of the backend; anything else means it cannot be reached.
    if (!signal?.aborted) this.#reachable(message);
    return new JsonRpcError(JSONRPC.backendUnavailable, `Backend "${this.backend.name}" failed: ${message}`);
  }
}

type Progress = { progress: number; total?: number; message?: string };
