// One connection to a backend (a stdio process or an HTTP session): calls, their routing back, its health.
import type { Client, McpSubscription } from "@modelcontextprotocol/client";
import type { JSONRPCRequest, Notification, ServerCapabilities, Tool } from "@modelcontextprotocol/client";
import type { BackendSettings } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import { VERSION } from "../../version.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import type { ClientSdk } from "../sdk.ts";
import { ANY_RESULT, type AnyResult, type CallOrigin } from "./call_origin.ts";
import { healthCheckFailure, translateCallError } from "./call_errors.ts";
import { keepTaskResult, relayTaskResults } from "./task_results.ts";
import { InFlightCalls } from "./in_flight.ts";
import { pipeStderr, startFailed } from "./process_log.ts";
import { SessionRenewal } from "./session_renewal.ts";
import { StdioTransport } from "./stdio_transport.ts";
import type { ClientTransport } from "./transports.ts";

/** How long a `protocol: auto` backend has to answer server/discover before it is taken as 2025-era. */
const PROBE_TIMEOUT_MS = 10_000;

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
  readonly #inFlight: InFlightCalls;
  readonly #hooks: UpstreamHooks;
  readonly #progress = new Map<string, (progress: Progress) => void>();
  /** The backend's tools as it last listed them (for SEP-2243 header mirroring on tools/call). */
  readonly #tools = new Map<string, Tool>();
  readonly #subscriptions = new Map<string, number>();
  #listening: McpSubscription | undefined;
  readonly #log: Logger;
  #closing = false;
  #transport: ClientTransport | undefined;
  /** Makes the transport of a new backend session (Streamable HTTP only). */
  readonly #newTransport: (() => ClientTransport) | undefined;
  #connectTimeoutMs = 0;
  readonly #sessions = new SessionRenewal({
    renewable: () => this.#renewable(),
    reconnect: () => this.#reconnect(),
  });
  /** Set while the old session's transport is closed for a new one: that close is no hang-up. */
  #swapping = false;

  constructor(options: {
    /** The client SDK, loaded by the pool before its first connection. */
    sdk: ClientSdk;
    backend: BackendSettings;
    key: string;
    owner?: CallOrigin;
    serviceTokens?: ReadonlyMap<string, string>;
    hooks: UpstreamHooks;
    log: Logger;
    /** For Streamable HTTP backends: a fresh transport, to start a new session when the old one is gone. */
    newTransport?: () => ClientTransport;
  }) {
    this.backend = options.backend;
    this.key = options.key;
    this.owner = options.owner;
    this.serviceTokens = options.serviceTokens ?? new Map();
    this.#hooks = options.hooks;
    this.#log = options.log;
    this.#newTransport = options.newTransport;
    this.#inFlight = new InFlightCalls(options.owner);
    this.client = new options.sdk.Client(
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
    return this.#inFlight.describe();
  }

  /** Connects (spawning the process for stdio) within `timeoutMs`. */
  async start(transport: ClientTransport, timeoutMs: number): Promise<void> {
    this.#transport = transport;
    this.#connectTimeoutMs = timeoutMs;
    this.client.onclose = () => this.#onClose();
    this.client.onerror = (error) => this.#log.debug("backend connection error", { error });
    // Piped before the handshake: what a process prints while it fails to start is logged too.
    if (transport instanceof StdioTransport) pipeStderr(transport, this.backend, this.#log);
    try {
      await this.#connect(transport);
    } catch (error) {
      throw transport instanceof StdioTransport
        ? startFailed(transport, error, this.backend, this.#log)
        : error;
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

  /** Connects the client, letting a 2026-07-28 backend's task results past it (task_results.ts). */
  #connect(transport: ClientTransport): Promise<void> {
    relayTaskResults(transport, () => this.modern);
    return this.client.connect(transport, {
      timeout: this.#connectTimeoutMs,
      ...(this.backend.protocol === "legacy" ? { prior: { kind: "legacy" as const } } : {}),
    });
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
    const id = this.#inFlight.begin(origin, method);
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
      const result = await this.#sessions.run(async () => {
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
      }).catch(keepTaskResult);
      if (method === "tools/list" && Array.isArray(result.tools)) {
        if (!params?.cursor) this.#tools.clear();
        for (const listed of result.tools as Tool[]) this.#tools.set(String(listed.name), listed);
      }
      this.#reachable(undefined);
      return result;
    } catch (error) {
      throw translateCallError(error, {
        backend: this.backend,
        method,
        signal: options.signal,
        log: this.#log,
        onTimeout: () => this.#hooks.onTimeout?.(this, method),
        onUnreachable: (message) => this.#reachable(message),
      });
    } finally {
      // Progress read with the result was queued before this continuation, so it has been relayed.
      if (progressToken) this.#progress.delete(progressToken);
      this.#inFlight.end(id);
      this.lastUsedAt = Date.now();
    }
  }

  /**
   * Asks the backend whether it answers: ping, or server/discover for a 2026-07-28 backend (that revision
   * has no ping, and discover is its cheapest request). Throws when it does not.
   */
  async checkHealth(timeoutMs: number): Promise<void> {
    try {
      await this.#sessions.run(async () => {
        if (this.modern) {
          await this.client.request({ method: "server/discover" }, ANY_RESULT, { timeout: timeoutMs });
        } else await this.client.ping({ timeout: timeoutMs });
      });
      this.#reachable(undefined);
    } catch (error) {
      this.#reachable(healthCheckFailure(error));
      throw error;
    }
  }

  /** Whether the connection is a Streamable HTTP session that a new one could replace. */
  #renewable(): boolean {
    const transport = this.#transport;
    return Boolean(this.#newTransport && transport && "sessionId" in transport && transport.sessionId);
  }

  /** Replaces the backend session; on failure the connection is finished (the pool starts another). */
  async #reconnect(): Promise<void> {
    this.#log.info("backend session gone; starting a new one", { backend: this.backend.name, key: this.key });
    this.#swapping = true;
    try {
      await this.client.close().catch(() => {});
      const transport = this.#newTransport!();
      this.#transport = transport;
      await this.#connect(transport);
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

  async #relayRequest(
    request: { method: string; params?: unknown },
    signal: AbortSignal,
  ): Promise<AnyResult> {
    const target = this.#inFlight.target();
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
      const target = this.#inFlight.target();
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
}

type Progress = { progress: number; total?: number; message?: string };
