import { Client, type McpSubscription } from "@modelcontextprotocol/client";
import type {
  ClientCapabilities,
  JSONRPCRequest,
  Notification,
  ServerCapabilities,
  Tool,
} from "@modelcontextprotocol/client";
import { z } from "zod";
import type { BackendSettings } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { VERSION } from "../version.ts";
import { JSONRPC, JsonRpcError } from "./errors.ts";
import type { createClientTransport } from "./transports.ts";

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

  constructor(options: {
    backend: BackendSettings;
    key: string;
    owner?: CallOrigin;
    serviceTokens?: ReadonlyMap<string, string>;
    hooks: UpstreamHooks;
    log: Logger;
  }) {
    this.backend = options.backend;
    this.key = options.key;
    this.owner = options.owner;
    this.serviceTokens = options.serviceTokens ?? new Map();
    this.#hooks = options.hooks;
    this.#log = options.log;
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
    this.client.onclose = () => this.#onClose();
    this.client.onerror = (error) => this.#log.debug("backend connection error", { error });
    await this.client.connect(transport, {
      timeout: timeoutMs,
      ...(this.backend.protocol === "legacy" ? { prior: { kind: "legacy" as const } } : {}),
    });
    const stderr = "stderr" in transport ? transport.stderr : null;
    if (stderr) this.#pipeStderr(stderr);
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
      const tool = method === "tools/call" && this.modern ? this.#tools.get(String(params?.name)) : undefined;
      if (tool) {
        // The SDK mirrors the tool's x-mcp-header arguments into Mcp-Param-* headers (SEP-2243).
        return await this.client.callTool(params as Parameters<Client["callTool"]>[0], {
          ...requestOptions,
          toolDefinition: tool,
        }) as AnyResult;
      }
      const result = await this.client.request(
        { method, params } as JSONRPCRequest,
        ANY_RESULT,
        requestOptions,
      );
      if (method === "tools/list" && Array.isArray(result.tools)) {
        if (!params?.cursor) this.#tools.clear();
        for (const listed of result.tools as Tool[]) this.#tools.set(String(listed.name), listed);
      }
      return result;
    } catch (error) {
      throw this.#translateError(error, method);
    } finally {
      // Progress read with the result was queued before this continuation, so it has been relayed.
      if (progressToken) this.#progress.delete(progressToken);
      this.#inFlight.delete(id);
      this.lastUsedAt = Date.now();
    }
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

  #onClose(): void {
    const unexpected = !this.#closing;
    this.#closing = true;
    this.state = "closed";
    if (unexpected) {
      this.crashed = true;
      this.lastError = "connection closed";
      this.#log.warn("backend connection closed", { backend: this.backend.name, key: this.key });
    }
    this.#hooks.onClosed(this);
  }

  #pipeStderr(stderr: NonNullable<StdioTransportStderr>): void {
    const log = this.#log.child({ backend: this.backend.name });
    let buffered = "";
    stderr.on("data", (chunk: Uint8Array | string) => {
      buffered += typeof chunk === "string" ? chunk : new TextDecoder().decode(chunk);
      // Bounded: a backend that floods stderr cannot grow the buffer without limit.
      if (buffered.length > 64 * 1024) buffered = buffered.slice(-64 * 1024);
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trimEnd();
        buffered = buffered.slice(newline + 1);
        if (line) log.info("backend stderr", { line: line.slice(0, 2000) });
      }
    });
  }

  #translateError(error: unknown, method: string): Error {
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
      return new JsonRpcError(
        JSONRPC.backendTimeout,
        `Backend "${this.backend.name}" did not answer ${method} within ${this.backend.callTimeoutSeconds} s`,
      );
    }
    this.lastError = message;
    return new JsonRpcError(JSONRPC.backendUnavailable, `Backend "${this.backend.name}" failed: ${message}`);
  }
}

type Progress = { progress: number; total?: number; message?: string };

type StdioTransportStderr =
  | { on(event: "data", listener: (chunk: Uint8Array | string) => void): unknown }
  | null;
