// Gatehouse as a client of a remote MCP server's authorization server, in the MCP specification's order:
// a configured client id, else Gatehouse's client ID metadata document (CIMD), else dynamic registration
// (RFC 7591) done once per backend and issuer and kept in the store for every replica.
import * as oauth from "oauth4webapi";
import type { Logger } from "../log/logger.ts";
import { LOOPBACK_URL_HOSTNAMES } from "../core/urls.ts";
import { findUpstreamClient, saveUpstreamClient, type UpstreamClient } from "../store/upstream_clients.ts";
import type { Store } from "../store/store.ts";
import { type BoundedFetch, reason, RemoteOAuthError, secureOrLoopback, shown } from "./remote_requests.ts";
import { chooseTokenEndpointAuthMethod } from "./service_endpoints.ts";
import type { Vault } from "./vault.ts";

/** Where Gatehouse serves its client ID metadata document, under `public_url`. */
export const CLIENT_METADATA_DOCUMENT_PATH = "/oauth/client-metadata.json";

/** The vault's "user" for registered clients' secrets (the issuer is its "service"). */
const SECRET_SEAL_USER = "gatehouse:upstream_client";

/** How Gatehouse is, or would be, a client of an authorization server. */
export type RegistrationMethod = "configured" | "metadata_document" | "dynamic" | "none";

/** Gatehouse's client ID: the URL of its metadata document. */
export function clientMetadataDocumentUrl(baseUrl: string): string {
  return `${baseUrl.replace(/\/$/, "")}${CLIENT_METADATA_DOCUMENT_PATH}`;
}

/**
 * Gatehouse's client ID metadata document (draft-ietf-oauth-client-id-metadata-document; MCP authorization
 * "Client ID Metadata Documents"): a public client whose redirect URIs are the callbacks of every backend
 * with `oauth` in the registry (`redirectUris`), served at `clientMetadataDocumentUrl(baseUrl)`.
 */
export function clientMetadataDocument(
  baseUrl: string,
  redirectUris: readonly string[],
): Record<string, unknown> {
  return {
    client_id: clientMetadataDocumentUrl(baseUrl),
    ...clientMetadata(baseUrl, redirectUris),
  };
}

/** The metadata Gatehouse registers with (RFC 7591 §2), as a public client using PKCE. */
function clientMetadata(baseUrl: string, redirectUris: readonly string[]): Record<string, unknown> {
  return {
    client_name: "Gatehouse",
    client_uri: baseUrl.replace(/\/$/, ""),
    redirect_uris: [...redirectUris],
    grant_types: ["authorization_code", "refresh_token"],
    response_types: ["code"],
    token_endpoint_auth_method: "none",
  };
}

/**
 * The method the MCP specification's priority picks: configured, else CIMD when the server supports it and
 * Gatehouse's client id can be a metadata document (an https `public_url`: CIMD client ids are https URLs,
 * so a gateway on plain http registers dynamically), else dynamic registration, else none.
 */
export function registrationMethod(
  configuredClientId: string | undefined,
  server: oauth.AuthorizationServer,
  baseUrl: string,
): RegistrationMethod {
  if (configuredClientId !== undefined) return "configured";
  if (server.client_id_metadata_document_supported === true && new URL(baseUrl).protocol === "https:") {
    return "metadata_document";
  }
  if (typeof server.registration_endpoint === "string") return "dynamic";
  return "none";
}

/** Gatehouse as a client, and how it authenticates at the token endpoint. */
export interface RegisteredClient {
  readonly client: oauth.Client;
  readonly auth: oauth.ClientAuth;
  readonly method: Exclude<RegistrationMethod, "none">;
}

export interface RegistrationContext {
  readonly backend: string;
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  readonly baseUrl: string;
  readonly callbackUrl: string;
  readonly store: Store;
  readonly vault: Vault;
  readonly log: Logger;
  readonly request: BoundedFetch;
  readonly now: () => number;
}

/**
 * Gatehouse as a client of `server`: the configured client, the metadata document, or the stored dynamic
 * registration (registering now when none is stored, or the stored one is stale).
 */
export async function registeredClient(
  server: oauth.AuthorizationServer,
  context: RegistrationContext,
): Promise<RegisteredClient> {
  const method = registrationMethod(context.clientId, server, context.baseUrl);
  switch (method) {
    case "configured": {
      const secret = context.clientSecret;
      const authMethod = chooseTokenEndpointAuthMethod(
        { clientSecret: secret, tokenEndpointAuthMethod: undefined },
        server,
      );
      return {
        client: { client_id: context.clientId!, token_endpoint_auth_method: authMethod },
        auth: clientAuth(authMethod, secret),
        method,
      };
    }
    case "metadata_document":
      return {
        client: { client_id: clientMetadataDocumentUrl(context.baseUrl), token_endpoint_auth_method: "none" },
        auth: oauth.None(),
        method,
      };
    case "dynamic": {
      const stored = usableRegistration(server, context) ?? await registerDynamically(server, context);
      return await clientOf(stored, context.vault);
    }
    case "none":
      throw new RemoteOAuthError(
        "registration",
        `Cannot register Gatehouse at the authorization server ${
          shown(server.issuer)
        }: it supports neither ` +
          "client ID metadata documents (with an https public_url) nor dynamic registration; register a " +
          `client there by hand and set oauth.client_id (and oauth.client_secret) of backend ${context.backend}`,
      );
  }
}

