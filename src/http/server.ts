/**
 * Starts the gateway's HTTP server: the connection guard on the public address, `Deno.serve` behind it,
 * with the registry's connection bounds fitted to the process's open-file limit.
 */

import type { GatewaySettings } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { isTrustedProxy } from "../core/addresses.ts";
import {
  type ConnectionBounds,
  ConnectionGuard,
  type CutReason,
  type InnerHandler,
} from "./connection_guard.ts";

export interface RunningServer {
  /** The address actually bound (port 0 asks the system for a free one). */
  readonly hostname: string;
  readonly port: number;
  /** Open client connections now. */
  readonly openConnections: number;
  /**
   * Stops accepting connections and waits for in-flight requests, at most `timeoutMs`; resolves
   * true when they all finished, false when the bound ran out first. At the bound `atBound` may answer
   * the requests still running; their answers get a moment to be sent before connections close.
   */
  shutdown(timeoutMs: number, atBound?: () => void): Promise<boolean>;
  /** Resolves once the listener has closed. */
  readonly finished: Promise<void>;
}

/** The gateway settings the server reads. */
export type ConnectionSettings = Pick<
  GatewaySettings,
  | "headerTimeoutSeconds"
  | "bodyTimeoutSeconds"
  | "keepaliveTimeoutSeconds"
  | "maxConnections"
  | "maxConnectionsPerAddress"
  | "trustedProxies"
>;

/** Each relayed connection holds three descriptors: the client's, and both ends of the relay. */
const DESCRIPTORS_PER_CONNECTION = 3;

/**
 * The soft limit on open files of this process, when the system tells it. Asked of a shell, which inherits
 * the limit (Deno lets only fully privileged programs read `/proc/self/limits`).
 */
export function openFileLimit(): number | undefined {
  try {
    const output = new Deno.Command("/bin/sh", { args: ["-c", "ulimit -n"], stdin: "null", stderr: "null" })
      .outputSync();
    const text = new TextDecoder().decode(output.stdout).trim();
    return output.success && /^\d+$/.test(text) ? Number(text) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The connection caps in force: the registry's, lowered where the open-file limit could not hold them
 * (a quarter of the descriptors is left for the store, backends and their pipes; one address may hold at
 * most half of the connections then).
 */
export function fittedCaps(
  settings: Pick<GatewaySettings, "maxConnections" | "maxConnectionsPerAddress">,
  fileLimit: number | undefined,
): { maxConnections: number; maxConnectionsPerAddress: number; lowered: boolean } {
  if (fileLimit === undefined) {
    return { ...pickCaps(settings), lowered: false };
  }
  const budget = Math.max(
    1,
    Math.floor((fileLimit - Math.max(64, fileLimit / 4)) / DESCRIPTORS_PER_CONNECTION),
  );
  if (settings.maxConnections <= budget) return { ...pickCaps(settings), lowered: false };
  return {
    maxConnections: budget,
    maxConnectionsPerAddress: Math.min(
      settings.maxConnectionsPerAddress,
      Math.max(1, Math.floor(budget / 2)),
    ),
    lowered: true,
  };
}

function pickCaps(settings: Pick<GatewaySettings, "maxConnections" | "maxConnectionsPerAddress">) {
  return {
    maxConnections: settings.maxConnections,
    maxConnectionsPerAddress: settings.maxConnectionsPerAddress,
  };
}

/** Listens on `hostname:port` behind the connection guard and hands every request to `handler`. */
export function startServer(options: {
  hostname: string;
  port: number;
  handler: InnerHandler;
  /** The gateway settings in force (read again for every connection, so reloads apply). */
  settings: () => ConnectionSettings;
  log: Logger;
  onCut?: (reason: CutReason) => void;
}): RunningServer {
  const { log } = options;
  const fileLimit = openFileLimit();
  let fittedFor: ConnectionSettings | undefined;
  let bounds: ConnectionBounds | undefined;
  const currentBounds = (): ConnectionBounds => {
    const settings = options.settings();
    if (bounds && fittedFor === settings) return bounds;
    const caps = fittedCaps(settings, fileLimit);
    if (caps.lowered && fittedFor?.maxConnections !== settings.maxConnections) {
      log.warn(
        "connection caps lowered to fit the open-file limit; raise the limit (LimitNOFILE) to keep them",
        {
          open_file_limit: fileLimit,
          max_connections: caps.maxConnections,
          max_connections_per_address: caps.maxConnectionsPerAddress,
        },
      );
    }
    fittedFor = settings;
    const trusted = settings.trustedProxies;
    bounds = {
      headerTimeoutMs: settings.headerTimeoutSeconds * 1000,
      bodyTimeoutMs: settings.bodyTimeoutSeconds * 1000,
      keepaliveTimeoutMs: settings.keepaliveTimeoutSeconds * 1000,
      maxConnections: caps.maxConnections,
      maxConnectionsPerAddress: caps.maxConnectionsPerAddress,
      exempt: (address) => trusted.length > 0 && isTrustedProxy(address, trusted),
    };
    return bounds;
  };
  const guard = new ConnectionGuard({
    hostname: options.hostname,
    port: options.port,
    handler: options.handler,
    bounds: currentBounds,
    log,
    onCut: options.onCut,
    onError: (error) => {
      log.error("unhandled request error", { error });
      return new Response(JSON.stringify({ error: "server_error", error_description: "Internal error" }), {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    },
  });
  let shutdownPromise: Promise<boolean> | undefined;
  return {
    hostname: guard.hostname,
    port: guard.port,
    get openConnections() {
      return guard.open;
    },
    finished: guard.finished,
    shutdown(timeoutMs, atBound) {
      shutdownPromise ??= guard.shutdown(timeoutMs, atBound);
      return shutdownPromise;
    },
  };
}

/** `http://host:port` for an address, bracketing IPv6 and naming the wildcard by loopback. */
export function urlOf(hostname: string, port: number): string {
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "[::1]" : hostname;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}
