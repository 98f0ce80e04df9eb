// An OAuth-protected remote MCP server (`backends.<name>.http.oauth`) as something users connect to: its
// discovery (remote_discovery.ts) cached per backend, Gatehouse's registration there
// (remote_registration.ts), the scopes and resource to ask for; and what `gatehouse doctor` says of it.
import type * as oauth from "oauth4webapi";
import type { Logger } from "../log/logger.ts";
import { deleteUpstreamClient, findUpstreamClient } from "../store/upstream_clients.ts";
import type { Store } from "../store/store.ts";
import type { ConnectTarget } from "./connect_target.ts";
import { discoverRemoteOAuth, type RemoteDiscovery } from "./remote_discovery.ts";
import {
  clientMetadataDocumentUrl,
  type RegisteredClient,
  registeredClient,
  registrationMethod,
} from "./remote_registration.ts";
import {
  boundedFetcher,
  REMOTE_REQUEST_TIMEOUT_MS,
  RemoteOAuthError,
  type RemoteOAuthStep,
  shown,
} from "./remote_requests.ts";
import type { Vault } from "./vault.ts";

export { clientMetadataDocument, clientMetadataDocumentUrl } from "./remote_registration.ts";
export { RemoteOAuthError, type RemoteOAuthStep } from "./remote_requests.ts";

/** What discovery found stays this long; a failure is never kept (the next use tries again). */
const DISCOVERY_TTL_MS = 60 * 60_000;

/** An HTTP backend with `oauth`: its name, its MCP endpoint, and what the registry says of its OAuth. */
export interface RemoteOAuthBackend {
  readonly name: string;
  /** The MCP endpoint. */
  readonly url: string;
  readonly oauth: {
    readonly clientId?: string;
    readonly clientSecret?: string;
    readonly scopes?: readonly string[];
    readonly resource?: string;
  };
}

export interface RemoteOAuthDeps {
  readonly store: Store;
  readonly vault: Vault;
  /** `public_url` (or the listening address). */
  readonly baseUrl: () => string;
  /** The redirect URI of this backend: `${baseUrl}/connect/${encodeURIComponent("backend:" + name)}/callback`. */
  readonly callbackUrl: string;
  readonly log: Logger;
  readonly fetch?: typeof fetch;
  readonly now?: () => number;
}

/** A remote server's target, with a way to drop a registration its authorization server no longer knows. */
export interface RemoteOAuthTarget extends ConnectTarget {
  /**
   * Forgets the dynamic registration `clientId` at `server` (say, after `invalid_client` at its token
   * endpoint), so that the next `client()` registers again; a newer registration is kept.
   */
  forgetClient(server: oauth.AuthorizationServer, clientId: string): boolean;
}

/**
 * The target of an OAuth-protected backend: discovery runs on first use and is kept for an hour (a failure
 * is not kept); `client()` registers Gatehouse when nothing is configured, once per authorization server.
 */
export function remoteOAuthTarget(backend: RemoteOAuthBackend, deps: RemoteOAuthDeps): RemoteOAuthTarget {
  const now = deps.now ?? Date.now;
  const fetchFn = deps.fetch ?? fetch;
  const log = deps.log.child({ backend: backend.name });
  let cached: { discovery: Promise<RemoteDiscovery>; at: number } | undefined;
  /** Registrations under way, by issuer: one at a time in this process (the store settles replicas). */
  const registering = new Map<string, Promise<RegisteredClient>>();

  const discovery = (): Promise<RemoteDiscovery> => {
    if (cached !== undefined && now() - cached.at < DISCOVERY_TTL_MS) return cached.discovery;
    const entry = {
      at: now(),
      discovery: discoverRemoteOAuth(backend.url, {
        fetch: fetchFn,
        configuredResource: backend.oauth.resource,
      }),
    };
    cached = entry;
    entry.discovery.then(
      (found) =>
        log.debug("remote authorization server discovered", {
          issuer: found.server.issuer,
          resource: found.resourceMetadata.resource,
        }),
      (error) => {
        if (cached === entry) cached = undefined;
        log.warn("remote authorization server discovery failed", { error: String(error) });
      },
    );
    return entry.discovery;
  };

  return {
    server: async () => (await discovery()).server,
    client(server) {
      const pending = registering.get(server.issuer);
      if (pending !== undefined) return pending;
      const client = registeredClient(server, {
        backend: backend.name,
        clientId: backend.oauth.clientId,
        clientSecret: backend.oauth.clientSecret,
        baseUrl: deps.baseUrl(),
        callbackUrl: deps.callbackUrl,
        store: deps.store,
        vault: deps.vault,
        log,
        request: boundedFetcher(fetchFn, REMOTE_REQUEST_TIMEOUT_MS),
        now,
      });
      registering.set(server.issuer, client);
      const done = () => registering.delete(server.issuer);
      client.then(done, done);
      return client.then(({ client, auth }) => ({ client, auth }));
    },
    async scopes() {
      if (backend.oauth.scopes !== undefined) return backend.oauth.scopes;
      const found = await discovery();
      // MCP authorization (2025-11-25 on): the challenge's scope first, else the resource's scopes_supported.
      return found.challengeScopes ?? found.resourceMetadata.scopes_supported ?? [];
    },
    async resource() {
      if (backend.oauth.resource !== undefined) return backend.oauth.resource;
      return (await discovery()).resourceMetadata.resource;
    },
    forgetClient: (server, clientId) =>
      deleteUpstreamClient(deps.store, backend.name, server.issuer, clientId),
  };
}