/** The stored registration of this backend at `server`, unless it was made for another callback or its secret expired. */
export function usableRegistration(
  server: oauth.AuthorizationServer,
  context: Pick<RegistrationContext, "store" | "backend" | "callbackUrl" | "now">,
): UpstreamClient | undefined {
  const stored = findUpstreamClient(context.store, context.backend, server.issuer);
  if (stored === undefined || stored.redirectUri !== context.callbackUrl) return undefined;
  if (stored.secretExpiresAt !== undefined && stored.secretExpiresAt <= context.now()) return undefined;
  return stored;
}

/** RFC 7591 §3: registers Gatehouse for this backend's callback, and stores the client (secret sealed). */
async function registerDynamically(
  server: oauth.AuthorizationServer,
  context: RegistrationContext,
): Promise<UpstreamClient> {
  const endpoint = server.registration_endpoint!;
  const failed = (why: string, cause?: unknown) =>
    new RemoteOAuthError(
      "registration",
      `Cannot register Gatehouse at ${shown(endpoint)} (dynamic client registration): ${why}`,
      { cause },
    );
  if (!secureOrLoopback(endpoint)) throw failed("the registration endpoint is not https");
  const metadata = {
    ...clientMetadata(context.baseUrl, [context.callbackUrl]),
    // MCP authorization 2026-07-28: the application type is given, so that OIDC servers check the
    // redirect URI by the right rules (a gateway reached on localhost is "native" there).
    application_type: LOOPBACK_URL_HOSTNAMES.has(new URL(context.callbackUrl).hostname) ? "native" : "web",
  };
  let registered: Awaited<ReturnType<typeof oauth.processDynamicClientRegistrationResponse>>;
  try {
    const response = await oauth.dynamicClientRegistrationRequest(server, metadata, {
      [oauth.customFetch]: (url, init) => context.request(url, init as RequestInit),
      [oauth.allowInsecureRequests]: !endpoint.startsWith("https:"),
    });
    registered = await oauth.processDynamicClientRegistrationResponse(response);
  } catch (error) {
    throw failed(registrationFailure(error), error);
  }
  const secret = typeof registered.client_secret === "string" && registered.client_secret !== ""
    ? registered.client_secret
    : undefined;
  const authMethod = typeof registered.token_endpoint_auth_method === "string"
    ? registered.token_endpoint_auth_method
    : secret === undefined
    ? "none"
    : "client_secret_basic"; // RFC 7591 §2: the default
  if (!["none", "client_secret_basic", "client_secret_post"].includes(authMethod)) {
    throw failed(`it registered the client for ${JSON.stringify(authMethod)}, which Gatehouse does not use`);
  }
  const expiresAtSeconds = Number(registered.client_secret_expires_at ?? 0);
  const nowMs = context.now();
  const client = saveUpstreamClient(context.store, {
    backend: context.backend,
    issuer: server.issuer,
    clientId: registered.client_id,
    sealedSecret: secret === undefined
      ? undefined
      : await context.vault.seal(secret, SECRET_SEAL_USER, server.issuer),
    // RFC 7591 §3.2.1: 0 means the secret does not expire.
    secretExpiresAt: secret !== undefined && expiresAtSeconds > 0 ? expiresAtSeconds * 1000 : undefined,
    authMethod,
    redirectUri: context.callbackUrl,
    registeredAt: nowMs,
  }, nowMs);
  if (client.clientId === registered.client_id) {
    context.log.info("registered at a remote authorization server", {
      backend: context.backend,
      issuer: server.issuer,
      client_id: registered.client_id,
    });
  }
  return client;
}

/** A stored registration as an oauth4webapi client, its secret opened. */
async function clientOf(stored: UpstreamClient, vault: Vault): Promise<RegisteredClient> {
  let secret: string | undefined;
  if (stored.sealedSecret !== undefined) {
    try {
      secret = await vault.open(stored.sealedSecret, SECRET_SEAL_USER, stored.issuer);
    } catch (error) {
      throw new RemoteOAuthError(
        "registration",
        `Cannot open the client secret Gatehouse registered at ${
          shown(stored.issuer)
        }: the vault key changed`,
        { cause: error },
      );
    }
  }
  return {
    client: { client_id: stored.clientId, token_endpoint_auth_method: stored.authMethod },
    auth: clientAuth(stored.authMethod, secret),
    method: "dynamic",
  };
}

function clientAuth(method: string, secret: string | undefined): oauth.ClientAuth {
  if (secret === undefined || method === "none") return oauth.None();
  return method === "client_secret_post" ? oauth.ClientSecretPost(secret) : oauth.ClientSecretBasic(secret);
}

/** What the registration endpoint's answer said, without echoing anything secret. */
function registrationFailure(error: unknown): string {
  if (error instanceof oauth.ResponseBodyError) {
    const description = error.error_description ? `: ${error.error_description.slice(0, 200)}` : "";
    return `it answered ${error.status} ${error.error}${description}`;
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    return `it answered ${error.status} (it wants an initial access token)`;
  }
  return reason(error);
}
