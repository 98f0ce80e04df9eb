// Authorization requests (RFC 6749 §4.1.1 with PKCE and RFC 8707 resource): checking one, and the errors
// and redirects it can lead to.
import { OAuthError } from "../core/oauth_error.ts";
import { type OAuthClient, redirectUriAllowed } from "./clients.ts";
import { grantedScope } from "./scopes.ts";

/**
 * The first parameter that appears more than once (RFC 6749 §3.1: parameters must not be included more
 * than once), or undefined.
 */
export function repeatedParameter(params: URLSearchParams): string | undefined {
  const seen = new Set<string>();
  for (const name of params.keys()) {
    if (seen.has(name)) return name;
    seen.add(name);
  }
  return undefined;
}

/** Refuses parameters that appear more than once, with 400 invalid_request (RFC 6749 §3.1, §3.2). */
export function refuseRepeatedParameters(params: URLSearchParams): void {
  const repeated = repeatedParameter(params);
  if (repeated !== undefined) {
    throw new OAuthError(
      "invalid_request",
      `The parameter "${repeated.slice(0, 64)}" is included more than once`,
    );
  }
}

/** A validated authorization request (RFC 6749 §4.1.1 with PKCE and RFC 8707 resource). */
export interface AuthorizationRequest {
  readonly client: OAuthClient;
  readonly redirectUri: string;
  /** The request named redirect_uri (rather than defaulting to the only one registered). */
  readonly redirectUriGiven: boolean;
  readonly state: string | undefined;
  readonly codeChallenge: string;
  readonly scope: string;
  readonly resource: string;
}

/** An authorization request error that can be sent back to the client's redirect URI. */
export class RedirectableError extends OAuthError {
  readonly redirectUri: string;
  readonly state: string | undefined;

  constructor(error: string, description: string, redirectUri: string, state: string | undefined) {
    super(error, description);
    this.redirectUri = redirectUri;
    this.state = state;
  }
}

/**
 * Validates an authorization request against `find` (the client directory) and the `resources` served.
 * Errors about the client or redirect URI must not redirect (RFC 6749 §4.1.2.1) and throw OAuthError; the
 * rest throw RedirectableError.
 */
export async function parseAuthorizationRequest(
  query: URLSearchParams,
  context: {
    find: (clientId: string) => Promise<OAuthClient | undefined>;
    /** The resources served now; the first is the default. */
    resources: () => readonly string[];
  },
): Promise<AuthorizationRequest> {
  // Before anything else: which copy of a repeated client_id or redirect_uri would we trust?
  refuseRepeatedParameters(query);
  const clientId = query.get("client_id");
  if (!clientId) throw new OAuthError("invalid_request", "client_id is missing");
  const client = await context.find(clientId);
  if (!client) throw new OAuthError("invalid_client", "Unknown client");
  const redirectUri = query.get("redirect_uri") ??
    (client.redirectUris.length === 1 ? client.redirectUris[0] : undefined);
  if (!redirectUri || !redirectUriAllowed(client.redirectUris, redirectUri)) {
    throw new OAuthError("invalid_request", "redirect_uri does not match a registered redirect URI");
  }
  const state = query.get("state") ?? undefined;
  const fail = (error: string, description: string): never => {
    throw new RedirectableError(error, description, redirectUri, state);
  };
  if (query.get("response_type") !== "code") {
    fail("unsupported_response_type", 'Only response_type "code" is supported');
  }
  if (!client.grantTypes.includes("authorization_code")) {
    fail("unauthorized_client", "This client may not use authorization codes");
  }
  const codeChallenge = query.get("code_challenge");
  if (!codeChallenge) {
    fail("invalid_request", "PKCE is required: send code_challenge with code_challenge_method S256");
  }
  if (query.get("code_challenge_method") !== "S256") {
    fail("invalid_request", "code_challenge_method must be S256");
  }
  if (!/^[A-Za-z0-9_-]{43}$/.test(codeChallenge!)) {
    fail("invalid_request", "code_challenge is not a S256 challenge");
  }
  const resources = context.resources();
  const resource = query.get("resource") ?? resources[0]!;
  if (!resources.includes(resource)) {
    fail("invalid_target", "resource is not served by this gateway");
  }
  return {
    client,
    redirectUri,
    redirectUriGiven: query.get("redirect_uri") !== null,
    state,
    codeChallenge: codeChallenge!,
    scope: grantedScope(query.get("scope")),
    resource,
  };
}

/** Adds query parameters to a redirect URI, keeping the ones it has (RFC 6749 §3.1.2). */
export function redirectWith(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  return url.href;
}
