// The OAuth requests of a connection, against any target (a registry service or an OAuth-protected
// backend): the authorization URL (PKCE, RFC 8707 resource), the code exchange (state and RFC 9207 iss
// checked by oauth4webapi), the refresh and the revocation.
import * as oauth from "oauth4webapi";
import { insecureAllowed } from "../core/urls.ts";
import type { ConnectStep } from "./connect_failure.ts";
import type { ResolvedTarget } from "./connect_targets.ts";

/** RFC 8707's `resource` for a token request, when there is one. */
function resourceParameter(resource: string | undefined): Record<string, string> {
  return resource === undefined ? {} : { resource };
}

/** The target's authorization URL for one attempt (`state` and the PKCE verifier are the caller's). */
export async function authorizationUrl(
  target: ResolvedTarget,
  attempt: { readonly callbackUrl: string; readonly state: string; readonly codeVerifier: string },
): Promise<string> {
  const server = await target.server();
  const { client } = await target.client(server);
  const scopes = await target.scopes();
  const resource = await target.resource();
  if (!server.authorization_endpoint) {
    throw new Error("the authorization server has no authorization_endpoint");
  }
  const url = new URL(server.authorization_endpoint);
  url.searchParams.set("client_id", client.client_id);
  url.searchParams.set("redirect_uri", attempt.callbackUrl);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("state", attempt.state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(attempt.codeVerifier));
  url.searchParams.set("code_challenge_method", "S256");
  if (scopes.length > 0) url.searchParams.set("scope", scopes.join(" "));
  // RFC 8707: a token for this one server (an OAuth-protected backend), usable nowhere else.
  if (resource !== undefined) url.searchParams.set("resource", resource);
  for (const [name, value] of Object.entries(target.authorizationParams)) url.searchParams.set(name, value);
  return url.href;
}

/**
 * Checks the callback (state; `iss` when the server sends or promises it, RFC 9207) and exchanges its code;
 * `onStep` is told each step, so that a failure can say where it happened.
 */
export async function exchangeCode(
  target: ResolvedTarget,
  callback: URL,
  attempt: { readonly callbackUrl: string; readonly state: string; readonly codeVerifier: string },
  onStep: (step: ConnectStep) => void,
): Promise<oauth.TokenEndpointResponse> {
  onStep("discovery");
  const server = await target.server();
  const { client, auth } = await target.client(server);
  onStep("authorization");
  const parameters = oauth.validateAuthResponse(server, client, callback, attempt.state);
  onStep("token_request");
  const response = await oauth.authorizationCodeGrantRequest(
    server,
    client,
    auth,
    parameters,
    attempt.callbackUrl,
    attempt.codeVerifier,
    {
      additionalParameters: resourceParameter(await target.resource()),
      [oauth.allowInsecureRequests]: insecureAllowed(server.token_endpoint),
    },
  );
  onStep("token_response");
  return await forgettingRefusedClient(
    target,
    server,
    client,
    oauth.processAuthorizationCodeResponse(server, client, response),
  );
}

/**
 * A token response that says `invalid_client` of a client Gatehouse registered itself (a remote Gatehouse
 * deletes registrations that never obtained a grant) drops that registration, so that the next attempt
 * registers again instead of failing the same way forever.
 */
async function forgettingRefusedClient<T>(
  target: ResolvedTarget,
  server: oauth.AuthorizationServer,
  client: oauth.Client,
  response: Promise<T>,
): Promise<T> {
  try {
    return await response;
  } catch (error) {
    if (error instanceof oauth.ResponseBodyError && error.error === "invalid_client") {
      target.forgetClient?.(server, client.client_id);
    }
    throw error;
  }
}

/** A refresh token grant at the target. */
export async function refreshGrant(
  target: ResolvedTarget,
  refreshToken: string,
): Promise<oauth.TokenEndpointResponse> {
  const server = await target.server();
  const { client, auth } = await target.client(server);
  const response = await oauth.refreshTokenGrantRequest(server, client, auth, refreshToken, {
    additionalParameters: resourceParameter(await target.resource()),
    [oauth.allowInsecureRequests]: insecureAllowed(server.token_endpoint),
  });
  return await forgettingRefusedClient(
    target,
    server,
    client,
    oauth.processRefreshTokenResponse(server, client, response),
  );
}

/** Revokes `token` at the target (RFC 7009); false when the target offers no revocation. */
export async function revokeAt(target: ResolvedTarget, token: string): Promise<boolean> {
  const server = await target.server();
  if (!server.revocation_endpoint) return false;
  const { client, auth } = await target.client(server);
  const response = await oauth.revocationRequest(server, client, auth, token, {
    [oauth.allowInsecureRequests]: insecureAllowed(server.revocation_endpoint),
  });
  await oauth.processRevocationResponse(response);
  return true;
}

/**
 * A token is refreshed this long before it expires, or halfway through its life when that is shorter
 * (a token living a minute or less would otherwise be refreshed on every call).
 */
const REFRESH_MARGIN_MS = 60_000;

/** Whether a token issued at `issuedAt` and expiring at `expiresAt` (epoch ms) should be refreshed `now`. */
export function refreshDue(expiresAt: number, issuedAt: number, now: number): boolean {
  const margin = Math.min(REFRESH_MARGIN_MS, Math.max(0, expiresAt - issuedAt) / 2);
  return expiresAt - margin <= now;
}
