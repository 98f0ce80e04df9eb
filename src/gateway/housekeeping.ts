/**
 * Periodic clean-up: expired grants, sign-in sessions and records of MCP sessions every 10 minutes, audit
 * rows past retention hourly.
 */
import type { AuditLog } from "../audit/audit.ts";
import type { RegistryHolder } from "../config/current.ts";
import type { Logger } from "../log/logger.ts";
import type { BrowserSessions } from "../login/sessions.ts";
import type { AuthorizationServer } from "../oauth/authorization_server.ts";

const PURGE_INTERVAL_MS = 10 * 60_000;
const AUDIT_PRUNE_INTERVAL_MS = 60 * 60_000;

/** Runs the clean-ups once for the audit log now, then on their intervals; `stop()` ends them. */
export function startHousekeeping(parts: {
  holder: RegistryHolder;
  authorizationServer: AuthorizationServer;
  sessions: BrowserSessions;
  audit: AuditLog;
  log: Logger;
  /** Deletes the records of 2025-era MCP sessions no replica saw for an hour; returns how many (McpFront). */
  pruneMcpSessions?: () => number;
  /** Deletes shared rate-limit and throttle counts past their window (absent: they are in memory). */
  pruneCounters?: (now: number) => void;
}): { stop(): void } {
  const { holder, authorizationServer, sessions, audit, log } = parts;
  const pruneAudit = () => {
    const retentionSeconds = holder.current().registry.gateway.auditRetentionSeconds;
    const pruned = audit.prune(retentionSeconds * 1000);
    if (pruned > 0) log.info("audit rows past their retention deleted", { rows: pruned });
  };
  const pruneMcpSessions = () => {
    try {
      const pruned = parts.pruneMcpSessions?.() ?? 0;
      if (pruned > 0) log.debug("records of expired MCP sessions deleted", { rows: pruned });
    } catch (error) {
      log.warn("deleting the records of expired MCP sessions failed", { error });
    }
  };
  const purge = setInterval(() => {
    pruneMcpSessions();
    authorizationServer.purgeExpired();
    sessions.purgeExpired();
  }, PURGE_INTERVAL_MS);
  Deno.unrefTimer(Number(purge));
  pruneAudit();
  const auditPrune = setInterval(pruneAudit, AUDIT_PRUNE_INTERVAL_MS);
  Deno.unrefTimer(Number(auditPrune));
  const { pruneCounters } = parts;
  const countersPrune = pruneCounters && setInterval(() => {
    try {
      pruneCounters(Date.now());
    } catch (error) {
      log.warn("pruning the shared rate-limit and throttle counts failed", { error });
    }
  }, PURGE_INTERVAL_MS);
  if (countersPrune !== undefined) Deno.unrefTimer(Number(countersPrune));
  return {
    stop() {
      clearInterval(purge);
      clearInterval(auditPrune);
      clearInterval(countersPrune);
    },
  };
}
