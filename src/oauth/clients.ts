import { LOOPBACK_URL_HOSTNAMES } from "../core/urls.ts";
import type { Registry, StaticClient } from "../config/types.ts";
import type { Store } from "../store/store.ts";
import { OAuthError } from "../core/oauth_error.ts";
import {
  defaultFetcher,
  fetchClientMetadataDocument,
  isMetadataDocumentClientId,
  type MetadataDocumentFetcher,
} from "./client_metadata_document.ts";
import { hashSecret, randomToken, timingSafeEqual } from "../core/secrets.ts";
import { knownScopes } from "./scopes.ts";
import { addressNetwork } from "../core/addresses.ts";

export type TokenEndpointAuthMethod = "none" | "client_secret_basic" | "client_secret_post";

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

/** Schemes no client may register as a redirect URI, whatever kind of client it is. */
const FORBIDDEN_SCHEMES = new Set([
  "javascript:",
  "data:",
  "file:",
  "vbscript:",
  "blob:",
  "about:",
  "filesystem:",
  "view-source:",
  "ftp:",
  "ws:",
  "wss:",
  "mailto:",
  "tel:",
  "sms:",
]);

/**
 * A redirect URI a client may register: https; http on a loopback address (RFC 8252 §7.3); for public
 * (native) clients also a private-use scheme (RFC 8252 §7.1), such as `cursor://…` or
 * `com.example.app:/callback`. Never a fragment, never a scheme a browser would run or open locally.
 */
function acceptableRedirectUri(uri: unknown, publicClient: boolean): uri is string {
  if (typeof uri !== "string") return false;
  try {
    const url = new URL(uri);
    if (url.hash || url.username || url.password) return false;
    if (url.protocol === "https:") return url.hostname !== "";
    if (url.protocol === "http:") return LOOPBACK_URL_HOSTNAMES.has(url.hostname);
    if (FORBIDDEN_SCHEMES.has(url.protocol)) return false;
    return publicClient && /^[a-z][a-z0-9+.-]*:$/.test(url.protocol);
  } catch {
    return false;
  }
}

/** Bounds on what a stranger may store through open registration (RFC 7591 §2). */
export const REGISTRATION_LIMITS = Object.freeze({
  /** The whole registration request. */
  maxBodyBytes: 16 * 1024,
  maxNameLength: 200,
  maxUriLength: 2048,
  maxRedirectUris: 10,
  maxContacts: 5,
  maxContactLength: 320,
  maxScopeLength: 1000,
  maxShortFieldLength: 200,
  /** Fields this server does not know are ignored, but only while they are small and few. */
  maxUnknownFieldBytes: 1024,
  maxUnknownFields: 20,
});

/** The metadata fields this server keeps, each with its check. */
const KNOWN_FIELDS: Readonly<Record<string, (value: unknown) => string | undefined>> = {
  client_name: (value) => boundedString(value, REGISTRATION_LIMITS.maxNameLength),
  client_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  logo_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  tos_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  policy_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  scope: (value) => boundedString(value, REGISTRATION_LIMITS.maxScopeLength),
  software_id: (value) => boundedString(value, REGISTRATION_LIMITS.maxShortFieldLength),
  software_version: (value) => boundedString(value, REGISTRATION_LIMITS.maxShortFieldLength),
  application_type: (value) =>
    value === "web" || value === "native" ? undefined : 'must be "web" or "native"',
  contacts: (value) => {
    if (!Array.isArray(value)) return "must be a list of strings";
    if (value.length > REGISTRATION_LIMITS.maxContacts) {
      return `may list at most ${REGISTRATION_LIMITS.maxContacts} entries`;
    }
    return value.map((entry) => boundedString(entry, REGISTRATION_LIMITS.maxContactLength))
      .find((problem) => problem !== undefined);
  },
};

