// What a user connects to, by the name their tokens are kept under: a registry `services` entry (endpoints
// and client from the registry), or an OAuth-protected backend (`backend:<name>`: discovered, and
// registered by Gatehouse itself; see `remote_oauth.ts`).
import * as oauth from "oauth4webapi";
import type { Registry, ServiceSettings } from "../config/types.ts";
import { remoteOAuthBackendOf, remoteOAuthOf } from "../config/types.ts";
import { OAuthError } from "../core/oauth_error.ts";
import type { ConnectTarget } from "./connect_target.ts";
import { type RemoteOAuthDeps, type RemoteOAuthTarget, remoteOAuthTarget } from "./remote_oauth.ts";
import { serviceClientAuth, ServiceEndpoints } from "./service_endpoints.ts";

/** A target with what registry services add (extra authorization parameters), and what remote ones do. */
export interface ResolvedTarget extends ConnectTarget {
  readonly authorizationParams: Readonly<Record<string, string>>;
  /** A registration the server no longer knows (`invalid_client`): dropped, so that the next use registers. */
  forgetClient?(server: oauth.AuthorizationServer, clientId: string): void;
}

/** The targets of the current registry, each made once per definition (discovery is cached inside). */
export class ConnectTargets {
  readonly #registry: () => Registry;
  readonly #endpoints = new ServiceEndpoints();
  readonly #remote = new Map<string, { identity: string; target: RemoteOAuthTarget }>();
  readonly #remoteDeps: (backend: string) => RemoteOAuthDeps;

  constructor(registry: () => Registry, remoteDeps: (backend: string) => RemoteOAuthDeps) {
    this.#registry = registry;
    this.#remoteDeps = remoteDeps;
  }

  /** Whether `name` is something users connect to in the current registry. */
  has(name: string): boolean {
    return this.#service(name) !== undefined || this.#remoteBackend(name) !== undefined;
  }

  /** The target named `name`; an unknown one is a 404 for the user. */
  of(name: string): ResolvedTarget {
    const service = this.#service(name);
    if (service !== undefined) return this.#serviceTarget(service);
    const backend = this.#remoteBackend(name);
    if (backend === undefined) throw new OAuthError("invalid_request", "Unknown service", 404);
    const identity = JSON.stringify([backend.url, backend.oauth]);
    let cached = this.#remote.get(backend.name);
    if (cached?.identity !== identity) {
      cached = { identity, target: remoteOAuthTarget(backend, this.#remoteDeps(backend.name)) };
      this.#remote.set(backend.name, cached);
    }
    const target = cached.target;
    return {
      ...bind(target),
      authorizationParams: {},
      forgetClient: (server, clientId) => void target.forgetClient(server, clientId),
    };
  }

  #service(name: string): ServiceSettings | undefined {
    const services = this.#registry().services;
    return Object.hasOwn(services, name) ? services[name] : undefined;
  }

  #remoteBackend(name: string) {
    const backendName = remoteOAuthBackendOf(name);
    if (backendName === undefined) return undefined;
    const backends = this.#registry().backends;
    const backend = Object.hasOwn(backends, backendName) ? backends[backendName] : undefined;
    const remote = backend && remoteOAuthOf(backend);
    return remote && { name: backendName, ...remote };
  }

  #serviceTarget(service: ServiceSettings): ResolvedTarget {
    return {
      server: () => this.#endpoints.server(service),
      client: (server) =>
        Promise.resolve({
          client: { client_id: service.clientId },
          auth: serviceClientAuth(service, server),
        }),
      scopes: () => Promise.resolve(service.scopes),
      resource: () => Promise.resolve(undefined),
      authorizationParams: service.authorizationParams,
    };
  }
}

/** The target's methods, bound (so that it can be spread into a resolved target). */
function bind(target: ConnectTarget): ConnectTarget {
  return {
    server: () => target.server(),
    client: (server: oauth.AuthorizationServer) => target.client(server),
    scopes: () => target.scopes(),
    resource: () => target.resource(),
  };
}

/**
 * A service name as a path segment: encoded, but for the colon of `backend:NAME`, which a path may hold
 * as it is (RFC 3986 §3.3), so that a redirect URI registered by hand reads as it is written.
 */
export function servicePath(service: string): string {
  return encodeURIComponent(service).replace("%3A", ":");
}
