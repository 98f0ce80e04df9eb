import type { AuditLog } from "../audit/audit.ts";
import type { Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";
import { issueAccessToken, type TokenIdentity } from "./access_token.ts";
import { type ClientDirectory, type OAuthClient, redirectUriAllowed } from "./clients.ts";
import { OAuthError } from "../core/oauth_error.ts";
import {
  type RefreshTokenRow,
  refreshTokenRow,
  refreshUse,
  retireRefreshToken,
  revokeFamily,
} from "./grants.ts";
import type { SigningKey } from "./keys.ts";
import { grantedScope } from "./scopes.ts";
import { hashSecret, pkceChallenge, randomToken, timingSafeEqual } from "../core/secrets.ts";

/** Codes live this long (RFC 9700 §2.1.1: short-lived). */
const CODE_TTL_MS = 60_000;
/** A consent page may be answered within this long. */
const CONSENT_TTL_MS = 10 * 60_000;

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

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

interface Dependencies {
  store: Store;
  registry: () => Registry;
  clients: ClientDirectory;
  key: SigningKey;
  log: Logger;
  /** Where grants, consents, reused refresh tokens and replayed codes are recorded. */
  audit?: AuditLog;
  /** The public base URL (issuer). */
  baseUrl: () => string;
  /** Who a user is under today's registry; undefined ends their refresh tokens. */
  currentIdentity?: (identity: TokenIdentity) => TokenIdentity | undefined;
  now?: () => number;
}

/** The authorization server's operations, on plain values; routes map HTTP to them. */
export class AuthorizationServer {
  readonly #deps: Dependencies;
  readonly #now: () => number;

  constructor(deps: Dependencies) {
    this.#deps = deps;
    this.#now = deps.now ?? Date.now;
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
  async parseAuthorizationRequest(query: URLSearchParams): Promise<AuthorizationRequest> {
    // Before anything else: which copy of a repeated client_id or redirect_uri would we trust?
    refuseRepeatedParameters(query);
    const clientId = query.get("client_id");
    if (!clientId) throw new OAuthError("invalid_request", "client_id is missing");
    const client = await this.#deps.clients.find(clientId);
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
    const resource = query.get("resource") ?? `${this.#deps.baseUrl()}/mcp`;
    if (!this.resources().includes(resource)) {
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

  /**
   * Keeps a validated authorization request's parameters for the consent form, which carries only the
   * returned handle; `binding` is a secret of the browser session shown the page (its CSRF token).
   */
  async holdForConsent(query: URLSearchParams, binding: string): Promise<string> {
    const handle = randomToken(24);
    const { db } = this.#deps.store;
    db.prepare("DELETE FROM authorization_requests WHERE expires_at <= ?").run(this.#now());
    db.prepare(
      "INSERT INTO authorization_requests (handle_hash, binding_hash, params, expires_at) VALUES (?, ?, ?, ?)",
    ).run(
      await hashSecret(handle),
      await hashSecret(binding),
      JSON.stringify(Object.fromEntries(query)),
      this.#now() + CONSENT_TTL_MS,
    );
    return handle;
  }

  /**
   * The parameters held for a consent form, once: undefined when the handle is unknown, expired, used, or
   * was shown to another browser session.
   */
  async takeHeldForConsent(handle: string, binding: string): Promise<URLSearchParams | undefined> {
    if (!handle) return undefined;
    const handleHash = await hashSecret(handle);
    const { db } = this.#deps.store;
    const row = db.prepare(
      "SELECT binding_hash, params, expires_at FROM authorization_requests WHERE handle_hash = ?",
    ).get(handleHash) as { binding_hash: string; params: string; expires_at: number } | undefined;
    if (!row || row.expires_at <= this.#now()) return undefined;
    if (!timingSafeEqual(row.binding_hash, await hashSecret(binding))) return undefined;
    const taken = db.prepare("DELETE FROM authorization_requests WHERE handle_hash = ?").run(handleHash);
    if (taken.changes !== 1) return undefined;
    return new URLSearchParams(JSON.parse(row.params) as Record<string, string>);
  }

  /** True when the user already approved this client. */
  hasConsent(userId: string, clientId: string): boolean {
    return this.#deps.store.db.prepare("SELECT 1 FROM consents WHERE user_id = ? AND client_id = ?")
      .get(userId, clientId) !== undefined;
  }

  /** The user's answer on the consent page; an approval is remembered for this client. */
  recordConsent(request: AuthorizationRequest, userId: string, decision: "approve" | "deny"): void {
    const { clientId } = request.client;
    if (decision === "approve") {
      this.#deps.store.db.prepare(
        "INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?) ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at",
      ).run(userId, clientId, request.scope, this.#now());
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
  async issueCode(request: AuthorizationRequest, identity: TokenIdentity): Promise<string> {
    const code = randomToken(32);
    this.#deps.store.db.prepare(
      "INSERT INTO authorization_codes (code_hash, client_id, user_id, identity, redirect_uri, redirect_uri_given, code_challenge, resource, scope, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    ).run(
      await hashSecret(code),
      request.client.clientId,
      identity.userId,
      JSON.stringify(identity),
      request.redirectUri,
      request.redirectUriGiven ? 1 : 0,
      request.codeChallenge,
      request.resource,
      request.scope,
      this.#now() + CODE_TTL_MS,
    );
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
  async token(client: OAuthClient, form: URLSearchParams): Promise<TokenResponse> {
    const grantType = form.get("grant_type");
    if (!grantType) throw new OAuthError("invalid_request", "grant_type is missing");
    if (!client.grantTypes.includes(grantType)) {
      throw new OAuthError("unauthorized_client", "This client may not use this grant type");
    }
    let grant: Grant;
    let response: TokenResponse;
    switch (grantType) {
      case "authorization_code":
        grant = await this.#exchangeCode(client, form);
        response = await this.#issueTokens(client, grant);
        break;
      case "refresh_token":
        ({ grant, response } = await this.#refresh(client, form));
        break;
      case "client_credentials":
        grant = this.#clientCredentials(client, form);
        response = await this.#issueTokens(client, grant);
        break;
      default:
        throw new OAuthError("unsupported_grant_type", "Unsupported grant_type");
    }
    this.#deps.clients.recordGrant(client.clientId);
    this.#deps.audit?.record("token_grant", grant.identity.userId, {
      client_id: client.clientId,
      grant_type: grantType,
      resource: grant.resource,
      scope: grant.scope,
      refresh_token_issued: response.refresh_token !== undefined,
    });
    return response;
  }

  async #exchangeCode(client: OAuthClient, form: URLSearchParams): Promise<Grant> {
    const code = form.get("code");
    const verifier = form.get("code_verifier");
    if (!code) throw new OAuthError("invalid_request", "code is missing");
    if (!verifier) throw new OAuthError("invalid_request", "code_verifier is missing");
    const { db } = this.#deps.store;
    const codeHash = await hashSecret(code);
    const row = db.prepare("SELECT * FROM authorization_codes WHERE code_hash = ?").get(codeHash) as
      | {
        client_id: string;
        user_id: string;
        identity: string;
        redirect_uri: string;
        redirect_uri_given: number;
        code_challenge: string;
        resource: string;
        scope: string;
        expires_at: number;
        used_at: number | null;
        family_id: string | null;
      }
      | undefined;
    if (!row) throw new OAuthError("invalid_grant", "The code is not valid");
    if (row.used_at !== null) {
      // RFC 9700 §4.1.3: a replayed code revokes what was issued from it.
      if (row.family_id) this.#revokeFamily(row.family_id);
      this.#deps.log.warn("authorization code replayed; its tokens are revoked", {
        client_id: row.client_id,
      });
      this.#deps.audit?.record("code_replay", row.user_id, {
        client_id: row.client_id,
        presented_by: client.clientId,
        tokens_revoked: row.family_id !== null,
      });
      throw new OAuthError("invalid_grant", "The code is not valid");
    }
    if (row.client_id !== client.clientId) throw new OAuthError("invalid_grant", "The code is not valid");
    if (row.expires_at <= this.#now()) throw new OAuthError("invalid_grant", "The code has expired");
    const redirectUri = form.get("redirect_uri");
    // RFC 6749 §4.1.3: required, and identical, when the authorization request included it.
    if (redirectUri === null && row.redirect_uri_given) {
      throw new OAuthError("invalid_grant", "redirect_uri is required: the authorization request had one");
    }
    if (redirectUri !== null && redirectUri !== row.redirect_uri) {
      throw new OAuthError("invalid_grant", "redirect_uri does not match the authorization request");
    }
    if (await pkceChallenge(verifier) !== row.code_challenge) {
      throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
    }
    const resource = form.get("resource") ?? row.resource;
    if (resource !== row.resource) {
      throw new OAuthError("invalid_target", "resource differs from the authorization request");
    }
    const familyId = randomToken(16);
    const used = db.prepare(
      "UPDATE authorization_codes SET used_at = ?, family_id = ? WHERE code_hash = ? AND used_at IS NULL",
    ).run(this.#now(), familyId, codeHash);
    if (used.changes !== 1) throw new OAuthError("invalid_grant", "The code is not valid");
    return { identity: JSON.parse(row.identity), resource: row.resource, scope: row.scope, familyId };
  }

  /**
   * Rotates a refresh token (RFC 9700 §4.14.2). A rotated one presented again revokes its family, except
   * within the reuse interval while its successor is unused: the answer of its rotation was lost (a crash,
   * a dropped connection), so the successor is retired and a new pair issued.
   */
  async #refresh(
    client: OAuthClient,
    form: URLSearchParams,
  ): Promise<{ grant: Grant; response: TokenResponse }> {
    const token = form.get("refresh_token");
    if (!token) throw new OAuthError("invalid_request", "refresh_token is missing");
    const { store } = this.#deps;
    const tokenHash = await hashSecret(token);
    const row = refreshTokenRow(store, tokenHash);
    if (!row || row.client_id !== client.clientId) {
      throw new OAuthError("invalid_grant", "The refresh token is not valid");
    }
    const reuseIntervalMs = this.#deps.registry().gateway.refreshReuseIntervalSeconds * 1000;
    const use = refreshUse(store, row, this.#now(), reuseIntervalMs);
    if (use.kind === "reuse") {
      this.#revokeFamily(row.family_id);
      this.#refuseReuse(row, use.state);
    }
    if (row.expires_at <= this.#now()) throw new OAuthError("invalid_grant", "The refresh token has expired");
    const resource = form.get("resource") ?? row.resource;
    if (resource !== row.resource) {
      throw new OAuthError("invalid_target", "resource differs from the original grant");
    }
    const identity = this.#deps.currentIdentity
      ? this.#deps.currentIdentity(JSON.parse(row.identity))
      : JSON.parse(row.identity) as TokenIdentity;
    if (!identity) {
      // The user was removed, or no longer passes the allow lists: their grants end now.
      this.#revokeFamily(row.family_id);
      throw new OAuthError("invalid_grant", "The user may no longer sign in here");
    }
    const grant: Grant = { identity, resource: row.resource, scope: row.scope, familyId: row.family_id };
    const tokens = await this.#prepareTokens(client, grant);
    // Decided again with the writes, in one transaction: another use of this token may have come in while
    // the tokens were signed. Of two retries at once, the second retires what the first issued.
    const outcome = store.transaction(() => {
      const now = this.#now();
      const current = refreshTokenRow(store, tokenHash);
      if (!current) return undefined; // deleted meanwhile, with its client
      const decided = refreshUse(store, current, now, reuseIntervalMs);
      if (decided.kind === "reuse") {
        this.#revokeFamily(current.family_id);
        return decided;
      }
      if (decided.kind === "retry") retireRefreshToken(store, decided.successor, now);
      // used_at stays the first rotation's: the reuse interval counts from it.
      store.db.prepare(
        "UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?), successor_hash = ? WHERE token_hash = ?",
      ).run(now, tokens.refreshHash ?? null, tokenHash);
      tokens.record();
      return decided;
    });
    if (outcome === undefined) throw new OAuthError("invalid_grant", "The refresh token is not valid");
    if (outcome.kind === "reuse") this.#refuseReuse(row, outcome.state);
    if (outcome.kind === "retry") {
      const sinceRotationMs = this.#now() - (row.used_at ?? this.#now());
      this.#deps.log.info("refresh answer lost: a new pair issued, the unused one retired", {
        client_id: client.clientId,
      });
      this.#deps.audit?.record("refresh_retry", row.user_id, {
        client_id: client.clientId,
        seconds_since_rotation: Math.floor(sinceRotationMs / 1000),
      });
    }
    return { grant, response: tokens.response };
  }

  /** Refuses a reused refresh token, whose family was just revoked, and records it. */
  #refuseReuse(row: RefreshTokenRow, state: "rotated" | "revoked" | "retired"): never {
    this.#deps.log.warn("refresh token reused; its family is revoked", { client_id: row.client_id });
    this.#deps.audit?.record("refresh_reuse", row.user_id, { client_id: row.client_id, token_state: state });
    throw new OAuthError("invalid_grant", "The refresh token is not valid");
  }

  #clientCredentials(client: OAuthClient, form: URLSearchParams): Grant {
    if (client.kind !== "static" || !client.secret) {
      throw new OAuthError(
        "unauthorized_client",
        "Only registry clients with a secret may use client_credentials",
      );
    }
    const resource = form.get("resource") ?? `${this.#deps.baseUrl()}/mcp`;
    if (!this.resources().includes(resource)) {
      throw new OAuthError("invalid_target", "resource is not served by this gateway");
    }
    const user = client.user ?? client.clientId;
    const identity: TokenIdentity = { userId: user, name: user, groups: [...(client.groups ?? [])] };
    return { identity, resource, scope: grantedScope(form.get("scope")), familyId: undefined };
  }

  /** Issues and records the tokens of a grant, in one transaction. */
  async #issueTokens(client: OAuthClient, grant: Grant): Promise<TokenResponse> {
    const tokens = await this.#prepareTokens(client, grant);
    this.#deps.store.transaction(tokens.record);
    return tokens.response;
  }

  /** Signs the access token and draws the refresh token; nothing is stored until `record()` runs. */
  async #prepareTokens(client: OAuthClient, grant: Grant): Promise<PreparedTokens> {
    const { identity, resource, scope, familyId } = grant;
    const { gateway } = this.#deps.registry();
    const access = await issueAccessToken(this.#deps.key, {
      issuer: this.issuer,
      audience: resource,
      clientId: client.clientId,
      scope,
      identity,
    }, { ttlSeconds: gateway.accessTokenTtlSeconds, now: this.#now });
    const response: TokenResponse = {
      access_token: access.token,
      token_type: "Bearer",
      expires_in: gateway.accessTokenTtlSeconds,
      scope,
    };
    const refresh = familyId !== undefined && client.grantTypes.includes("refresh_token")
      ? randomToken(32)
      : undefined;
    const refreshHash = refresh === undefined ? undefined : await hashSecret(refresh);
    if (refresh !== undefined) response.refresh_token = refresh;
    const refreshExpiresAt = this.#now() + gateway.refreshTokenTtlSeconds * 1000;
    const { db } = this.#deps.store;
    const record = () => {
      // Every access token is recorded with its owners; one without a refresh family (client_credentials)
      // is a family of its own, so that revoking a user's or a client's tokens reaches it too.
      db.prepare(
        "INSERT INTO access_token_grants (jti, family_id, expires_at, client_id, user_id) VALUES (?, ?, ?, ?, ?)",
      ).run(
        access.jti,
        familyId ?? `token:${access.jti}`,
        access.expiresAt,
        client.clientId,
        identity.userId,
      );
      if (refreshHash === undefined) return;
      db.prepare(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity, resource, scope, expires_at, access_jti) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
      ).run(
        refreshHash,
        familyId!,
        client.clientId,
        identity.userId,
        JSON.stringify(identity),
        resource,
        scope,
        refreshExpiresAt,
        access.jti,
      );
    };
    return { response, refreshHash, record };
  }

  #revokeFamily(familyId: string): void {
    // Refresh and access tokens together: a crash in between must not leave half a family live.
    this.#deps.store.transaction(() => revokeFamily(this.#deps.store, familyId, this.#now()));
  }

  /** RFC 7009: revokes a refresh token's family, or an access token by its jti; unknown tokens are fine. */
  async revoke(
    client: OAuthClient,
    token: string,
    jti: string | undefined,
    expiresAt: number | undefined,
  ): Promise<void> {
    const { db } = this.#deps.store;
    const row = db.prepare("SELECT family_id, client_id FROM refresh_tokens WHERE token_hash = ?")
      .get(await hashSecret(token)) as { family_id: string; client_id: string } | undefined;
    if (row && row.client_id === client.clientId) this.#revokeFamily(row.family_id);
    if (jti && expiresAt) {
      db.prepare("INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)").run(
        jti,
        expiresAt,
      );
    }
  }

  isRevoked(jti: string): boolean {
    return this.#deps.store.db.prepare("SELECT 1 FROM revoked_access_tokens WHERE jti = ?").get(jti) !==
      undefined;
  }

  /** Deletes what has expired: codes, refresh tokens, revocations of expired access tokens. */
  purgeExpired(): void {
    const now = this.#now();
    const { db } = this.#deps.store;
    db.prepare("DELETE FROM authorization_codes WHERE expires_at <= ?").run(now - CODE_TTL_MS);
    db.prepare("DELETE FROM refresh_tokens WHERE expires_at <= ?").run(now);
    db.prepare("DELETE FROM revoked_access_tokens WHERE expires_at <= ?").run(Math.floor(now / 1000));
    db.prepare("DELETE FROM access_token_grants WHERE expires_at <= ?").run(Math.floor(now / 1000));
    db.prepare("DELETE FROM authorization_requests WHERE expires_at <= ?").run(now);
    this.#deps.clients.purgeUnused(this.#deps.registry().gateway.unusedClientTtlSeconds);
  }
}

/** What a grant type's checks decide a token is issued for. */
interface Grant {
  readonly identity: TokenIdentity;
  readonly resource: string;
  readonly scope: string;
  /** The refresh family (codes and refresh tokens); undefined for client_credentials. */
  readonly familyId: string | undefined;
}

/** Tokens signed and drawn, not stored yet: `record()` stores them (inside the caller's transaction). */
interface PreparedTokens {
  readonly response: TokenResponse;
  /** Hash of the refresh token in `response`, when there is one. */
  readonly refreshHash: string | undefined;
  readonly record: () => void;
}

/** Adds query parameters to a redirect URI, keeping the ones it has (RFC 6749 §3.1.2). */
function redirectWith(uri: string, params: Record<string, string | undefined>): string {
  const url = new URL(uri);
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined) url.searchParams.set(name, value);
  }
  return url.href;
}
