/**
 * The connection layer in front of the HTTP server: it accepts TCP connections itself, caps them per
 * client address and in total, times out slow request heads, slow bodies and idle keep-alive connections,
 * and survives `accept()` failures such as running out of file descriptors. Each admitted connection is
 * relayed byte for byte to an HTTP server on a private loopback port, which learns the real peer address
 * through the guard (by the relay connection's source port).
 */

import type { Logger } from "../log/logger.ts";
import { addressNetwork } from "../core/addresses.ts";
import { GuardedConnection } from "./guarded_connection.ts";
import { BurstLog } from "../log/burst_log.ts";

export interface ConnectionBounds {
  readonly headerTimeoutMs: number;
  readonly bodyTimeoutMs: number;
  readonly keepaliveTimeoutMs: number;
  /** Open connections in total. */
  readonly maxConnections: number;
  /** Open connections of one client address (IPv6: its /64). */
  readonly maxConnectionsPerAddress: number;
  /** Peers not held to the per-address cap (trusted reverse proxies). */
  readonly exempt: (address: string) => boolean;
}

/** Why a connection was refused or cut. */
export type CutReason =
  | "total"
  | "per_address"
  | "evicted"
  | "header_timeout"
  | "body_timeout"
  | "unavailable";

export type InnerHandler = (
  request: Request,
  info: Deno.ServeHandlerInfo<Deno.NetAddr>,
) => Response | Promise<Response>;

export interface GuardOptions {
  hostname: string;
  port: number;
  handler: InnerHandler;
  /** Read on every connection, so a reload applies to the next one. */
  bounds: () => ConnectionBounds;
  log: Logger;
  onCut?: (reason: CutReason) => void;
  onError: (error: unknown) => Response | Promise<Response>;
}

/** Per direction and connection; an idle connection holds its two buffers, so they are kept small. */
const RELAY_BUFFER = 16 * 1024;
const ACCEPT_BACKOFF_MIN_MS = 20;
const ACCEPT_BACKOFF_MAX_MS = 1000;

export class ConnectionGuard {
  readonly hostname: string;
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #options: GuardOptions;
  readonly #connections = new Set<GuardedConnection>();
  /** Connections by `innerPort * 65536 + relay source port`. */
  readonly #byRelayPort = new Map<number, GuardedConnection>();
  readonly #perNetwork = new Map<string, number>();
  readonly #servers = new Set<Deno.HttpServer<Deno.NetAddr>>();
  #inner: { server: Deno.HttpServer<Deno.NetAddr>; port: number } | undefined;
  #innerStarting: Promise<void> | undefined;
  #stopping = false;
  readonly #whenEmpty: (() => void)[] = [];
  #sweeper: ReturnType<typeof setTimeout> | undefined;
  readonly #acceptLog: BurstLog;
  readonly #cutLogs = new Map<CutReason, BurstLog>();
  readonly finished: Promise<void>;

