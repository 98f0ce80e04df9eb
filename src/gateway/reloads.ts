/** What a registry reload sets in motion: backends rebuilt before the swap, clients told after it. */
import type { RegistryHolder } from "../config/current.ts";
import type { Logger } from "../log/logger.ts";
import type { RecentEvents } from "../metrics/events.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { BackendPool } from "../mcp/backends/pool.ts";
import type { McpFront } from "../mcp/front/http_entry.ts";

/** Warns about settings that only a restart applies (the listener and the data directory). */
export function warnOnRestartOnlyChanges(holder: RegistryHolder, log: Logger): void {
  holder.onSwap(({ previous, next }) => {
    const before = previous.registry.gateway;
    const after = next.registry.gateway;
    if (before.listen.hostname !== after.listen.hostname || before.listen.port !== after.listen.port) {
      log.warn("gateway.listen changed: it takes effect at the next restart");
    }
    if (before.dataDir !== after.dataDir) {
      log.warn("gateway.data_dir changed: it takes effect at the next restart");
    }
    if (before.store !== after.store) {
      log.warn("gateway.store changed: it takes effect at the next restart");
    }
  });
}

/**
 * Build, swap, then stop: the pool prepares the next registry's backends (retiring changed and removed
 * ones once their calls finish); after the swap, sessions hear that lists or policies changed.
 */
export function reactToReloads(parts: {
  holder: RegistryHolder;
  pool: BackendPool;
  front: McpFront;
  metrics: Metrics;
  events: RecentEvents;
}): void {
  const { holder, pool, front, metrics, events } = parts;
  holder.onPrepare((next, diff) => pool.apply(next, diff));
  holder.onSwap(({ previous, next, diff }) => {
    if (diff.added.length + diff.removed.length + diff.changed.length > 0) front.listsChanged();
    else front.policiesChanged(previous.registry, next.registry);
    metrics.reloads.inc({ outcome: "applied" });
  });
  holder.onReject((problems) => {
    metrics.reloads.inc({ outcome: "rejected" });
    events.add("error", {
      user: undefined,
      backend: undefined,
      message: `registry rejected: ${problems.length} problem(s)`,
    });
  });
}