/** Fields validate() checks and rebuilds itself; the server issues the rest (ids, secrets, times). */
const HANDLED_FIELDS = new Set([
  "redirect_uris",
  "grant_types",
  "response_types",
  "token_endpoint_auth_method",
  "client_id",
  "client_secret",
  "client_id_issued_at",
  "client_secret_expires_at",
  "registration_access_token",
  "registration_client_uri",
]);

function boundedString(value: unknown, maxLength: number): string | undefined {
  if (typeof value !== "string") return "must be a string";
  return value.length > maxLength ? `is longer than ${maxLength} characters` : undefined;
}

interface ClientRow {
  client_id: string;
  kind: string;
  metadata: string;
  secret_hash: string | null;
  registration_token_hash: string | null;
  expires_at: number | null;
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
  async #fetchDocument(clientId: string): Promise<ClientRow> {
    const { metadata, maxAgeSeconds } = await fetchClientMetadataDocument(clientId, this.#fetcher);
    const stored = this.validate({
      ...metadata,
      grant_types: metadata.grant_types ?? ["authorization_code", "refresh_token"],
    });
    const row: ClientRow = {
      client_id: clientId,
      kind: "metadata_document",
      metadata: JSON.stringify({ ...stored, client_id: clientId }),
      secret_hash: null,
      registration_token_hash: null,
      expires_at: this.#now() + maxAgeSeconds * 1000,
    };
    this.#store.db.prepare(
      "INSERT INTO oauth_clients (client_id, kind, metadata, created_at, expires_at) VALUES (?, ?, ?, ?, ?) ON CONFLICT (client_id) DO UPDATE SET metadata = excluded.metadata, expires_at = excluded.expires_at",
    ).run(clientId, row.kind, row.metadata, this.#now(), row.expires_at);
    return row;
  }

