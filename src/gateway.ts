/**
 * Starting the gateway: load the registry, bind the listener, open the store, wire the parts, and mount
 * the HTTP app. The parts, reload reactions, gauges, housekeeping and shutdown live in `gateway/`.
 */
import { resolve } from "node:path";
import { AuditLog } from "./audit/audit.ts";
import { createRegistryHolder, type RegistryHolder } from "./config/current.ts";
import { ConfigError, formatWarning } from "./config/errors.ts";
import { type LoadOptions, loadRegistry } from "./config/load.ts";
import type { GatewaySettings, Registry } from "./config/types.ts";
import { type RegistryWatcher, watchRegistry } from "./config/watch.ts";
import { addressNetwork } from "./core/addresses.ts";
import { buildComponents } from "./gateway/components.ts";
import { registerGauges } from "./gateway/gauges.ts";
import { startHousekeeping } from "./gateway/housekeeping.ts";
import { reactToReloads, warnOnRestartOnlyChanges } from "./gateway/reloads.ts";
import { shareReloads } from "./gateway/replicas.ts";
import { shutdownGateway } from "./gateway/shutdown.ts";
import { createApp } from "./http/app.ts";
import { type RunningServer, startServer, urlOf } from "./http/server.ts";
import type { Logger } from "./log/logger.ts";
import type { RefusalReporter } from "./login/throttle.ts";
import { Metrics } from "./metrics/metrics.ts";
import type { BackendPool } from "./mcp/backends/pool.ts";
import type { McpFront } from "./mcp/front/http_entry.ts";
import { preloadSdks } from "./mcp/sdk.ts";
import type { MetadataDocumentFetcher } from "./oauth/client_metadata_document.ts";
import { statusReport } from "./status/status.ts";
import { openConfiguredStore } from "./store/open.ts";
import type { Store } from "./store/store.ts";
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
  /**
   * Keeps rate-limit and throttle counts in the store even when it is SQLite, as replicas sharing a store
   * do (tests of two gateways on one data directory); by default only a shared store keeps them.
   */
  countersInStore?: boolean;
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

type Handler = (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;

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
  const registry = await loadOrThrow(registryPath, loadOptions, log);

  // Bind first: a taken port should fail before anything is written to disk. Until the app is mounted,
  // requests get 503; until the holder exists, the connection bounds come from the registry at start.
  let handle: Handler = () => new Response("Starting", { status: 503 });
  let settings = (): GatewaySettings => registry.gateway;
  const metrics = new Metrics();
  const server = bind(registry, {
    handler: (request, info) => handle(request, info),
    settings: () => settings(),
    metrics,
    log,
  });
  const store = await openStoreOrStop(registry, server, log);
  const audit = new AuditLog(store, options.now);
  warnIfDataDirOpen(registry, log);
  const holder = createRegistryHolder(registry, {
    onListenerError: (error) => log.error("registry swap listener failed", { error }),
  });
  warnOnRestartOnlyChanges(holder, log);
  settings = () => holder.current().registry.gateway;

  const url = urlOf(server.hostname, server.port);
  const parts = await buildComponents({
    registry,
    holder,
    store,
    audit,
    log,
    metrics,
    listenUrl: url,
    clientMetadataFetcher: options.clientMetadataFetcher,
    now: options.now,
    countersInStore: options.countersInStore,
  });
  const { pool, front, events, connections, authorizationServer, sessions, key } = parts;
  reactToReloads({ holder, pool, front, metrics, events });
  const startedAt = Date.now();
  registerGauges({ metrics, server, pool, front, startedAt });
  // The first start's admin is made off the start path (argon2id in a worker takes longer than the rest of
  // the start): its password reaches the log once its account exists, a moment after "listening".
  // The MCP SDKs load a moment after start, in the background: readiness does not wait for them, and
  // requests (a first one excepted) never read them from disk.
  const preloading = preloadSdks(
    SDK_PRELOAD_DELAY_MS,
    (error) => log.warn("loading the MCP SDK failed; the first MCP request tries again", { error }),
  );
  const bootstrapping = parts.accounts.bootstrapAdmin(log).catch((error) =>
    log.error('first start: creating user "admin" failed', { error })
  );
  const housekeeping = startHousekeeping({
    holder,
    authorizationServer,
    sessions,
    audit,
    log,
    pruneMcpSessions: () => front.pruneSessionRecords(),
    pruneCounters: parts.counters.prune,
  });

  const app = createApp({
    holder,
    store,
    log,
    mcp: { front, listenUrl: url, tokens: { key, isRevoked: (jti) => authorizationServer.isRevoked(jti) } },
    metrics,
    oauth: {
      server: authorizationServer,
      clients: parts.clients,
      sessions,
      accounts: parts.accounts,
      logins: parts.logins,
      currentIdentity: parts.currentIdentity,
      connections,
      key,
      baseUrl: parts.baseUrl,
      status: (viewer) => statusReport({ holder, pool, front, events, connections, startedAt }, viewer),
      onRegistrationThrottled: reportOncePerMinute(
        parts.counters.throttles.reports("registration_refusal", 10_000),
        (address) => {
          log.warn("registrations throttled", { address });
          audit.record("registration_throttled", undefined, { address });
        },
      ),
    },
  });
  handle = (request, info) => app.fetch(request, { info });
  const watcher = options.watch === false
    ? undefined
    : watchRegistry({ registryPath, loadOptions, holder, log, audit });
  if (watcher !== undefined) shareReloads({ store, holder, watcher, log });
  log.info("gatehouse listening", {
    version: VERSION,
    url,
    registry: registryPath,
    data_dir: registry.gateway.dataDir,
    store: store.path,
    backends: Object.keys(registry.backends),
  });

  let stopping: Promise<void> | undefined;
  return {
    url,
    publicUrl: parts.baseUrl,
    holder,
    store,
    server,
    watcher,
    pool,
    front,
    audit,
    shutdown: () =>
      stopping ??= shutdownGateway({
        holder,
        log,
        watcher,
        server,
        front,
        pool,
        housekeeping,
        passwords: parts.passwords,
        store,
        startupWork: Promise.all([bootstrapping, preloading]).then(() => {}),
      }),
  };
}

