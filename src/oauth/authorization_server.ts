// The authorization server's operations on plain values, which routes map HTTP to: authorization requests,
// consent and codes here; the token endpoint and revocation in token.ts.
import {
  deleteAuthorizationRequest,
  deleteExpiredAuthorizationRequests,
  findAuthorizationRequest,
  insertAuthorizationRequest,
} from "../store/authorization_requests.ts";
import { hasConsent, saveConsent } from "../store/consents.ts";
import {
  deleteCodesExpiredBy,
  deleteExpiredAccessTokens,
  deleteExpiredRefreshTokens,
  insertCode,
} from "../store/grants.ts";
import type { Identity } from "../core/caller.ts";
import {
  type AuthorizationRequest,
  parseAuthorizationRequest,
  RedirectableError,
  redirectWith,
} from "./authorization_request.ts";
import type { OAuthClient } from "./clients.ts";
import { TokenEndpoint, type TokenEndpointDependencies, type TokenResponse } from "./token.ts";
import { hashSecret, randomToken, timingSafeEqual } from "../core/secrets.ts";

export {
  type AuthorizationRequest,
  RedirectableError,
  refuseRepeatedParameters,
  repeatedParameter,
} from "./authorization_request.ts";
export type { TokenResponse } from "./token.ts";

/** Codes live this long (RFC 9700 §2.1.1: short-lived). */
const CODE_TTL_MS = 60_000;
/** A consent page may be answered within this long. */
const CONSENT_TTL_MS = 10 * 60_000;

/** What the token endpoint needs too, plus the public base URL (the issuer) and an optional clock. */
interface Dependencies extends
  Pick<
    TokenEndpointDependencies,
    "store" | "registry" | "clients" | "key" | "log" | "audit" | "currentIdentity"
  > {
  /** The public base URL (issuer). */
  baseUrl: () => string;
  now?: () => number;
}

/** The authorization server's operations, on plain values; routes map HTTP to them. */
export class AuthorizationServer {
  readonly #deps: Dependencies;
  readonly #now: () => number;
  readonly #tokens: TokenEndpoint;

