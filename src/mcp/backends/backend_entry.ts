// A backend's record in the pool: its settings, its connections by isolation key, and what the status page
// shows of it (failures, backoff, latency, last error).
import type { ServerCapabilities } from "@modelcontextprotocol/client";
import type { BackendSettings } from "../../config/types.ts";
import type { Upstream } from "./upstream.ts";

export interface BackendEntry {
  settings: BackendSettings;
  upstreams: Map<string, Promise<Upstream>>;
  failures: number;
  nextStartAt: number;
  capabilities: ServerCapabilities | undefined;
  lastError: string | undefined;
  latencyMs: number | undefined;
  refused: number;
  restarts: number;
  retiring: boolean;
  /** Connections that finished starting and have not closed: read without waiting on a start. */
  live: Set<Upstream>;
}

export function newBackendEntry(settings: BackendSettings): BackendEntry {
  return {
    settings,
    upstreams: new Map(),
    failures: 0,
    nextStartAt: 0,
    capabilities: undefined,
    lastError: undefined,
    latencyMs: undefined,
    refused: 0,
    restarts: 0,
    retiring: false,
    live: new Set(),
  };
}

/** The entry's connections once their starts have settled, those that failed to start left out. */
export async function settledUpstreams(entry: BackendEntry): Promise<Upstream[]> {
  const results = await Promise.allSettled(entry.upstreams.values());
  return results.flatMap((result) => result.status === "fulfilled" ? [result.value] : []);
}