  constructor(options: GuardOptions) {
    this.#options = options;
    this.#listener = Deno.listen({ hostname: options.hostname, port: options.port, transport: "tcp" });
    const address = this.#listener.addr;
    this.hostname = address.hostname;
    this.port = address.port;
    let lastAcceptError = "";
    this.#acceptLog = new BurstLog((suppressed) =>
      options.log.error("accepting a connection failed; backing off and listening on", {
        error: lastAcceptError,
        ...(suppressed > 0 ? { repeated: suppressed } : {}),
      })
    );
    this.#startInner();
    this.#scheduleSweep();
    this.finished = this.#acceptLoop((message) => lastAcceptError = message);
  }

  /** Open connections now. */
  get open(): number {
    return this.#connections.size;
  }

  async #acceptLoop(noteError: (message: string) => void): Promise<void> {
    let backoff = ACCEPT_BACKOFF_MIN_MS;
    while (!this.#stopping) {
      let outer: Deno.TcpConn;
      try {
        outer = await this.#listener.accept();
        backoff = ACCEPT_BACKOFF_MIN_MS;
      } catch (error) {
        if (this.#stopping || error instanceof Deno.errors.BadResource) break;
        noteError(error instanceof Error ? error.message : String(error));
        this.#acceptLog.hit();
        await new Promise((resolve) => setTimeout(resolve, backoff));
        backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        continue;
      }
      this.#admit(outer);
    }
  }

  #admit(outer: Deno.TcpConn): void {
    const peer = outer.remoteAddr;
    const bounds = this.#options.bounds();
    const network = addressNetwork(peer.hostname);
    const fromNetwork = this.#perNetwork.get(network) ?? 0;
    // At a cap, a connection nobody is being served on makes room (the one idle longest, and first one
    // that never sent a whole request): idle sockets cannot keep a client out. Else the newcomer is refused.
    if (fromNetwork >= bounds.maxConnectionsPerAddress && !bounds.exempt(peer.hostname)) {
      if (!this.#evict((connection) => connection.network === network)) {
        return this.#refuse(outer, "per_address");
      }
    }
    if (this.#connections.size >= bounds.maxConnections && !this.#evict(() => true)) {
      return this.#refuse(outer, "total");
    }
    const admitted = this.#perNetwork.get(network) ?? 0;
    try {
      outer.setNoDelay(true);
    } catch {
      // the peer already left
    }
    const connection = new GuardedConnection(outer, peer, network);
    this.#connections.add(connection);
    this.#perNetwork.set(network, admitted + 1);
    this.#relay(connection).finally(() => this.#forget(connection));
  }

  /** Closes the connection among `candidates` that is best given up; false when every one is busy. */
  #evict(candidates: (connection: GuardedConnection) => boolean): boolean {
    let victim: GuardedConnection | undefined;
    for (const connection of this.#connections) {
      if (connection.inFlight > 0 || connection.bodySince !== undefined || !candidates(connection)) continue;
      const neverServed = connection.served === 0;
      const better = !victim || (neverServed && victim.served > 0) ||
        (neverServed === (victim.served === 0) && connection.lastActivity < victim.lastActivity);
      if (better) victim = connection;
    }
    if (!victim) return false;
    this.#noteCut("evicted");
    this.#forget(victim);
    return true;
  }

  #allClosed(): Promise<void> {
    if (this.#connections.size === 0) return Promise.resolve();
    const { promise, resolve } = Promise.withResolvers<void>();
    this.#whenEmpty.push(resolve);
    return promise;
  }

  #forget(connection: GuardedConnection): void {
    connection.close();
    if (!this.#connections.delete(connection)) return;
    if (this.#connections.size === 0) { for (const resolve of this.#whenEmpty.splice(0)) resolve(); }
    const left = (this.#perNetwork.get(connection.network) ?? 1) - 1;
    if (left > 0) this.#perNetwork.set(connection.network, left);
    else this.#perNetwork.delete(connection.network);
  }

  async #relay(connection: GuardedConnection): Promise<void> {
    const inner = await this.#connectInner();
    if (!inner) return this.#refuse(connection.outer, "unavailable");
    if (connection.closed) {
      inner.conn.close();
      return;
    }
    connection.inner = inner.conn;
    const key = inner.port * 65536 + inner.conn.localAddr.port;
    this.#byRelayPort.set(key, connection);
    try {
      let clientDone = false;
      const upstream = this.#pump(connection.outer, inner.conn, connection, true).then(() =>
        clientDone = true
      );
      const downstream = this.#pump(inner.conn, connection.outer, connection, false);
      await Promise.race([upstream, downstream]);
      // The client stopped sending (a half close): let the answers it asked for finish, then close.
      if (clientDone && !connection.closed) await downstream;
    } finally {
      this.#byRelayPort.delete(key);
    }
  }

  async #pump(from: Deno.Conn, to: Deno.Conn, connection: GuardedConnection, fromClient: boolean) {
    const buffer = new Uint8Array(RELAY_BUFFER);
    try {
      while (!connection.closed) {
        const read = await from.read(buffer);
        if (read === null) break;
        connection.lastActivity = Date.now();
        const bytes = buffer.subarray(0, read);
        if (fromClient) connection.framing.feed(bytes);
        for (let written = 0; written < read;) written += await to.write(bytes.subarray(written));
      }
      if (fromClient) await to.closeWrite().catch(() => {});
    } catch {
      // either side went away
    }
  }

  async #connectInner(): Promise<{ conn: Deno.TcpConn; port: number } | undefined> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (!this.#inner) await (this.#innerStarting ?? this.#startInner());
      const inner = this.#inner;
      if (!inner) continue;
      try {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port: inner.port });
        conn.setNoDelay(true);
        return { conn, port: inner.port };
      } catch (error) {
        this.#options.log.debug("relay connection failed", { error });
        await new Promise((resolve) => setTimeout(resolve, ACCEPT_BACKOFF_MIN_MS));
      }
    }
    return undefined;
  }

  /**
   * Starts the HTTP server behind the guard. Should its own accept loop ever fail (it ends on the first
   * error, such as running out of descriptors), a new one is started and the old one's connections live on.
   */
  #startInner(): Promise<void> {
    this.#innerStarting = (async () => {
      for (let backoff = ACCEPT_BACKOFF_MIN_MS; !this.#stopping;) {
        try {
          let port = 0;
          const server = Deno.serve({
            hostname: "127.0.0.1",
            port: 0,
            onListen: () => {},
            onError: this.#options.onError,
          }, (request, info) => this.#handle(request, info, port));
          port = server.addr.port;
          this.#servers.add(server);
          this.#inner = { server, port };
          server.finished.then(() => this.#servers.delete(server), (error) => {
            this.#servers.delete(server);
            if (this.#inner?.server === server) this.#inner = undefined;
            if (this.#stopping) return;
            this.#options.log.error("the HTTP server stopped accepting; starting it again", { error });
            void this.#startInner();
          });
          return;
        } catch (error) {
          this.#options.log.error("starting the HTTP server failed; retrying", { error });
          await new Promise((resolve) => setTimeout(resolve, backoff));
          backoff = Math.min(backoff * 2, ACCEPT_BACKOFF_MAX_MS);
        }
      }
    })().finally(() => this.#innerStarting = undefined);
    return this.#innerStarting;
  }

  #handle(request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>, innerPort: number) {
    const connection = this.#byRelayPort.get(innerPort * 65536 + info.remoteAddr.port);
    if (!connection) {
      // Only the guard's own relay connections are served: this port is not the gateway's address.
      return new Response(null, { status: 421 });
    }
    connection.inFlight++;
    connection.served++;
    const done = () => {
      connection.inFlight--;
      connection.lastActivity = Date.now();
    };
    info.completed.then(done, done);
    return this.#options.handler(request, { remoteAddr: connection.peer, completed: info.completed });
  }

  #refuse(outer: Deno.TcpConn, reason: CutReason): void {
    this.#noteCut(reason);
    const body = JSON.stringify({
      error: "temporarily_unavailable",
      error_description: reason === "per_address"
        ? "Too many connections from this address"
        : "Too many connections; try again shortly",
    });
    const answer =
      "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 5\r\n" +
      `connection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`;
    outer.write(new TextEncoder().encode(answer)).catch(() => {}).finally(() => {
      try {
        outer.close();
      } catch {
        // already closed
      }
    });
  }

  #noteCut(reason: CutReason): void {
    this.#options.onCut?.(reason);
    let burst = this.#cutLogs.get(reason);
    if (!burst) {
      burst = new BurstLog((suppressed) =>
        this.#options.log.warn("connection refused or cut", {
          reason,
          ...(suppressed > 0 ? { repeated: suppressed } : {}),
        })
      );
      this.#cutLogs.set(reason, burst);
    }
    burst.hit();
  }

  #sweepPeriod(): number {
    const bounds = this.#options.bounds();
    const shortest = Math.min(bounds.headerTimeoutMs, bounds.bodyTimeoutMs, bounds.keepaliveTimeoutMs);
    return Math.max(50, Math.min(1000, shortest / 4));
  }

  #scheduleSweep(): void {
    if (this.#stopping) return;
    this.#sweeper = setTimeout(() => {
      this.#sweep();
      this.#scheduleSweep();
    }, this.#sweepPeriod());
  }

  #sweep(): void {
    const bounds = this.#options.bounds();
    const now = Date.now();
    for (const connection of this.#connections) {
      if (connection.headSince !== undefined && now - connection.headSince > bounds.headerTimeoutMs) {
        this.#cut(connection, "header_timeout");
      } else if (connection.bodySince !== undefined && now - connection.bodySince > bounds.bodyTimeoutMs) {
        this.#cut(connection, "body_timeout");
      } else if (
        connection.inFlight === 0 && connection.headSince === undefined &&
        connection.bodySince === undefined &&
        now - connection.lastActivity > bounds.keepaliveTimeoutMs
      ) {
        connection.close();
      }
    }
  }

  #cut(connection: GuardedConnection, reason: CutReason): void {
    this.#noteCut(reason);
    connection.close();
  }

  /**
   * Stops accepting, lets requests in flight finish for at most `timeoutMs`, then closes every connection.
   * At the bound, `atBound` may have the remaining requests answered; they get `graceMs` more to be sent.
   * Resolves true when everything finished within the bound.
   */
  async shutdown(timeoutMs: number, atBound?: () => void, graceMs = 1000): Promise<boolean> {
    this.#stopping = true;
    try {
      this.#listener.close();
    } catch {
      // already closed
    }
    // The servers finish their answers, then close their side; the relays pass the last bytes on and end.
    const drained = Promise.all([...this.#servers].map((server) => server.shutdown()))
      .then(() => this.#allClosed())
      .then(() => true as const);
    const result = await Promise.race([drained, delay(timeoutMs, false as const)]);
    if (!result && atBound) {
      atBound();
      await Promise.race([drained, delay(graceMs, false as const)]);
    }
    clearTimeout(this.#sweeper);
    for (const connection of this.#connections) connection.close();
    return result;
  }
}

/** Resolves with `value` after `ms`, without holding the process open. */
function delay<T>(ms: number, value: T): Promise<T> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(value), ms);
    Deno.unrefTimer(timer as unknown as number);
  });
}
