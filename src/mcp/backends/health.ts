// A backend's health: its open connections pinged, and the state the status page and /readyz show of it.
import { remoteOAuthOf } from "../../config/types.ts";
import { type BackendEntry, settledUpstreams } from "./backend_entry.ts";

/** What the status page shows of a backend. */
export interface BackendStatus {
  readonly name: string;
  readonly transport: "stdio" | "http" | "sse";
  readonly state: "up" | "down" | "starting" | "idle";
  readonly lastError: string | undefined;
  readonly latencyMs: number | undefined;
  readonly processes: number;
  readonly refused: number;
  readonly restarts: number;
}

/** How long a health check waits for its answer. */
const HEALTH_TIMEOUT_MS = 5000;

/**
 * Pings every open connection of a backend, recording latency and failures for the status page: a backend
 * whose checks fail shows down until one passes (which clears its last error). `connect` starts the
 * shared connection of an HTTP backend.
 */
export async function checkBackendHealth(
  entry: BackendEntry,
  connect: () => Promise<unknown>,
): Promise<void> {
  const { settings } = entry;
  if (settings.transport.kind !== "stdio" && !settings.perUser && entry.upstreams.size === 0) {
    // An HTTP backend nobody uses yet: connecting is the health check (and learns its capabilities).
    await connect().catch(() => {});
    return;
  }
  // A backend with its own OAuth has only its users' connections, each with that user's token: whether one
  // user's token still works is not the backend's health (the user's next call finds out, and asks them).
  if (remoteOAuthOf(settings) !== undefined) return;
  for (const upstream of await settledUpstreams(entry)) {
    if (upstream.state !== "up") continue;
    const started = performance.now();
    try {
      // Failures reach entry.lastError and onFailure through the upstream's onReachability hook.
      await upstream.checkHealth(HEALTH_TIMEOUT_MS);
      entry.latencyMs = Math.round(performance.now() - started);
      entry.lastError = undefined;
    } catch {
      // Recorded by the hook.
    }
  }
}

/** A backend as the status page and /readyz show it. */
export async function backendStatus(entry: BackendEntry): Promise<BackendStatus> {
  const upstreams = (await settledUpstreams(entry)).filter((upstream) => upstream.state !== "closed");
  const starting = upstreams.some((upstream) => upstream.state === "starting");
  const connected = upstreams.filter((upstream) => upstream.state === "up");
  // Connected is not up: a connection whose calls or health checks fail is down until one succeeds.
  const state = connected.some((upstream) => !upstream.unreachable)
    ? "up"
    : connected.length > 0
    ? "down"
    : starting
    ? "starting"
    : entry.failures > 0
    ? "down"
    : "idle";
  return {
    name: entry.settings.name,
    transport: entry.settings.transport.kind,
    state,
    lastError: entry.lastError,
    latencyMs: entry.latencyMs,
    processes: entry.settings.transport.kind === "stdio" ? upstreams.length : 0,
    refused: entry.refused,
    restarts: entry.restarts,
  };
}
