/**
 * Stopping the gateway: stop watching, drain requests within `gateway.shutdown_timeout` (answering calls
 * still running then with "shutting down"), then close sessions, backends, workers and the store.
 */
import type { RegistryHolder } from "../config/current.ts";
import type { RegistryWatcher } from "../config/watch.ts";
import type { RunningServer } from "../http/server.ts";
import type { Logger } from "../log/logger.ts";
import type { BackendPool } from "../mcp/backends/pool.ts";
import type { McpFront } from "../mcp/front/http_entry.ts";
import type { Store } from "../store/store.ts";

export async function shutdownGateway(parts: {
  holder: RegistryHolder;
  log: Logger;
  watcher: RegistryWatcher | undefined;
  server: RunningServer;
  front: McpFront;
  pool: BackendPool;
  housekeeping: { stop(): void };
  passwords: { close(): void };
  store: Store;
  /** Work the start left running (the first start's admin, the MCP SDKs loading): finished before the store closes. */
  startupWork?: Promise<void>;
}): Promise<void> {
  const { holder, log, watcher, server, front, pool, housekeeping, passwords, store } = parts;
  const timeoutSeconds = holder.current().registry.gateway.shutdownTimeoutSeconds;
  log.info("gatehouse stopping", { timeout_seconds: timeoutSeconds });
  watcher?.close();
  // Calls still running at the bound are answered "shutting down" rather than cut off.
  const draining = server.shutdown(timeoutSeconds * 1000, () => front.failRunningCalls());
  // Open event streams never end by themselves: end them, so that only real work holds the drain.
  front.endStreams();
  const drained = await draining;
  if (!drained) log.warn("requests still running at the shutdown bound; closing anyway");
  await front.close();
  await pool.close();
  housekeeping.stop();
  await parts.startupWork;
  passwords.close();
  store.close();
  log.info("gatehouse stopped", { drained });
}
