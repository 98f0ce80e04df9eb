// The backend pool: every connection to every backend, started, restarted, health checked and retired.
import type { Notification, ServerCapabilities } from "@modelcontextprotocol/client";
import type { BackendDiff } from "../../config/diff.ts";
import type { Template, TemplateContext } from "../../config/template.ts";
import {
  type BackendSettings,
  type Registry,
  remoteOAuthOf,
  remoteOAuthServiceName,
} from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import { ANONYMOUS, type Caller } from "../../core/caller.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { ConsentRequiredError } from "../../services/consent_required.ts";
import { type BackendEntry, newBackendEntry, settledUpstreams } from "./backend_entry.ts";
import type { CallOrigin } from "./call_origin.ts";
import { type BackendStatus, backendStatus, checkBackendHealth } from "./health.ts";
import { isolationKey } from "./isolation.ts";
import { loadClientSdk } from "../sdk.ts";
import { type ClientTransport, createClientTransport, renderValues } from "./transports.ts";
import { Upstream } from "./upstream.ts";

/**
 * Hears a backend's change notifications, with the key of the connection they came on: "shared", or
 * "user:ID" / "session:ID" for a connection that only that user or session may hear from.
 */
export type BroadcastListener = (backend: string, connectionKey: string, notification: Notification) => void;

/** Supplies a user's token for a third-party service; throws when the user has none yet. */
export type ServiceTokenSource = (caller: Caller, service: string) => Promise<string>;
/** What a backend's 401 means for a user's token for `service`: forgotten, and the error that asks again. */
export type ServiceTokenRefused = (caller: Caller, service: string) => Promise<Error>;

const MAX_BACKOFF_MS = 30_000;
const BASE_BACKOFF_MS = 500;
/** Backoff a call waits for before starting a backend again; a longer one fails the call at once. */
const MAX_WAITED_BACKOFF_MS = 2000;
/** A connection that stayed up this long resets the backoff. */
const STABLE_AFTER_MS = 30_000;

export interface PoolOptions {
  log: Logger;
  serviceToken?: ServiceTokenSource;
  /** A backend with its own OAuth answered 401 to a user's token (see `ServiceTokenRefused`). */
  serviceTokenRefused?: ServiceTokenRefused;
  /** How often idle processes are looked for, and health checked (ms). */
  sweepIntervalMs?: number;
  healthIntervalMs?: number;
  /** Told when a backend fails to start, dies, or fails a health check (for the status page). */
  onFailure?: (backend: string, message: string) => void;
  /** Told when a process died (it starts again) or an HTTP backend's session was started anew (/metrics). */
  onRestart?: (backend: string) => void;
  /** Told when a call was not answered within the backend's call timeout (/metrics). */
  onTimeout?: (backend: string, method: string) => void;
}

function sameTokens(a: ReadonlyMap<string, string>, b: ReadonlyMap<string, string>): boolean {
  return a.size === b.size && [...a].every(([service, token]) => b.get(service) === token);
}

/**
 * Owns every backend connection: starts them on first use, restarts them with backoff after they die,
 * stops idle processes, caps per-user processes, and applies registry reloads backend by backend.
 */
export class BackendPool {
  readonly #entries = new Map<string, BackendEntry>();
  readonly #log: Logger;
  readonly #onFailure: PoolOptions["onFailure"];
  readonly #onRestart: PoolOptions["onRestart"];
  readonly #onTimeout: PoolOptions["onTimeout"];
  readonly #serviceToken: ServiceTokenSource;
  readonly #serviceTokenRefused: ServiceTokenRefused | undefined;
  readonly #broadcastListeners = new Set<BroadcastListener>();
  readonly #sweep: ReturnType<typeof setInterval>;
  readonly #health: ReturnType<typeof setInterval>;
  #closed = false;

