// OAuth clients: the registry's, dynamically registered ones (RFC 7591, 7592) and client metadata
// documents; finding, registering, expiring and authenticating them (RFC 6749 §2.3).
import { StoreUnwritableError } from "../store/write_health.ts";
import { LOOPBACK_URL_HOSTNAMES } from "../core/urls.ts";
import type { Registry, StaticClient } from "../config/types.ts";
import {
  deleteClient,
  deleteUnusedDynamicClients,
  findClient,
  insertDynamicClient,
  listClients,
  markClientFirstGrant,
  registrationTimesOf,
  saveMetadataDocumentClient,
  type StoredClient,
  updateClientMetadata,
} from "../store/clients.ts";
import { deleteConsentsOfClient } from "../store/consents.ts";
import { deleteRefreshTokensOfClient, revokeAccessTokensOfClientFamilies } from "../store/grants.ts";
import type { Store } from "../store/store.ts";
import { OAuthError } from "../core/oauth_error.ts";
import {
  defaultFetcher,
  fetchClientMetadataDocument,
  isMetadataDocumentClientId,
  type MetadataDocumentFetcher,
} from "./client_metadata_document.ts";
import { validateClientMetadata } from "./client_metadata.ts";
import { hashSecret, randomToken, timingSafeEqual } from "../core/secrets.ts";
import { addressNetwork } from "../core/addresses.ts";

export { REGISTRATION_LIMITS } from "./client_metadata.ts";

export type TokenEndpointAuthMethod = "none" | "client_secret_basic" | "client_secret_post";

/** A registration refused: its client address registered its hour's worth already (429, `Retry-After`). */
export class RegistrationThrottled extends OAuthError {
  constructor(retryAfterSeconds: number) {
    super(
      "too_many_requests",
      `Too many registrations from this address; try again in ${retryAfterSeconds} s`,
      429,
      { "retry-after": String(retryAfterSeconds) },
    );
    this.name = "RegistrationThrottled";
  }
}

/** A client as the authorization server sees it, whatever registered it. */
export interface OAuthClient {
  readonly clientId: string;
  readonly kind: "static" | "dynamic" | "metadata_document";
  readonly name: string;
  readonly redirectUris: readonly string[];
  readonly grantTypes: readonly string[];
  readonly tokenEndpointAuthMethod: TokenEndpointAuthMethod;
  /** Registry clients: the secret itself (from a secret file); dynamic ones: its hash. */
  readonly secret?: string;
  readonly secretHash?: string;
  /** client_credentials: whom the client acts as. */
  readonly user?: string;
  readonly groups?: readonly string[];
  /** RFC 7591 metadata as registered (dynamic clients). */
  readonly metadata?: Record<string, unknown>;
  /** May call `/introspect` (registry clients with `introspect: true` only). */
  readonly mayIntrospect?: boolean;
}

/**
 * Exact redirect URI match, except that a loopback `http` URI matches on any port (RFC 8252 §7.3):
 * native clients listen on a port chosen at run time.
 */
export function redirectUriAllowed(registered: readonly string[], given: string): boolean {
  if (registered.includes(given)) return true;
  let candidate: URL;
  try {
    candidate = new URL(given);
  } catch {
    return false;
  }
  if (candidate.protocol !== "http:" || !LOOPBACK_URL_HOSTNAMES.has(candidate.hostname)) return false;
  // RFC 6749 §3.1.2: no fragment; and nothing but the port may differ (no user info either).
  if (candidate.hash || candidate.username || candidate.password) return false;
  return registered.some((uri) => {
    try {
      const known = new URL(uri);
      if (known.protocol !== "http:" || !LOOPBACK_URL_HOSTNAMES.has(known.hostname)) return false;
      known.port = candidate.port;
      return known.href === candidate.href;
    } catch {
      return false;
    }
  });
}

/** Finds, registers and authenticates OAuth clients: the registry's, and dynamically registered ones. */
export class ClientDirectory {
  readonly #store: Store;
  readonly #registry: () => Registry;
  readonly #now: () => number;
  readonly #fetcher: MetadataDocumentFetcher;

  constructor(
    store: Store,
    registry: () => Registry,
    options: { now?: () => number; fetcher?: MetadataDocumentFetcher } = {},
  ) {
    this.#store = store;
    this.#registry = registry;
    this.#now = options.now ?? Date.now;
    this.#fetcher = options.fetcher ?? defaultFetcher;
  }

