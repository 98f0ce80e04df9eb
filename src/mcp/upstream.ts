import { Client } from "@modelcontextprotocol/client";
import type { JSONRPCRequest, Notification, ServerCapabilities } from "@modelcontextprotocol/client";
import { z } from "zod";
import type { BackendSettings } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { VERSION } from "../version.ts";
import { JSONRPC, JsonRpcError } from "./errors.ts";
import type { createClientTransport } from "./transports.ts";

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
}

export interface UpstreamHooks {
  /** A backend notification for whoever listens to this backend (list changes, resource updates). */
  onBroadcast(upstream: Upstream, notification: Notification): void;
  /** A server-to-client request or log message could not be routed to exactly one session. */
  onRefused(upstream: Upstream, method: string): void;
  onClosed(upstream: Upstream): void;
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
  readonly client: Client;
  state: UpstreamState = "starting";
  lastUsedAt = Date.now();
  startedAt = 0;
  lastError: string | undefined;
  readonly #inFlight = new Map<number, CallOrigin>();
  readonly #hooks: UpstreamHooks;
  readonly #log: Logger;
  #nextCall = 0;
  #closing = false;
  #transport: ReturnType<typeof createClientTransport> | undefined;

  constructor(options: {
    backend: BackendSettings;
    key: string;
    owner?: CallOrigin;
    hooks: UpstreamHooks;
    log: Logger;
  }) {
    this.backend = options.backend;
    this.key = options.key;
    this.owner = options.owner;
    this.#hooks = options.hooks;
    this.#log = options.log;
    this.client = new Client(
      { name: "gatehouse", version: VERSION },
      {
        capabilities: { sampling: {}, elicitation: { form: {}, url: {} }, roots: { listChanged: true } },
        // Backends of the 2026-07-28 era answer input_required; hand it back to relay it to the client.
        inputRequired: { autoFulfill: false },
      },
    );
    this.client.fallbackRequestHandler = (request, context) =>
      this.#relayRequest(request, context.mcpReq.signal);
    this.client.fallbackNotificationHandler = (notification) => this.#onNotification(notification);
    this.client.setNotificationHandler(
      "notifications/message",
      (notification) => this.#onNotification(notification),
    );
  }

  /** Calls in flight right now. */
  get inFlight(): number {
    return this.#inFlight.size;
  }

  /** Connects (spawning the process for stdio) within `timeoutMs`. */
  async start(transport: ReturnType<typeof createClientTransport>, timeoutMs: number): Promise<void> {
    this.#transport = transport;
    this.client.onclose = () => this.#onClose();
    this.client.onerror = (error) => this.#log.debug("backend connection error", { error });
    const isHttp = this.backend.transport.kind === "http";
    await this.client.connect(transport, {
      timeout: timeoutMs,
      ...(isHttp ? {} : { prior: { kind: "legacy" as const } }),
    });
    const stderr = "stderr" in transport ? transport.stderr : null;
    if (stderr) this.#pipeStderr(stderr);
    this.state = "up";
    this.startedAt = Date.now();
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
    this.#inFlight.set(id, origin);
    this.lastUsedAt = Date.now();
    const timeoutMs = this.backend.callTimeoutSeconds * 1000;
    try {
      return await this.client.request({ method, params } as JSONRPCRequest, ANY_RESULT, {
        signal: options.signal,
        timeout: timeoutMs,
        maxTotalTimeout: timeoutMs,
        onprogress: options.onprogress,
        allowInputRequired: true,
      });
    } catch (error) {
      throw this.#translateError(error, method);
    } finally {
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

  /** The session a backend-initiated message belongs to, when it can be known. */
  #target(): CallOrigin | undefined {
    if (this.owner) return this.owner;
    const sessions = new Map([...this.#inFlight.values()].map((origin) => [origin.sessionId, origin]));
    return sessions.size === 1 ? [...sessions.values()][0] : undefined;
  }

  #relayRequest(request: { method: string; params?: unknown }, signal: AbortSignal): Promise<AnyResult> {
    const target = this.#target();
    if (!target) {
      this.#hooks.onRefused(this, request.method);
      throw new JsonRpcError(
        JSONRPC.routingRefused,
        `Cannot relay ${request.method}: no single client session is waiting on this backend`,
      );
    }
    return target.request(
      { method: request.method, params: request.params as Record<string, unknown> },
      signal,
    );
  }

  async #onNotification(notification: Notification): Promise<void> {
    const method = notification.method;
    if (method === "notifications/message") {
      const target = this.#target();
      if (target) await target.notify(notification);
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

type StdioTransportStderr =
  | { on(event: "data", listener: (chunk: Uint8Array | string) => void): unknown }
  | null;