  /** The client with this id: from the registry, a client metadata document, or registration. */
  async find(clientId: string): Promise<OAuthClient | undefined> {
    const registered = this.#registry().clients;
    if (Object.hasOwn(registered, clientId)) return registryClient(registered[clientId]!);
    let row = this.#store.db.prepare("SELECT * FROM oauth_clients WHERE client_id = ?").get(clientId) as
      | ClientRow
      | undefined;
    if (isMetadataDocumentClientId(clientId) && (!row || (row.expires_at ?? 0) <= this.#now())) {
      row = await this.#fetchDocument(clientId);
    }
    return row ? storedClient(row) : undefined;
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
    const rows = this.#store.db.prepare("SELECT * FROM oauth_clients ORDER BY created_at, client_id")
      .all() as unknown as (ClientRow & { created_at: number })[];
    const stored = rows
      .filter((row) => !Object.hasOwn(this.#registry().clients, row.client_id))
      .map((row) => ({ ...storedClient(row), createdAt: row.created_at }));
    return [...registered, ...stored];
  }

  /** RFC 7591 §2: checks client metadata, bounded in every field, and returns what is kept of it. */
  validate(metadata: Record<string, unknown>): Record<string, unknown> {
    const invalid = (description: string) => new OAuthError("invalid_client_metadata", description);
    const method = (metadata.token_endpoint_auth_method ?? "client_secret_basic") as string;
    if (!["none", "client_secret_basic", "client_secret_post"].includes(method)) {
      throw invalid("token_endpoint_auth_method is not supported");
    }
    const redirectUris = metadata.redirect_uris;
    if (!Array.isArray(redirectUris) || redirectUris.length === 0) {
      throw new OAuthError("invalid_redirect_uri", "redirect_uris must list at least one URI");
    }
    if (redirectUris.length > REGISTRATION_LIMITS.maxRedirectUris) {
      throw new OAuthError(
        "invalid_redirect_uri",
        `redirect_uris may list at most ${REGISTRATION_LIMITS.maxRedirectUris} URIs`,
      );
    }
    if (
      redirectUris.some((uri) => typeof uri === "string" && uri.length > REGISTRATION_LIMITS.maxUriLength)
    ) {
      throw new OAuthError(
        "invalid_redirect_uri",
        `a redirect URI is longer than ${REGISTRATION_LIMITS.maxUriLength} characters`,
      );
    }
    if (redirectUris.some((uri) => !acceptableRedirectUri(uri, method === "none"))) {
      throw new OAuthError(
        "invalid_redirect_uri",
        method === "none"
          ? "redirect_uris must be https, http on a loopback address, or a private-use scheme of a native app"
          : "redirect_uris must be https, or http on a loopback address",
      );
    }
    const grantTypes = (metadata.grant_types ?? ["authorization_code", "refresh_token"]) as unknown[];
    if (
      !Array.isArray(grantTypes) || grantTypes.length > 2 ||
      grantTypes.some((grant) => grant !== "authorization_code" && grant !== "refresh_token")
    ) {
      throw invalid("grant_types may list authorization_code and refresh_token");
    }
    const responseTypes = (metadata.response_types ?? ["code"]) as unknown[];
    if (
      !Array.isArray(responseTypes) || responseTypes.length > 1 ||
      responseTypes.some((type) => type !== "code")
    ) {
      throw invalid('response_types may only list "code"');
    }
    const kept: Record<string, unknown> = {};
    let unknownFields = 0;
    for (const [field, value] of Object.entries(metadata)) {
      if (value === undefined || HANDLED_FIELDS.has(field)) continue;
      const check = Object.hasOwn(KNOWN_FIELDS, field) ? KNOWN_FIELDS[field] : undefined;
      if (check) {
        const problem = check(value);
        if (problem !== undefined) throw invalid(`${field} ${problem}`);
        kept[field] = field === "scope" ? knownScopes(value as string) : value;
        continue;
      }
      // RFC 7591 §2: unknown fields are ignored; a stranger's large or many ones are refused.
      unknownFields++;
      if (unknownFields > REGISTRATION_LIMITS.maxUnknownFields) {
        throw invalid(`more than ${REGISTRATION_LIMITS.maxUnknownFields} unknown fields`);
      }
      if (JSON.stringify(value).length > REGISTRATION_LIMITS.maxUnknownFieldBytes) {
        throw invalid(`the unknown field ${JSON.stringify(field.slice(0, 64))} is too large`);
      }
    }
    return {
      ...kept,
      redirect_uris: redirectUris,
      grant_types: grantTypes,
      response_types: responseTypes,
      token_endpoint_auth_method: method,
    };
  }

  /**
   * RFC 7591 §3: registers a client; the answer holds its secrets, which are kept only as hashes.
   * `address` is the client's address, remembered (as its network) for the per-address throttle.
   */
  async register(
    metadata: Record<string, unknown>,
    registrationBaseUrl: string,
    address: string | undefined,
  ): Promise<Record<string, unknown>> {
    const stored = this.validate(metadata);
    const method = stored.token_endpoint_auth_method;
    const clientId = randomToken(16);
    const clientSecret = method === "none" ? undefined : randomToken(32);
    const registrationToken = randomToken(32);
    const issuedAt = Math.floor(this.#now() / 1000);
    this.#store.db.prepare(
      "INSERT INTO oauth_clients (client_id, kind, metadata, secret_hash, registration_token_hash, created_at, registered_from) VALUES (?, 'dynamic', ?, ?, ?, ?, ?)",
    ).run(
      clientId,
      JSON.stringify(stored),
      clientSecret ? await hashSecret(clientSecret) : null,
      await hashSecret(registrationToken),
      this.#now(),
      address === undefined ? null : addressNetwork(address),
    );
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
    const rows = this.#store.db.prepare(
      "SELECT created_at FROM oauth_clients WHERE registered_from = ? AND created_at > ? ORDER BY created_at DESC LIMIT ?",
    ).all(addressNetwork(address), windowStart, perHour) as { created_at: number }[];
    if (rows.length < perHour) return undefined;
    const oldestCounted = rows[rows.length - 1]!.created_at;
    return Math.max(1, Math.ceil((oldestCounted - windowStart) / 1000));
  }

  /** Notes that a client obtained a grant: from then on it never expires as unused. */
  recordGrant(clientId: string): void {
    this.#store.db.prepare(
      "UPDATE oauth_clients SET first_grant_at = ? WHERE client_id = ? AND first_grant_at IS NULL AND kind = 'dynamic'",
    ).run(this.#now(), clientId);
  }

  /** Deletes dynamic clients registered over `ttlSeconds` ago that never obtained a grant; returns how many. */
  purgeUnused(ttlSeconds: number): number {
    const cutoff = this.#now() - ttlSeconds * 1000;
    return this.#store.transaction(() => {
      const unused =
        "SELECT client_id FROM oauth_clients WHERE kind = 'dynamic' AND first_grant_at IS NULL AND created_at <= ?";
      this.#store.db.prepare(`DELETE FROM consents WHERE client_id IN (${unused})`).run(cutoff);
      this.#store.db.prepare(`DELETE FROM authorization_codes WHERE client_id IN (${unused})`).run(cutoff);
      return Number(
        this.#store.db.prepare(
          "DELETE FROM oauth_clients WHERE kind = 'dynamic' AND first_grant_at IS NULL AND created_at <= ?",
        ).run(cutoff).changes,
      );
    });
  }

  /** RFC 7592: the client a registration access token belongs to, if it is that client's. */
  async byRegistrationToken(clientId: string, token: string): Promise<OAuthClient | undefined> {
    const row = this.#store.db.prepare(
      "SELECT registration_token_hash FROM oauth_clients WHERE client_id = ?",
    )
      .get(clientId) as { registration_token_hash: string | null } | undefined;
    if (
      !row?.registration_token_hash || !timingSafeEqual(row.registration_token_hash, await hashSecret(token))
    ) {
      return undefined;
    }
    return await this.find(clientId);
  }

  update(clientId: string, metadata: Record<string, unknown>): void {
    this.#store.db.prepare("UPDATE oauth_clients SET metadata = ? WHERE client_id = ?").run(
      JSON.stringify(metadata),
      clientId,
    );
  }

  delete(clientId: string): void {
    this.#store.transaction(() => {
      // RFC 7592 §2.3: its tokens stop working too, access tokens included.
      this.#store.db.prepare(
        `INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at)
         SELECT jti, expires_at FROM access_token_grants WHERE family_id IN (
           SELECT family_id FROM refresh_tokens WHERE client_id = ?
           UNION SELECT family_id FROM authorization_codes WHERE client_id = ? AND family_id IS NOT NULL)`,
      ).run(clientId, clientId);
      this.#store.db.prepare("DELETE FROM oauth_clients WHERE client_id = ?").run(clientId);
      this.#store.db.prepare("DELETE FROM refresh_tokens WHERE client_id = ?").run(clientId);
      this.#store.db.prepare("DELETE FROM consents WHERE client_id = ?").run(clientId);
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
    const client = await this.find(clientId).catch(() => undefined);
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

function storedClient(row: ClientRow): OAuthClient {
  const metadata = JSON.parse(row.metadata) as Record<string, unknown>;
  return {
    clientId: row.client_id,
    kind: row.kind === "metadata_document" ? "metadata_document" : "dynamic",
    name: typeof metadata.client_name === "string" ? metadata.client_name : row.client_id,
    redirectUris: (metadata.redirect_uris as string[] | undefined) ?? [],
    grantTypes: (metadata.grant_types as string[] | undefined) ?? ["authorization_code", "refresh_token"],
    tokenEndpointAuthMethod: (metadata.token_endpoint_auth_method as TokenEndpointAuthMethod | undefined) ??
      "client_secret_basic",
    secretHash: row.secret_hash ?? undefined,
    metadata,
  };
}