/** The registry, or ConfigError with every problem; warnings are logged. */
async function loadOrThrow(registryPath: string, loadOptions: LoadOptions, log: Logger): Promise<Registry> {
  const loaded = await loadRegistry(registryPath, loadOptions);
  if (!loaded.ok) throw new ConfigError(loaded.problems);
  if (loaded.warnings.length > 0) {
    log.warn("registry warnings", { warnings: loaded.warnings.map(formatWarning) });
  }
  return loaded.registry;
}

/** How long after listening the MCP SDKs start loading (see mcp/sdk.ts). */
const SDK_PRELOAD_DELAY_MS = 100;

/** Listens on `gateway.listen`; a taken address says so plainly. */
function bind(
  registry: Registry,
  parts: { handler: Handler; settings: () => GatewaySettings; metrics: Metrics; log: Logger },
): RunningServer {
  const { hostname, port } = registry.gateway.listen;
  try {
    return startServer({
      hostname,
      port,
      handler: parts.handler,
      settings: parts.settings,
      log: parts.log,
      onCut: (reason) => parts.metrics.connectionsCut.inc({ reason }),
    });
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) {
      throw new Deno.errors.AddrInUse(`Cannot listen on ${hostname}:${port}: the address is already in use`);
    }
    throw error;
  }
}

/** Opens the store; if it cannot be opened, the listener is closed before the error goes on. */
async function openStoreOrStop(registry: Registry, server: RunningServer, log: Logger): Promise<Store> {
  try {
    return await openConfiguredStore(registry.gateway, { log });
  } catch (error) {
    await server.shutdown(0);
    throw error;
  }
}

function warnIfDataDirOpen(registry: Registry, log: Logger): void {
  const mode = Deno.statSync(registry.gateway.dataDir).mode;
  if (mode !== null && (mode & 0o077) !== 0) {
    log.warn("the data directory is readable by other users; it holds keys and secrets: chmod 700 it", {
      data_dir: registry.gateway.dataDir,
    });
  }
}

/**
 * Calls `report` for the first refusal of an address (IPv6: its /64) and then at most once a minute (per
 * gateway, or across replicas when they share the counters), so that a flood of refusals cannot become a
 * flood of log lines and audit rows.
 */
function reportOncePerMinute(
  reports: RefusalReporter,
  report: (address: string) => void,
): (address: string) => void {
  return (address) => {
    if (reports.next(addressNetwork(address), Date.now()).report) report(address);
  };
}