  constructor(registry: Registry, options: PoolOptions) {
    this.#log = options.log;
    this.#onFailure = options.onFailure;
    this.#onRestart = options.onRestart;
    this.#onTimeout = options.onTimeout;
    this.#serviceToken = options.serviceToken ??
      ((_caller, service) =>
        Promise.reject(new JsonRpcError(JSONRPC.backendUnavailable, `No token for service "${service}"`)));
    this.#serviceTokenRefused = options.serviceTokenRefused;
    for (const settings of Object.values(registry.backends)) {
      this.#entries.set(settings.name, newBackendEntry(settings));
    }
    this.#sweep = setInterval(() => this.#stopIdle(), options.sweepIntervalMs ?? 1000);
    Deno.unrefTimer(Number(this.#sweep));
    this.#health = setInterval(() => void this.checkHealth(), options.healthIntervalMs ?? 30_000);
    Deno.unrefTimer(Number(this.#health));
  }

  /** Listens to list changes and resource updates of every backend. */
  onBroadcast(listener: BroadcastListener): () => void {
    this.#broadcastListeners.add(listener);
    return () => this.#broadcastListeners.delete(listener);
  }

  /** Capabilities a backend announced the last time it was connected. */
  capabilities(backend: string): ServerCapabilities | undefined {
    return this.#entries.get(backend)?.capabilities;
  }

  /**
   * The connection serving `caller` on `backend`, started when needed. `owner` is the session a
   * session-isolated connection belongs to.
   */
  async upstream(backend: string, caller: Caller, owner?: CallOrigin): Promise<Upstream> {
    const entry = this.#entries.get(backend);
    if (!entry || entry.retiring || this.#closed) {
      throw new JsonRpcError(JSONRPC.invalidParams, `Unknown backend "${backend}"`);
    }
    const key = isolationKey(entry.settings, caller, owner?.sessionId);
    // The caller's current service tokens: a missing one asks for consent (it throws); a refreshed one
    // reaches a process of this user's by restarting it once it is idle.
    const tokens = await this.#tokensFor(entry.settings, caller);
    const start = () =>
      this.#start(entry, key, caller, key.startsWith("session:") ? owner : undefined, tokens);
    let existing = entry.upstreams.get(key);
    while (existing) {
      const upstream = await existing;
      // Another call replaced it meanwhile (restarted or started it again): that one serves this call too.
      if (entry.upstreams.get(key) !== existing) {
        existing = entry.upstreams.get(key);
        continue;
      }
      if (upstream.state !== "up") break;
      const stale = entry.settings.transport.kind === "stdio" && !sameTokens(upstream.serviceTokens, tokens);
      if (!stale || upstream.inFlight > 0) return upstream;
      this.#log.info("restarting a process for a refreshed service token", { backend: backend });
      // Replaced before the old one is closed, so that concurrent calls wait for one new process.
      return await this.#track(entry, key, upstream.close().then(start));
    }
    return await this.#track(entry, key, start());
  }

  /** Makes `starting` the connection serving `key`, forgetting it again if it fails to start. */
  #track(entry: BackendEntry, key: string, starting: Promise<Upstream>): Promise<Upstream> {
    entry.upstreams.set(key, starting);
    starting.catch(() => {
      if (entry.upstreams.get(key) === starting) entry.upstreams.delete(key);
    });
    return starting;
  }

  async #tokensFor(settings: BackendSettings, caller: Caller): Promise<Map<string, string>> {
    const tokens = new Map<string, string>();
    for (const service of settings.services) tokens.set(service, await this.#serviceToken(caller, service));
    return tokens;
  }

  async #start(
    entry: BackendEntry,
    key: string,
    caller: Caller,
    owner: CallOrigin | undefined,
    tokens: Map<string, string>,
  ): Promise<Upstream> {
    const settings = entry.settings;
    // Backoff after failures: a short one is waited out, a long one answers at once (lists leave the
    // backend out instead of stalling on it).
    const waitMs = entry.nextStartAt - Date.now();
    if (waitMs > MAX_WAITED_BACKOFF_MS) {
      throw new JsonRpcError(
        JSONRPC.backendUnavailable,
        `Backend "${settings.name}" is down (${entry.lastError ?? "failed"}); retrying in ${
          Math.ceil(waitMs / 1000)
        } s`,
      );
    }
    if (waitMs > 0) await new Promise((resolve) => setTimeout(resolve, waitMs));
    if (settings.transport.kind === "stdio") await this.#makeRoom(entry);
    // The client SDK is imported with the first connection: an idle gateway never pays its memory.
    const sdk = await loadClientSdk();

    const user = { id: caller.id, name: caller.name, email: caller.email, groups: caller.groups };
    const context: TemplateContext | undefined = settings.perUser
      ? { user, serviceToken: (service) => tokens.get(service)! }
      : undefined;
    // HTTP backends render per-user headers on every request, with the tokens as they are then.
    const freshHeaders = settings.perUser && settings.transport.kind !== "stdio"
      ? async () => {
        const current = await this.#tokensFor(settings, caller);
        return renderValues(
          (settings.transport as { headers: Readonly<Record<string, Template>> }).headers,
          { user, serviceToken: (service) => current.get(service)! },
        );
      }
      : undefined;
    // A backend with its own OAuth: a 401 is this user's token refused there (revoked, expired). The token
    // is forgotten, so this user's next call asks for consent before it reaches this connection.
    const refusing = remoteOAuthOf(settings) && this.#serviceTokenRefused;
    const refused = refusing ? () => refusing(caller, remoteOAuthServiceName(settings.name)) : undefined;
    const upstream = new Upstream({
      sdk,
      backend: settings,
      key,
      owner,
      serviceTokens: tokens,
      log: this.#log,
      hooks: {
        onBroadcast: (_upstream, notification) => {
          for (const listener of this.#broadcastListeners) listener(settings.name, key, notification);
        },
        onRefused: (refusing, method) => {
          entry.refused += 1;
          this.#log.warn("backend message not relayed: no single session to send it to", {
            backend: settings.name,
            method,
            in_flight: refusing.describeInFlight(),
          });
        },
        onClosed: (closed) => this.#onClosed(entry, closed),
        onSessionRenewed: () => {
          entry.restarts += 1;
          this.#onRestart?.(settings.name);
        },
        onTimeout: (_upstream, method) => this.#onTimeout?.(settings.name, method),
        onReachability: (_upstream, error) => {
          entry.lastError = error;
          if (error !== undefined) this.#onFailure?.(settings.name, error);
        },
      },
      // A Streamable HTTP backend that forgot its session gets a new one on a fresh transport.
      ...(settings.transport.kind === "http"
        ? { newTransport: () => createClientTransport(sdk, settings, context, freshHeaders, refused) }
        : {}),
    });
    // A value that cannot be rendered (a user without a token for a service) is that caller's problem,
    // not the backend's: it fails this call without counting against the backend.
    let transport: ClientTransport;
    try {
      transport = createClientTransport(sdk, settings, context, freshHeaders, refused);
    } catch (error) {
      await upstream.close();
      throw error;
    }
    try {
      const started = performance.now();
      await upstream.start(transport, settings.callTimeoutSeconds * 1000);
      entry.latencyMs = Math.round(performance.now() - started);
      entry.capabilities = upstream.capabilities();
      entry.lastError = undefined;
      entry.live.add(upstream);
      this.#log.info("backend connected", {
        backend: settings.name,
        key: key.split(":")[0],
        pid: upstream.pid,
      });
      return upstream;
    } catch (error) {
      await upstream.close();
      // A user's refused token is that user's problem (they connect again), not the backend's.
      if (error instanceof ConsentRequiredError) throw error;
      this.#recordFailure(entry, error instanceof Error ? error.message : String(error));
      if (error instanceof JsonRpcError) throw error;
      throw new JsonRpcError(
        JSONRPC.backendUnavailable,
        `Backend "${settings.name}" is unavailable: ${entry.lastError}`,
      );
    }
  }

  #recordFailure(entry: BackendEntry, message: string): void {
    entry.failures += 1;
    entry.lastError = message;
    this.#onFailure?.(entry.settings.name, message);
    entry.nextStartAt = Date.now() + Math.min(MAX_BACKOFF_MS, BASE_BACKOFF_MS * 2 ** (entry.failures - 1));
    this.#log.warn("backend failed", {
      backend: entry.settings.name,
      error: message,
      failures: entry.failures,
    });
  }

  #onClosed(entry: BackendEntry, upstream: Upstream): void {
    entry.live.delete(upstream);
    for (const [key, promise] of entry.upstreams) {
      promise.then((candidate) => {
        if (candidate === upstream && entry.upstreams.get(key) === promise) entry.upstreams.delete(key);
      }, () => {});
    }
    // A connection that never came up is not a restart; #start counts its failure.
    if (upstream.crashed && upstream.startedAt > 0 && !entry.retiring && !this.#closed) {
      if (Date.now() - upstream.startedAt >= STABLE_AFTER_MS) entry.failures = 0;
      entry.restarts += 1;
      this.#onRestart?.(entry.settings.name);
      this.#recordFailure(entry, upstream.lastError ?? "connection closed");
    }
  }

  /**
   * Under `max_processes`, stops the least recently used idle process, or refuses. Never waits on a
   * connection still starting: the one this makes room for is already in `upstreams`, and would wait on
   * itself forever.
   */
  async #makeRoom(entry: BackendEntry): Promise<void> {
    const running = [...entry.live].filter((upstream) => upstream.state === "up");
    if (running.length < entry.settings.maxProcesses) return;
    const idle = running.filter((upstream) => upstream.inFlight === 0).sort((a, b) =>
      a.lastUsedAt - b.lastUsedAt
    );
    const victim = idle[0];
    if (!victim) {
      throw new JsonRpcError(
        JSONRPC.backendUnavailable,
        `Backend "${entry.settings.name}" is at its limit of ${entry.settings.maxProcesses} processes, all busy; retry shortly`,
      );
    }
    this.#log.info("stopping least recently used process to make room", { backend: entry.settings.name });
    await victim.close();
  }

  #stopIdle(): void {
    const now = Date.now();
    for (const entry of this.#entries.values()) {
      if (entry.settings.transport.kind !== "stdio") continue;
      const idleMs = entry.settings.idleTimeoutSeconds * 1000;
      void settledUpstreams(entry).then((upstreams) => {
        for (const upstream of upstreams) {
          if (upstream.state === "up" && upstream.inFlight === 0 && now - upstream.lastUsedAt >= idleMs) {
            this.#log.info("stopping idle backend process", { backend: entry.settings.name });
            void upstream.close();
          }
        }
      });
    }
  }

  /**
   * Pings every open connection, recording latency and failures for the status page: a backend whose
   * checks fail shows down until one passes (which clears its last error).
   */
  async checkHealth(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map((entry) =>
        checkBackendHealth(entry, () => this.upstream(entry.settings.name, ANONYMOUS))
      ),
    );
  }

  /** Closes the connections a front session owned (isolation: session). */
  releaseSession(sessionId: string): void {
    for (const entry of this.#entries.values()) {
      const promise = entry.upstreams.get(`session:${sessionId}`);
      if (!promise) continue;
      entry.upstreams.delete(`session:${sessionId}`);
      promise.then((upstream) => upstream.close(), () => {});
    }
  }

  /**
   * Applies a reload: unchanged backends keep their connections; changed and removed ones stop taking
   * new calls at once and are closed when their calls in flight have finished.
   */
  apply(next: Registry, diff: BackendDiff): void {
    for (const name of [...diff.removed, ...diff.changed]) {
      const old = this.#entries.get(name);
      if (!old) continue;
      old.retiring = true;
      this.#entries.delete(name);
      void this.#drain(old);
    }
    for (const name of [...diff.added, ...diff.changed]) {
      this.#entries.set(name, newBackendEntry(next.backends[name]!));
    }
    for (const name of diff.unchanged) {
      const entry = this.#entries.get(name);
      if (entry) entry.settings = next.backends[name]!;
    }
  }

  async #drain(entry: BackendEntry): Promise<void> {
    const upstreams = await settledUpstreams(entry);
    const deadline = Date.now() + entry.settings.callTimeoutSeconds * 1000;
    while (upstreams.some((upstream) => upstream.inFlight > 0) && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    await Promise.all(upstreams.map((upstream) => upstream.close()));
  }

  /** A snapshot for the status page and /readyz. */
  async status(): Promise<BackendStatus[]> {
    return await Promise.all([...this.#entries.values()].map(backendStatus));
  }

  async close(): Promise<void> {
    this.#closed = true;
    clearInterval(this.#sweep);
    clearInterval(this.#health);
    await Promise.all([...this.#entries.values()].map(async (entry) => {
      await Promise.all((await settledUpstreams(entry)).map((upstream) => upstream.close()));
    }));
  }
}
