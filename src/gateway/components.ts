/**
 * The gateway's parts, wired together: third-party token vault and connections, backend pool, MCP front,
 * and the authorization server with its clients, accounts, provider sign-ins and browser sessions.
 */
import type { AuditLog } from "../audit/audit.ts";
import type { RegistryHolder } from "../config/current.ts";
import type { Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { createIdentityCheck } from "../login/current_identity.ts";
import { LocalAccounts } from "../login/local.ts";
import { createPasswordVerifier } from "../login/password.ts";
import { UpstreamLogins } from "../login/providers.ts";
import { BrowserSessions } from "../login/sessions.ts";
import { StoreThrottleCounters } from "../login/shared_throttle.ts";
import { MEMORY_THROTTLE_COUNTERS, SignInThrottle, type ThrottleCounters } from "../login/throttle.ts";
import { BackendPool } from "../mcp/backends/pool.ts";
import { McpFront } from "../mcp/front/http_entry.ts";
import { RecentEvents } from "../metrics/events.ts";
import type { Metrics } from "../metrics/metrics.ts";
import { AuthorizationServer } from "../oauth/authorization_server.ts";
import type { MetadataDocumentFetcher } from "../oauth/client_metadata_document.ts";
import { ClientDirectory } from "../oauth/clients.ts";
import { loadOrCreateSigningKey } from "../oauth/keys.ts";
import { SharedSigningKeys } from "../oauth/shared_keys.ts";
import { RateLimiter } from "../policy/limits.ts";
import { StoreTokenBuckets } from "../policy/shared_buckets.ts";
import { ServiceConnections } from "../services/connections.ts";
import { openVault } from "../services/vault.ts";
import type { Store } from "../store/store.ts";

export interface ComponentInputs {
  /** The registry at start (its data directory holds the keys). */
  registry: Registry;
  holder: RegistryHolder;
  store: Store;
  audit: AuditLog;
  log: Logger;
  metrics: Metrics;
  /** Where the gateway listens: the base of every URL when `gateway.public_url` is not set. */
  listenUrl: string;
  clientMetadataFetcher?: MetadataDocumentFetcher;
  now?: () => number;
  /**
   * Keeps the rate-limit and throttle counts in the store even though no replica shares it (tests of two
   * gateways on one SQLite data directory); by default they are there exactly when the store is shared.
   */
  countersInStore?: boolean;
}

/** Where the rate limits and throttles count: in memory on one gateway, in the store for replicas. */
export interface Counters {
  readonly limiter: RateLimiter;
  readonly throttles: ThrottleCounters;
  /** Deletes what the store keeps past its window (housekeeping); undefined when nothing is kept there. */
  readonly prune: ((now: number) => void) | undefined;
}

/**
 * In memory (no store write on a call: each SQLite write is a synced transaction), unless replicas share
 * the store: then every replica must count against the same buckets and windows, or N replicas let N
 * times each limit through.
 */
function countersFor(store: Store, inStore: boolean): Counters {
  if (!inStore) return { limiter: new RateLimiter(), throttles: MEMORY_THROTTLE_COUNTERS, prune: undefined };
  const buckets = new StoreTokenBuckets(store);
  const throttles = new StoreThrottleCounters(store);
  return {
    limiter: new RateLimiter({ buckets }),
    throttles,
    prune: (now) => {
      buckets.prune(now);
      throttles.prune(now);
    },
  };
}

export type Components = Awaited<ReturnType<typeof buildComponents>>;

export async function buildComponents(inputs: ComponentInputs) {
  const { registry, holder, store, audit, log, metrics, listenUrl } = inputs;
  const counters = countersFor(store, inputs.countersInStore ?? store.shared);
  const currentRegistry = () => holder.current().registry;
  const baseUrl = () => currentRegistry().gateway.publicUrl ?? listenUrl;
  // What the status page lists as recent errors, denials and consent requests.
  const events = new RecentEvents();
  // Third-party tokens: encrypted at rest, handed to the backends that name their service.
  const vault = await openVault(registry.gateway.dataDir, registry.gateway.vaultKey);
  const connections = new ServiceConnections({
    store,
    registry: currentRegistry,
    vault,
    log,
    audit,
    baseUrl,
    onRefresh: (service, outcome) => metrics.tokenRefreshes.inc({ service, outcome }),
    onFailure: (user, service, message) =>
      events.add("error", {
        user,
        backend: undefined,
        service,
        message: `connecting ${service}: ${message}`,
      }),
  });
  const pool = new BackendPool(registry, {
    log,
    serviceToken: (caller, service) => connections.token(caller.id, service),
    serviceTokenRefused: (caller, service) => connections.refused(caller.id, service),
    onFailure: (backend, message) => events.add("error", { user: undefined, backend, message }),
    onRestart: (backend) => metrics.restarts.inc({ backend }),
    onTimeout: (backend, method) => metrics.timeouts.inc({ backend, method }),
  });
  const front = new McpFront({
    registry: currentRegistry,
    pool,
    log,
    store,
    audit,
    limiter: counters.limiter,
    metrics,
    events,
  });
  connections.onConnected = (userId, _service, elicitationId) =>
    front.consentCompleted(userId, elicitationId);
  // The authorization server: its signing key is made on first start and kept in the data directory, or in
  // the store when replicas share it.
  const key = store.shared
    ? await SharedSigningKeys.open(store, vault, {
      // A rotated-out key verifies the tokens it signed until they expire.
      retainMs: () => (currentRegistry().gateway.accessTokenTtlSeconds + 60) * 1000,
    })
    : await loadOrCreateSigningKey(registry.gateway.dataDir);
  const clients = new ClientDirectory(store, currentRegistry, { fetcher: inputs.clientMetadataFetcher });
  const passwords = createPasswordVerifier();
  const accounts = new LocalAccounts(store, currentRegistry, passwords, {
    audit,
    throttle: new SignInThrottle({ now: inputs.now, counters: counters.throttles }),
  });
  const logins = new UpstreamLogins(currentRegistry, log, {
    audit,
    store,
    now: inputs.now,
    throttleCounters: counters.throttles,
  });
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
  return {
    baseUrl,
    counters,
    events,
    connections,
    pool,
    front,
    key,
    clients,
    passwords,
    accounts,
    logins,
    currentIdentity,
    authorizationServer,
    sessions,
  };
}
