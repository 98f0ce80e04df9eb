// How an OAuth-protected remote MCP server says where its tokens come from (MCP authorization 2025-06-18
// to 2026-07-28): its 401 challenge or well-known URIs lead to its protected resource metadata (RFC 9728),
// which names the authorization server, whose metadata (RFC 8414, OIDC discovery) gives the endpoints.
import * as oauth from "oauth4webapi";
import { VERSION } from "../version.ts";
import {
  bearerChallenge,
  type BoundedFetch,
  boundedFetcher,
  jsonObjectOf,
  reason,
  REMOTE_REQUEST_TIMEOUT_MS,
  RemoteOAuthError,
  secureOrLoopback,
  shown,
} from "./remote_requests.ts";

/** How the protected resource metadata was found. */
export type ResourceMetadataSource = "www-authenticate" | "well-known";

/** What discovery found out about a remote MCP server. */
export interface RemoteDiscovery {
  /** RFC 9728 protected resource metadata, its `resource` checked against the backend. */
  readonly resourceMetadata: oauth.ResourceServer;
  readonly resourceMetadataUrl: string;
  readonly foundBy: ResourceMetadataSource;
  /** The `scope` of the server's 401 challenge (RFC 6750 §3), when it gave one. */
  readonly challengeScopes: readonly string[] | undefined;
  /** The metadata of `authorization_servers[0]`, its issuer checked (RFC 8414 §3.3). */
  readonly server: oauth.AuthorizationServer;
}

export interface DiscoveryOptions {
  readonly fetch: typeof fetch;
  /** `oauth.resource` of the registry: a metadata `resource` equal to it is accepted too. */
  readonly configuredResource?: string;
  readonly timeoutMs?: number;
}

/** Runs discovery for the MCP endpoint `mcpUrl`; a failure is a `RemoteOAuthError` naming its step. */
export async function discoverRemoteOAuth(
  mcpUrl: string,
  options: DiscoveryOptions,
): Promise<RemoteDiscovery> {
  const timeoutMs = options.timeoutMs ?? REMOTE_REQUEST_TIMEOUT_MS;
  const request = boundedFetcher(options.fetch, timeoutMs);
  if (!secureOrLoopback(mcpUrl)) {
    throw new RemoteOAuthError(
      "mcp_request",
      `Cannot use ${shown(mcpUrl)}: it must be https (or http on loopback)`,
    );
  }
  const challenge = await challengeOf(mcpUrl, options.fetch, timeoutMs);
  const found = await resourceMetadata(
    mcpUrl,
    challenge.resourceMetadata,
    request,
    options.configuredResource,
  );
  const issuer = found.metadata.authorization_servers?.[0];
  if (typeof issuer !== "string" || !secureOrLoopback(issuer)) {
    throw new RemoteOAuthError(
      "resource_metadata",
      `Cannot discover the authorization server of ${shown(mcpUrl)}: the resource metadata at ` +
        `${shown(found.url)} names no https authorization server`,
    );
  }
  const server = await authorizationServerMetadata(issuer, request);
  return {
    resourceMetadata: found.metadata,
    resourceMetadataUrl: found.url,
    foundBy: challenge.resourceMetadata === undefined ? "well-known" : "www-authenticate",
    challengeScopes: challenge.scopes,
    server,
  };
}

/** An unauthenticated MCP `initialize`, as a client's first request would be. */
const INITIALIZE = JSON.stringify({
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: {
    protocolVersion: "2025-11-25",
    capabilities: {},
    clientInfo: { name: "Gatehouse", version: VERSION },
  },
});

