import { resolve } from "node:path";
import { AuditLog } from "./audit/audit.ts";
import { Metrics } from "./metrics/metrics.ts";
import { RecentEvents } from "./metrics/events.ts";
import { statusReport } from "./status/status.ts";
import { createRegistryHolder, type RegistryHolder } from "./config/current.ts";
import { ConfigError, formatWarning } from "./config/errors.ts";
import { type LoadOptions, loadRegistry } from "./config/load.ts";
import { type RegistryWatcher, watchRegistry } from "./config/watch.ts";
import { createApp } from "./http/app.ts";
import { addressNetwork } from "./core/addresses.ts";
import { type RunningServer, startServer, urlOf } from "./http/server.ts";
import type { Logger } from "./log/logger.ts";
import { McpFront } from "./mcp/front/http_entry.ts";
import { BackendPool } from "./mcp/backends/pool.ts";
import { LocalAccounts } from "./login/local.ts";
import { UpstreamLogins } from "./login/providers.ts";
import { createIdentityCheck } from "./login/current_identity.ts";
import { createPasswordVerifier } from "./login/password.ts";
import { BrowserSessions } from "./login/sessions.ts";
import { SignInThrottle } from "./login/throttle.ts";
import { AuthorizationServer } from "./oauth/authorization_server.ts";
import type { MetadataDocumentFetcher } from "./oauth/client_metadata_document.ts";
import { ClientDirectory } from "./oauth/clients.ts";
import { loadOrCreateSigningKey } from "./oauth/keys.ts";
import { ServiceConnections } from "./services/connections.ts";
import { openVault } from "./services/vault.ts";
import { openStore, type Store } from "./store/store.ts";
import { VERSION } from "./version.ts";

export interface GatewayOptions {
  registryPath: string;
  /** Overrides from the command line. */
  listen?: string;
  dataDir?: string;
  log: Logger;
  /** Replaces where the registry reads env, files and directories (tests). */
  loadOptions?: Omit<LoadOptions, "listen" | "dataDir">;
  /** Watch the registry files and reload on change (default true). */
  watch?: boolean;
  /** How client ID metadata documents are fetched (tests serve them without the network). */
  clientMetadataFetcher?: MetadataDocumentFetcher;
  /** The clock of the audit log and the sign-in throttle (tests move it instead of waiting). */
  now?: () => number;
}

export interface RunningGateway {
  /** Where the gateway listens, as a URL. */
  readonly url: string;
  /** The public base URL: `gateway.public_url`, or the listening URL. */
  publicUrl(): string;
  readonly holder: RegistryHolder;
  readonly store: Store;
  readonly server: RunningServer;
  readonly watcher: RegistryWatcher | undefined;
  readonly pool: BackendPool;
  readonly front: McpFront;
  /** The audit table: sign-ins, grants, consents, connections, reloads, denials. */
  readonly audit: AuditLog;
  /** Drains in-flight requests (bounded by `gateway.shutdown_timeout`), then closes the store. */
  shutdown(): Promise<void>;
}

/**
 * Loads the registry (throwing ConfigError with every problem), opens the store, starts listening and
 * watching. Backends start lazily, so this is quick.
 */
