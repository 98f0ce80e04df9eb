/** The gauges of /metrics: version, uptime, open connections, backend processes and state, sessions. */
import type { RunningServer } from "../http/server.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { BackendPool } from "../mcp/backends/pool.ts";
import type { McpFront } from "../mcp/front/http_entry.ts";
import { VERSION } from "../version.ts";

export function registerGauges(parts: {
  metrics: Metrics;
  server: RunningServer;
  pool: BackendPool;
  front: McpFront;
  startedAt: number;
}): void {
  const { metrics, server, pool, front, startedAt } = parts;
  metrics.gauge(
    "gatehouse_info",
    "Always 1; the version is a label.",
    () => [{ labels: { version: VERSION }, value: 1 }],
  );
  metrics.gauge("gatehouse_uptime_seconds", "Seconds since the gateway started.", () => [{
    labels: {},
    value: Math.floor((Date.now() - startedAt) / 1000),
  }]);
  metrics.gauge("gatehouse_connections_open", "Open client connections.", () => [{
    labels: {},
    value: server.openConnections,
  }]);
  metrics.gauge(
    "gatehouse_backend_processes",
    "Running stdio processes, by backend.",
    async () =>
      (await pool.status()).map((backend) => ({
        labels: { backend: backend.name },
        value: backend.processes,
      })),
  );
  metrics.gauge(
    "gatehouse_backend_up",
    "1 when a backend has a live connection that answers (calls and health checks), else 0.",
    async () =>
      (await pool.status()).map((backend) => ({
        labels: { backend: backend.name },
        value: backend.state === "up" ? 1 : 0,
      })),
  );
  metrics.gauge("gatehouse_sessions", "Open 2025-era MCP sessions.", () => [{
    labels: { era: "legacy" },
    value: front.stats().legacySessions,
  }]);
}