/** What `gatehouse doctor` shows of an OAuth-protected backend. */
export interface RemoteOAuthDescription {
  /** What discovery found, as far as it got, each a short line ("resource: https://…"); never a secret. */
  readonly facts: readonly string[];
  /** The step that failed and why; undefined when Gatehouse can ask users for tokens. */
  readonly failure: { readonly step: RemoteOAuthStep; readonly message: string } | undefined;
}

/** What describing a backend needs: no vault, and the store only to show a registration already made. */
export type RemoteOAuthDescribeDeps = Pick<RemoteOAuthDeps, "baseUrl" | "fetch"> & {
  readonly store?: Store;
  /** The bound on each request (default 10 s). */
  readonly timeoutMs?: number;
};

/**
 * Runs discovery for `backend` afresh and says what it found: the resource metadata and resource, the
 * authorization server, how Gatehouse is or would be its client (nothing is registered here), the scopes;
 * or which step failed.
 */
export async function describeRemoteOAuth(
  backend: RemoteOAuthBackend,
  deps: RemoteOAuthDescribeDeps,
): Promise<RemoteOAuthDescription> {
  const facts: string[] = [];
  let found: RemoteDiscovery;
  try {
    found = await discoverRemoteOAuth(backend.url, {
      fetch: deps.fetch ?? fetch,
      configuredResource: backend.oauth.resource,
      timeoutMs: deps.timeoutMs,
    });
  } catch (error) {
    return { facts, failure: failureOf(error) };
  }
  const { server, resourceMetadata } = found;
  const via = found.foundBy === "www-authenticate" ? "from the 401 challenge" : "at the well-known URI";
  facts.push(`resource metadata: ${shown(found.resourceMetadataUrl)} (${via})`);
  facts.push(
    backend.oauth.resource === undefined
      ? `resource: ${resourceMetadata.resource}`
      : `resource: ${backend.oauth.resource} (configured; the server says ${resourceMetadata.resource})`,
  );
  facts.push(`authorization server: ${server.issuer}`);
  const method = registrationMethod(backend.oauth.clientId, server, deps.baseUrl());
  if (method === "none") {
    return {
      facts: [...facts, "registration: none possible"],
      failure: {
        step: "registration",
        message: `${shown(server.issuer)} supports neither client ID metadata documents (with an https ` +
          "public_url) nor dynamic registration: set oauth.client_id",
      },
    };
  }
  facts.push(`registration: ${registrationFact(method, backend, server, deps)}`);
  const scopes = backend.oauth.scopes ?? found.challengeScopes ?? resourceMetadata.scopes_supported ?? [];
  facts.push(`scopes: ${scopes.length === 0 ? "none" : scopes.join(" ")}`);
  return { facts, failure: undefined };
}

function registrationFact(
  method: "configured" | "metadata_document" | "dynamic",
  backend: RemoteOAuthBackend,
  server: oauth.AuthorizationServer,
  deps: RemoteOAuthDescribeDeps,
): string {
  if (method === "configured") return `configured client id ${backend.oauth.clientId}`;
  if (method === "metadata_document") {
    return `client ID metadata document ${clientMetadataDocumentUrl(deps.baseUrl())}`;
  }
  const stored = deps.store === undefined
    ? undefined
    : findUpstreamClient(deps.store, backend.name, server.issuer);
  const endpoint = shown(server.registration_endpoint!);
  return stored === undefined
    ? `dynamic registration at ${endpoint} (on first use)`
    : `dynamic registration at ${endpoint} (client id ${stored.clientId}, registered ` +
      `${new Date(stored.registeredAt).toISOString()})`;
}

function failureOf(error: unknown): { step: RemoteOAuthStep; message: string } {
  if (error instanceof RemoteOAuthError) return { step: error.code, message: error.message };
  return { step: "mcp_request", message: error instanceof Error ? error.message : String(error) };
}