export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const { log } = options;
  const registryPath = resolve(options.registryPath);
  const loadOptions: LoadOptions = {
    ...options.loadOptions,
    listen: options.listen,
    dataDir: options.dataDir,
  };
  const loaded = await loadRegistry(registryPath, loadOptions);
  if (!loaded.ok) throw new ConfigError(loaded.problems);
  if (loaded.warnings.length > 0) {
    log.warn("registry warnings", { warnings: loaded.warnings.map(formatWarning) });
  }
  const registry = loaded.registry;

  // Bind first: a taken port should fail before anything is written to disk.
  const { hostname, port } = registry.gateway.listen;
  let handle: (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response> =
    () => new Response("Starting", { status: 503 });
  let server: RunningServer;
  let settings = () => registry.gateway;
  // What /metrics counts and the status page lists as recent.
  const metrics = new Metrics();
  try {
    server = startServer({
      hostname,
      port,
      handler: (request, info) => handle(request, info),
      settings: () => settings(),
      log,
      onCut: (reason) => metrics.connectionsCut.inc({ reason }),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(`Cannot listen on ${hostname}:${port}: the address is already in use`);
    }
    throw error;
  }

  let store: Store;
  try {
    store = openStore(registry.gateway.dataDir, { log });
  } catch (error) {
    await server.shutdown(0);
    throw error;
  }
  const audit = new AuditLog(store, options.now);
  const pruneAudit = () => {
    const retentionSeconds = holder.current().registry.gateway.auditRetentionSeconds;
    const pruned = audit.prune(retentionSeconds * 1000);
    if (pruned > 0) log.info("audit rows past their retention deleted", { rows: pruned });
  };
  const dataDirMode = Deno.statSync(registry.gateway.dataDir).mode;
  if (dataDirMode !== null && (dataDirMode & 0o077) !== 0) {
    log.warn("the data directory is readable by other users; it holds keys and secrets: chmod 700 it", {
      data_dir: registry.gateway.dataDir,
    });
  }
  const holder = createRegistryHolder(registry, {
    onListenerError: (error) => log.error("registry swap listener failed", { error }),
  });
  holder.onSwap(({ previous, next }) => {
    const before = previous.registry.gateway;
    const after = next.registry.gateway;
    if (before.listen.hostname !== after.listen.hostname || before.listen.port !== after.listen.port) {
      log.warn("gateway.listen changed: it takes effect at the next restart");
    }
    if (before.dataDir !== after.dataDir) {
      log.warn("gateway.data_dir changed: it takes effect at the next restart");
    }
  });
  // Third-party tokens: encrypted at rest, handed to the backends that name their service.
  const vault = await openVault(registry.gateway.dataDir, registry.gateway.vaultKey);
  settings = () => holder.current().registry.gateway;
  const events = new RecentEvents();
  const connections = new ServiceConnections({
    store,
    registry: () => holder.current().registry,
    vault,
    log,
    audit,
    baseUrl: () => holder.current().registry.gateway.publicUrl ?? url,
    onRefresh: (service, outcome) => metrics.tokenRefreshes.inc({ service, outcome }),
  });
  const pool = new BackendPool(registry, {
    log,
    serviceToken: (caller, service) => connections.token(caller.id, service),
    onFailure: (backend, message) => events.add("error", { user: undefined, backend, message }),
    onRestart: (backend) => metrics.restarts.inc({ backend }),
    onTimeout: (backend, method) => metrics.timeouts.inc({ backend, method }),
  });
  const front = new McpFront({
    registry: () => holder.current().registry,
    pool,
    log,
    maxBodyBytes: () => holder.current().registry.gateway.maxBodyBytes,
    store,
    audit,
    metrics,
    events,
  });
  connections.onConnected = (userId, _service, elicitationId) =>
    front.consentCompleted(userId, elicitationId);
  // Build, swap, then stop: the pool retires changed and removed backends once their calls finish.
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
  const startedAt = Date.now();
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
  const url = urlOf(server.hostname, server.port);
  // The authorization server: its signing key is made on first start and kept in the data directory.
  const key = await loadOrCreateSigningKey(registry.gateway.dataDir);
  const currentRegistry = () => holder.current().registry;
  const baseUrl = () => currentRegistry().gateway.publicUrl ?? url;
  const clients = new ClientDirectory(store, currentRegistry, { fetcher: options.clientMetadataFetcher });
  const passwords = createPasswordVerifier();
  const accounts = new LocalAccounts(store, currentRegistry, passwords, {
    audit,
    throttle: new SignInThrottle({ now: options.now }),
  });
  const logins = new UpstreamLogins(currentRegistry, log, { audit, store, now: options.now });
  const currentIdentity = createIdentityCheck(accounts, logins);
  const authorizationServer = new AuthorizationServer({
    store,
    registry: currentRegistry,
    clients,
    key,
    log,
    audit,
    baseUrl,
    currentIdentity,
  });
  const sessions = new BrowserSessions(store);
  await accounts.bootstrapAdmin(log);
  const purge = setInterval(() => {
    authorizationServer.purgeExpired();
    sessions.purgeExpired();
  }, 10 * 60_000);
  Deno.unrefTimer(Number(purge));
  pruneAudit();
  const auditPrune = setInterval(pruneAudit, 60 * 60_000);
  Deno.unrefTimer(Number(auditPrune));
  const app = createApp({
    holder,
    store,
    log,
    mcp: { front, listenUrl: url, tokens: { key, isRevoked: (jti) => authorizationServer.isRevoked(jti) } },
    metrics,
    oauth: {
      server: authorizationServer,
      clients,
      sessions,
      accounts,
      logins,
      currentIdentity,
      connections,
      key,
      baseUrl,
      status: (viewer) => statusReport({ holder, pool, front, events, connections, startedAt }, viewer),
      onRegistrationThrottled: reportOncePerMinute((address) => {
        log.warn("registrations throttled", { address });
        audit.record("registration_throttled", undefined, { address });
      }),
    },
  });
  handle = (request, info) => app.fetch(request, { info });
  const watcher = options.watch === false
    ? undefined
    : watchRegistry({ registryPath, loadOptions, holder, log, audit });
  log.info("gatehouse listening", {
    version: VERSION,
    url,
    registry: registryPath,
    data_dir: registry.gateway.dataDir,
    backends: Object.keys(registry.backends),
  });

  let stopping: Promise<void> | undefined;
  return {
    url,
    publicUrl: () => holder.current().registry.gateway.publicUrl ?? url,
    holder,
    store,
    server,
    watcher,
    pool,
    front,
    audit,
    shutdown() {
      stopping ??= (async () => {
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
        clearInterval(purge);
        clearInterval(auditPrune);
        passwords.close();
        store.close();
        log.info("gatehouse stopped", { drained });
      })();
      return stopping;
    },
  };
}

/**
 * Calls `report` for the first refusal of an address (IPv6: its /64) and then at most once a minute, so
 * that a flood of refusals cannot become a flood of log lines and audit rows.
 */
function reportOncePerMinute(report: (address: string) => void): (address: string) => void {
  const lastReported = new Map<string, number>();
  return (address) => {
    const network = addressNetwork(address);
    const now = Date.now();
    const last = lastReported.get(network);
    if (last !== undefined && now - last < 60_000) return;
    if (lastReported.size >= 10_000) lastReported.clear();
    lastReported.set(network, now);
    report(address);
  };
}