  /** Fetches a client metadata document (CIMD), checks it, and caches it as its headers allow. */
  async #fetchDocument(clientId: string): Promise<OAuthClient> {
    const { metadata, maxAgeSeconds } = await fetchClientMetadataDocument(clientId, this.#fetcher);
    const stored = this.validate({
      ...metadata,
      grant_types: metadata.grant_types ?? ["authorization_code", "refresh_token"],
    });
    const document = JSON.stringify({ ...stored, client_id: clientId });
    saveMetadataDocumentClient(this.#store, {
      clientId,
      metadata: document,
      fetchedAt: this.#now(),
      expiresAt: this.#now() + maxAgeSeconds * 1000,
    });
    return clientOf(clientId, "metadata_document", JSON.parse(document), undefined);
  }

  /** The client with this id: from the registry, a client metadata document, or registration. */
  async find(clientId: string): Promise<OAuthClient | undefined> {
    const registered = this.#registry().clients;
    if (Object.hasOwn(registered, clientId)) return registryClient(registered[clientId]!);
    const stored = findClient(this.#store, clientId);
    if (isMetadataDocumentClientId(clientId) && (!stored || (stored.expiresAt ?? 0) <= this.#now())) {
      return await this.#fetchDocument(clientId);
    }
    return stored ? storedClient(stored) : undefined;
  }

  /**
   * Every client known now, without fetching anything: the registry's (in registry order), then those in
   * the store (oldest first), with when they were stored. A cached metadata document counts even when
   * its cache time has passed.
   */
  known(): KnownClient[] {
    const registered = Object.values(this.#registry().clients).map((client) => ({
      ...registryClient(client),
      createdAt: undefined,
    }));
    const stored = listClients(this.#store)
      .filter((client) => !Object.hasOwn(this.#registry().clients, client.clientId))
      .map((client) => ({ ...storedClient(client), createdAt: client.createdAt }));
    return [...registered, ...stored];
  }

  /** RFC 7591 §2: checks client metadata, bounded in every field, and returns what is kept of it. */
  validate(metadata: Record<string, unknown>): Record<string, unknown> {
    return validateClientMetadata(metadata);
  }

  /**
   * RFC 7591 §3: registers a client; the answer holds its secrets, which are kept only as hashes.
   * `address` is the client's address, remembered (as its network) for the per-address throttle; with
   * `perHour`, an address that registered that many clients within the hour is refused
   * (`RegistrationThrottled`), checked before anything else and again in the insert's transaction, so that
   * registrations sent at once, to this gateway or to replicas sharing the store, cannot all slip past.
   */
  async register(
    metadata: Record<string, unknown>,
    registrationBaseUrl: string,
    address: string | undefined,
    perHour?: number,
  ): Promise<Record<string, unknown>> {
    const refuseWhenThrottled = () => {
      const wait = perHour === undefined ? undefined : this.registrationWait(address, perHour);
      if (wait !== undefined) throw new RegistrationThrottled(wait);
    };
    refuseWhenThrottled();
    const stored = this.validate(metadata);
    const method = stored.token_endpoint_auth_method;
    const clientId = randomToken(16);
    const clientSecret = method === "none" ? undefined : randomToken(32);
    const registrationToken = randomToken(32);
    const issuedAt = Math.floor(this.#now() / 1000);
    const secretHash = clientSecret ? await hashSecret(clientSecret) : undefined;
    const registrationTokenHash = await hashSecret(registrationToken);
    this.#store.transaction(() => {
      refuseWhenThrottled();
      insertDynamicClient(this.#store, {
        clientId,
        metadata: JSON.stringify(stored),
        secretHash,
        registrationTokenHash,
        createdAt: this.#now(),
        registeredFrom: address === undefined ? undefined : addressNetwork(address),
      });
    });
    return {
      client_id: clientId,
      client_id_issued_at: issuedAt,
      ...(clientSecret ? { client_secret: clientSecret, client_secret_expires_at: 0 } : {}),
      registration_access_token: registrationToken,
      registration_client_uri: `${registrationBaseUrl}/${clientId}`,
      ...stored,
    };
  }

  /**
   * Seconds until `address` may register again when it registered `perHour` clients within the last hour
   * (counted in the store, so every replica and restart sees the same count); undefined: it may now.
   */
  registrationWait(address: string | undefined, perHour: number): number | undefined {
    if (address === undefined) return undefined;
    const windowStart = this.#now() - 3600_000;
    const times = registrationTimesOf(this.#store, addressNetwork(address), windowStart, perHour);
    if (times.length < perHour) return undefined;
    const oldestCounted = times[times.length - 1]!;
    return Math.max(1, Math.ceil((oldestCounted - windowStart) / 1000));
  }

  /** Notes that a client obtained a grant: from then on it never expires as unused. */
  recordGrant(clientId: string): void {
    markClientFirstGrant(this.#store, clientId, this.#now());
  }

  /** Deletes dynamic clients registered over `ttlSeconds` ago that never obtained a grant; returns how many. */
  purgeUnused(ttlSeconds: number): number {
    const cutoff = this.#now() - ttlSeconds * 1000;
    return this.#store.transaction(() => deleteUnusedDynamicClients(this.#store, cutoff));
  }

  /** RFC 7592: the client a registration access token belongs to, if it is that client's. */
  async byRegistrationToken(clientId: string, token: string): Promise<OAuthClient | undefined> {
    const expected = findClient(this.#store, clientId)?.registrationTokenHash;
    if (!expected || !timingSafeEqual(expected, await hashSecret(token))) {
      return undefined;
    }
    return await this.find(clientId);
  }

  update(clientId: string, metadata: Record<string, unknown>): void {
    updateClientMetadata(this.#store, clientId, JSON.stringify(metadata));
  }

  delete(clientId: string): void {
    this.#store.transaction(() => {
      // RFC 7592 §2.3: its tokens stop working too, access tokens included.
      revokeAccessTokensOfClientFamilies(this.#store, clientId);
      deleteClient(this.#store, clientId);
      deleteRefreshTokensOfClient(this.#store, clientId);
      deleteConsentsOfClient(this.#store, clientId);
    });
  }

  /**
   * Authenticates the client of a token, revocation or introspection request (RFC 6749 §2.3):
   * HTTP Basic or form fields for confidential clients; public clients only name themselves.
   */
  async authenticate(form: URLSearchParams, authorization: string | null): Promise<OAuthClient> {
    let clientId = form.get("client_id") ?? undefined;
    let secret = form.get("client_secret") ?? undefined;
    let method: TokenEndpointAuthMethod = secret === undefined ? "none" : "client_secret_post";
    const basicAttempted = authorization?.toLowerCase().startsWith("basic ") ?? false;
    // RFC 6749 §5.2: a failed attempt with the Authorization header gets a 401 naming its scheme.
    const failed = (description = "Client authentication failed") =>
      new OAuthError(
        "invalid_client",
        description,
        401,
        basicAttempted ? { "www-authenticate": 'Basic realm="gatehouse", charset="UTF-8"' } : {},
      );
    if (basicAttempted) {
      // RFC 6749 §2.3: one authentication method per request.
      if (secret !== undefined) {
        throw new OAuthError(
          "invalid_request",
          "Use one client authentication method, not Basic and the form",
        );
      }
      const credentials = parseBasicCredentials(authorization!.slice(6));
      if (!credentials) throw failed("Malformed Basic credentials");
      if (clientId !== undefined && clientId !== credentials.clientId) throw failed();
      clientId = credentials.clientId;
      secret = credentials.secret;
      method = "client_secret_basic";
    }
    if (!clientId) throw failed();
    // An unknown client (or a metadata document that cannot be fetched) fails authentication; a store that
    // cannot be reached is not the client's fault, and says so (503).
    const client = await this.find(clientId).catch((error) => {
      if (error instanceof StoreUnwritableError) throw error;
      return undefined;
    });
    if (!client) throw failed();
    if (client.tokenEndpointAuthMethod === "none") {
      if (method !== "none") throw failed();
      return client;
    }
    const ok = secret !== undefined && (
      client.secret !== undefined
        ? timingSafeEqual(client.secret, secret)
        : client.secretHash !== undefined && timingSafeEqual(client.secretHash, await hashSecret(secret))
    );
    if (!ok) throw failed();
    return client;
  }
}

/**
 * RFC 6749 §2.3.1 Basic credentials: base64 of the form-encoded id and secret joined by a colon; undefined
 * for anything malformed (bad base64, no colon, an empty id, bad percent-encoding).
 */
function parseBasicCredentials(encoded: string): { clientId: string; secret: string } | undefined {
  try {
    const decoded = atob(encoded.trim());
    const colon = decoded.indexOf(":");
    if (colon <= 0) return undefined;
    return {
      clientId: decodeURIComponent(decoded.slice(0, colon)),
      secret: decodeURIComponent(decoded.slice(colon + 1)),
    };
  } catch {
    return undefined;
  }
}

/** A client as `known()` lists it: stored clients also say when they were stored (epoch ms). */
export type KnownClient = OAuthClient & { readonly createdAt: number | undefined };

function registryClient(client: StaticClient): OAuthClient {
  return {
    clientId: client.id,
    kind: "static",
    name: client.name,
    redirectUris: client.redirectUris,
    grantTypes: client.grantTypes,
    tokenEndpointAuthMethod: client.secret ? "client_secret_basic" : "none",
    secret: client.secret,
    user: client.user,
    groups: client.groups,
    mayIntrospect: client.introspect && client.secret !== undefined,
  };
}

function storedClient(stored: StoredClient): OAuthClient {
  const metadata = JSON.parse(stored.metadata) as Record<string, unknown>;
  return clientOf(stored.clientId, stored.kind, metadata, stored.secretHash);
}

function clientOf(
  clientId: string,
  kind: StoredClient["kind"],
  metadata: Record<string, unknown>,
  secretHash: string | undefined,
): OAuthClient {
  return {
    clientId,
    kind,
    name: typeof metadata.client_name === "string" ? metadata.client_name : clientId,
    redirectUris: (metadata.redirect_uris as string[] | undefined) ?? [],
    grantTypes: (metadata.grant_types as string[] | undefined) ?? ["authorization_code", "refresh_token"],
    tokenEndpointAuthMethod: (metadata.token_endpoint_auth_method as TokenEndpointAuthMethod | undefined) ??
      "client_secret_basic",
    secretHash,
    metadata,
  };
}