  constructor(deps: Dependencies) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
    this.#tokens = new TokenEndpoint({
      ...deps,
      issuer: () => this.issuer,
      resources: () => this.resources(),
      now: this.#now,
    });
  }

  get issuer(): string {
    return this.#deps.baseUrl();
  }

  /** The protected resources: `/mcp` and each `/mcp/{backend}`. */
  resources(): string[] {
    const base = this.#deps.baseUrl();
    return [
      `${base}/mcp`,
      ...Object.keys(this.#deps.registry().backends).map((name) => `${base}/mcp/${name}`),
    ];
  }

  /**
   * Validates an authorization request. Errors about the client or redirect URI must not redirect
   * (RFC 6749 §4.1.2.1) and throw OAuthError; the rest throw RedirectableError.
   */
  parseAuthorizationRequest(query: URLSearchParams): Promise<AuthorizationRequest> {
    return parseAuthorizationRequest(query, {
      find: (clientId) => this.#deps.clients.find(clientId),
      resources: () => this.resources(),
    });
  }

  /**
   * Keeps a validated authorization request's parameters for the consent form, which carries only the
   * returned handle; `binding` is a secret of the browser session shown the page (its CSRF token).
   */
  async holdForConsent(query: URLSearchParams, binding: string): Promise<string> {
    const handle = randomToken(24);
    const { store } = this.#deps;
    deleteExpiredAuthorizationRequests(store, this.#now());
    insertAuthorizationRequest(store, {
      handleHash: await hashSecret(handle),
      bindingHash: await hashSecret(binding),
      params: JSON.stringify(Object.fromEntries(query)),
      expiresAt: this.#now() + CONSENT_TTL_MS,
    });
    return handle;
  }

  /**
   * The parameters held for a consent form, once: undefined when the handle is unknown, expired, used, or
   * was shown to another browser session.
   */
  async takeHeldForConsent(handle: string, binding: string): Promise<URLSearchParams | undefined> {
    if (!handle) return undefined;
    const handleHash = await hashSecret(handle);
    const { store } = this.#deps;
    const held = findAuthorizationRequest(store, handleHash);
    if (!held || held.expiresAt <= this.#now()) return undefined;
    if (!timingSafeEqual(held.bindingHash, await hashSecret(binding))) return undefined;
    if (!deleteAuthorizationRequest(store, handleHash)) return undefined;
    return new URLSearchParams(JSON.parse(held.params) as Record<string, string>);
  }

  /** True when the user already approved this client. */
  hasConsent(userId: string, clientId: string): boolean {
    return hasConsent(this.#deps.store, userId, clientId);
  }

  /** The user's answer on the consent page; an approval is remembered for this client. */
  recordConsent(request: AuthorizationRequest, userId: string, decision: "approve" | "deny"): void {
    const { clientId } = request.client;
    if (decision === "approve") {
      saveConsent(this.#deps.store, { userId, clientId, scope: request.scope, grantedAt: this.#now() });
    }
    this.#deps.audit?.record("consent", userId, {
      decision,
      client_id: clientId,
      client_name: request.client.name,
      redirect_host: new URL(request.redirectUri).host || request.redirectUri,
      resource: request.resource,
      scope: request.scope,
    });
  }

  /** Issues a code and returns the URL to send the browser to (with `iss`, RFC 9207). */
  async issueCode(request: AuthorizationRequest, identity: Identity): Promise<string> {
    const code = randomToken(32);
    insertCode(this.#deps.store, {
      codeHash: await hashSecret(code),
      clientId: request.client.clientId,
      userId: identity.id,
      identity: JSON.stringify(identity),
      redirectUri: request.redirectUri,
      redirectUriGiven: request.redirectUriGiven,
      codeChallenge: request.codeChallenge,
      resource: request.resource,
      scope: request.scope,
      expiresAt: this.#now() + CODE_TTL_MS,
    });
    return redirectWith(request.redirectUri, { code, state: request.state, iss: this.issuer });
  }

  /** The redirect for an error after the client and redirect URI were validated. */
  errorRedirect(error: RedirectableError): string {
    return redirectWith(error.redirectUri, {
      error: error.error,
      error_description: error.message,
      state: error.state,
      iss: this.issuer,
    });
  }

  /** The token endpoint (RFC 6749 §3.2), for an authenticated client. */
  token(client: OAuthClient, form: URLSearchParams): Promise<TokenResponse> {
    return this.#tokens.token(client, form);
  }

  /**
   * RFC 7009: revokes a refresh token's family, or an access token by its jti until `expiresAt` (the
   * JWT's `exp`, epoch seconds); unknown tokens are fine.
   */
  revoke(
    client: OAuthClient,
    token: string,
    jti: string | undefined,
    expiresAt: number | undefined,
  ): Promise<void> {
    return this.#tokens.revoke(client, token, jti, expiresAt);
  }

  /** Whether an access token is revoked; answered from memory (`revoked_access_tokens.ts`). */
  isRevoked(jti: string): boolean {
    return this.#tokens.isRevoked(jti);
  }

  /** Deletes what has expired: codes, refresh tokens, revocations of expired access tokens. */
  purgeExpired(): void {
    const now = this.#now();
    const { store } = this.#deps;
    // A code is kept a while after it expires, so that its replay is still recognised.
    deleteCodesExpiredBy(store, now - CODE_TTL_MS);
    deleteExpiredRefreshTokens(store, now);
    deleteExpiredAccessTokens(store, now);
    deleteExpiredAuthorizationRequests(store, now);
    this.#deps.clients.purgeUnused(this.#deps.registry().gateway.unusedClientTtlSeconds);
  }
}