/** RFC 9728 §5.1 and RFC 6750 §3: what the server's answer to an unauthenticated MCP request says. */
async function challengeOf(
  mcpUrl: string,
  fetchFn: typeof fetch,
  timeoutMs: number,
): Promise<{ resourceMetadata: string | undefined; scopes: readonly string[] | undefined }> {
  let response: Response;
  try {
    response = await fetchFn(mcpUrl, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json, text/event-stream" },
      body: INITIALIZE,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
  } catch (error) {
    throw new RemoteOAuthError(
      "mcp_request",
      `Cannot reach the MCP server at ${shown(mcpUrl)}: ${reason(error)}`,
      { cause: error },
    );
  }
  // Only the status and headers matter: the body (maybe an event stream that stays open) is not read.
  await response.body?.cancel().catch(() => {});
  if (response.status !== 401) return { resourceMetadata: undefined, scopes: undefined };
  const bearer = bearerChallenge(response.headers.get("www-authenticate") ?? "");
  const scopes = bearer?.get("scope")?.split(" ").filter((item) => item !== "") ?? [];
  return {
    resourceMetadata: bearer?.get("resource_metadata"),
    scopes: scopes.length === 0 ? undefined : scopes,
  };
}

/**
 * RFC 9728: the protected resource metadata, from the challenge's `resource_metadata` when there is one
 * (§5.1), else from the well-known URI with the MCP endpoint's path (§3.1), then the root one (an MCP
 * extension for servers at a path). Its `resource` must be the backend's (§3.3; see `resourceMatches`).
 */
async function resourceMetadata(
  mcpUrl: string,
  fromChallenge: string | undefined,
  request: BoundedFetch,
  configuredResource: string | undefined,
): Promise<{ metadata: oauth.ResourceServer; url: string }> {
  const candidates = fromChallenge === undefined ? wellKnownResourceMetadataUrls(mcpUrl) : [fromChallenge];
  const problems: string[] = [];
  for (const url of candidates) {
    if (!secureOrLoopback(url)) {
      problems.push(`${shown(url)} is not https`);
      continue;
    }
    let metadata: oauth.ResourceServer;
    try {
      const response = await request(url, { headers: { accept: "application/json" } });
      if (response.status !== 200) {
        await response.body?.cancel();
        problems.push(`${shown(url)} answered ${response.status}`);
        continue;
      }
      metadata = await jsonObjectOf(response) as oauth.ResourceServer;
    } catch (error) {
      problems.push(`${shown(url)}: ${reason(error)}`);
      continue;
    }
    if (typeof metadata.resource !== "string") {
      problems.push(`${shown(url)} names no resource`);
      continue;
    }
    if (!resourceMatches(metadata.resource, mcpUrl, configuredResource)) {
      throw new RemoteOAuthError(
        "resource_mismatch",
        `Cannot use the resource metadata at ${shown(url)}: it is for ${shown(metadata.resource)}, not ` +
          `${shown(mcpUrl)} (RFC 9728 §3.3); set oauth.resource to that resource if it is the same server`,
      );
    }
    return { metadata, url };
  }
  throw new RemoteOAuthError(
    "resource_metadata",
    `Cannot find the protected resource metadata of ${shown(mcpUrl)}: ${problems.join("; ")}`,
  );
}

/** RFC 9728 §3.1 with the endpoint's path (query kept, trailing slash dropped), then the root. */
export function wellKnownResourceMetadataUrls(mcpUrl: string): string[] {
  const url = new URL(mcpUrl);
  const root = `${url.origin}/.well-known/oauth-protected-resource`;
  const path = url.pathname.replace(/\/$/, "");
  if (path === "" && url.search === "") return [root];
  return [`${root}${path}${url.search}`, root];
}

/**
 * Whether a resource metadata document's `resource` may stand for the backend at `mcpUrl`: the same URL
 * (RFC 9728 §3.3), the configured `oauth.resource`, or a less specific resource of the same origin, a
 * path prefix of the endpoint's (RFC 8707 §2 lets a resource name a broader URI; many servers name their
 * origin; the MCP SDKs accept it). Another origin never: its tokens would be sent to a stranger.
 */
export function resourceMatches(resource: string, mcpUrl: string, configuredResource?: string): boolean {
  let given: URL;
  let endpoint: URL;
  try {
    given = new URL(resource);
    endpoint = new URL(mcpUrl);
  } catch {
    return false;
  }
  if (given.hash !== "") return false;
  if (given.href === endpoint.href) return true;
  if (configuredResource !== undefined && URL.canParse(configuredResource)) {
    if (given.href === new URL(configuredResource).href) return true;
  }
  if (given.origin !== endpoint.origin || given.search !== "") return false;
  const prefix = given.pathname.replace(/\/$/, "");
  return prefix === "" || endpoint.pathname === prefix || endpoint.pathname.startsWith(`${prefix}/`);
}

/**
 * The authorization server's metadata, from the well-known URIs the MCP specification lists, in order:
 * RFC 8414 with path insertion, OIDC discovery with path insertion, then appended (issuer with a path);
 * RFC 8414 then OIDC (issuer without). The issuer is checked (RFC 8414 §3.3), and so is PKCE with S256.
 */
async function authorizationServerMetadata(
  issuer: string,
  request: BoundedFetch,
): Promise<oauth.AuthorizationServer> {
  const problems: string[] = [];
  let server: oauth.AuthorizationServer | undefined;
  for (const url of authorizationServerMetadataUrls(issuer)) {
    try {
      const response = await request(url, { headers: { accept: "application/json" } });
      if (response.status !== 200) {
        await response.body?.cancel();
        problems.push(`${shown(url)} answered ${response.status}`);
        continue;
      }
      server = await oauth.processDiscoveryResponse(new URL(issuer), response);
      break;
    } catch (error) {
      problems.push(`${shown(url)}: ${reason(error)}`);
    }
  }
  if (server === undefined) {
    throw new RemoteOAuthError(
      "authorization_server",
      `Cannot discover the authorization server ${shown(issuer)}: ${problems.join("; ")}`,
    );
  }
  for (const endpoint of ["authorization_endpoint", "token_endpoint"] as const) {
    const value = server[endpoint];
    if (typeof value !== "string" || !secureOrLoopback(value)) {
      throw new RemoteOAuthError(
        "authorization_server",
        `Cannot use the authorization server ${shown(issuer)}: its metadata has no https ${endpoint}`,
      );
    }
  }
  // MCP authorization: a client must refuse to go on when S256 is not listed (RFC 8414 §2 makes the field
  // optional, but without it nothing says the server checks PKCE at all).
  if (!server.code_challenge_methods_supported?.includes("S256")) {
    throw new RemoteOAuthError(
      "pkce",
      `Cannot use the authorization server ${shown(issuer)}: its metadata does not list PKCE with S256 ` +
        "(code_challenge_methods_supported)",
    );
  }
  return server;
}

/** The MCP specification's order of metadata URLs for an issuer. */
export function authorizationServerMetadataUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/$/, "");
  if (path === "") {
    return [
      `${url.origin}/.well-known/oauth-authorization-server`,
      `${url.origin}/.well-known/openid-configuration`,
    ];
  }
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}
