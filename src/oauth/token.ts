// The token endpoint (RFC 6749 §3.2): exchanging codes, rotating refresh tokens, client credentials, and
// revoking tokens (RFC 7009); what it issues is recorded in the store (`store/grants.ts`).
import type { AuditLog } from "../audit/audit.ts";
import type { Registry } from "../config/types.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { hashSecret, pkceChallenge, randomToken } from "../core/secrets.ts";
import type { Logger } from "../log/logger.ts";
import {
  findCode,
  findRefreshToken,
  insertAccessToken,
  insertRefreshToken,
  markCodeUsed,
  recordRefreshTokenUse,
  revokeAccessToken,
} from "../store/grants.ts";
import type { Store } from "../store/store.ts";
import { issueAccessToken } from "./access_token.ts";
import type { Identity } from "../core/caller.ts";
import type { ClientDirectory, OAuthClient } from "./clients.ts";
import { type RefreshTokenRow, refreshUse, retireRefreshToken, revokeFamily } from "./grants.ts";
import type { SigningKey } from "./keys.ts";
import { RevokedAccessTokens } from "./revoked_access_tokens.ts";
import { grantedScope } from "./scopes.ts";

export interface TokenResponse {
  access_token: string;
  token_type: "Bearer";
  expires_in: number;
  refresh_token?: string;
  scope: string;
}

export interface TokenEndpointDependencies {
  store: Store;
  registry: () => Registry;
  clients: ClientDirectory;
  key: SigningKey;
  log: Logger;
  /** Where grants, reused refresh tokens and replayed codes are recorded. */
  audit?: AuditLog;
  /** The issuer (the public base URL). */
  issuer: () => string;
  /** The protected resources; the first is the default. */
  resources: () => readonly string[];
  /** Who a user is under today's registry; undefined ends their refresh tokens. */
  currentIdentity?: (identity: Identity) => Identity | undefined;
  now: () => number;
}

/** What a grant type's checks decide a token is issued for. */
interface Grant {
  readonly identity: Identity;
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

/** The token endpoint's grants and revocation, on plain values. */
export class TokenEndpoint {
  readonly #deps: TokenEndpointDependencies;
  readonly #now: () => number;
  readonly #revoked: RevokedAccessTokens;

  constructor(deps: TokenEndpointDependencies) {
    this.#deps = deps;
    this.#now = deps.now;
    this.#revoked = new RevokedAccessTokens(deps.store, { now: deps.now });
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
    this.#deps.audit?.record("token_grant", grant.identity.id, {
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
    const { store } = this.#deps;
    const codeHash = await hashSecret(code);
    const row = findCode(store, codeHash);
    if (!row) throw new OAuthError("invalid_grant", "The code is not valid");
    if (row.usedAt !== undefined) {
      // RFC 9700 §4.1.3: a replayed code revokes what was issued from it.
      if (row.familyId) this.#revokeFamily(row.familyId);
      this.#deps.log.warn("authorization code replayed; its tokens are revoked", {
        client_id: row.clientId,
      });
      this.#deps.audit?.record("code_replay", row.userId, {
        client_id: row.clientId,
        presented_by: client.clientId,
        tokens_revoked: row.familyId !== undefined,
      });
      throw new OAuthError("invalid_grant", "The code is not valid");
    }
    if (row.clientId !== client.clientId) throw new OAuthError("invalid_grant", "The code is not valid");
    if (row.expiresAt <= this.#now()) throw new OAuthError("invalid_grant", "The code has expired");
    const redirectUri = form.get("redirect_uri");
    // RFC 6749 §4.1.3: required, and identical, when the authorization request included it.
    if (redirectUri === null && row.redirectUriGiven) {
      throw new OAuthError("invalid_grant", "redirect_uri is required: the authorization request had one");
    }
    if (redirectUri !== null && redirectUri !== row.redirectUri) {
      throw new OAuthError("invalid_grant", "redirect_uri does not match the authorization request");
    }
    if (await pkceChallenge(verifier) !== row.codeChallenge) {
      throw new OAuthError("invalid_grant", "code_verifier does not match the code_challenge");
    }
    const resource = form.get("resource") ?? row.resource;
    if (resource !== row.resource) {
      throw new OAuthError("invalid_target", "resource differs from the authorization request");
    }
    const familyId = randomToken(16);
    if (!markCodeUsed(store, codeHash, this.#now(), familyId)) {
      throw new OAuthError("invalid_grant", "The code is not valid");
    }
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
    const row = findRefreshToken(store, tokenHash);
    if (!row || row.clientId !== client.clientId) {
      throw new OAuthError("invalid_grant", "The refresh token is not valid");
    }
    const reuseIntervalMs = this.#deps.registry().gateway.refreshReuseIntervalSeconds * 1000;
    const use = refreshUse(store, row, this.#now(), reuseIntervalMs);
    if (use.kind === "reuse") {
      this.#revokeFamily(row.familyId);
      this.#refuseReuse(row, use.state);
    }
    if (row.expiresAt <= this.#now()) throw new OAuthError("invalid_grant", "The refresh token has expired");
    const resource = form.get("resource") ?? row.resource;
    if (resource !== row.resource) {
      throw new OAuthError("invalid_target", "resource differs from the original grant");
    }
    const identity = this.#deps.currentIdentity
      ? this.#deps.currentIdentity(JSON.parse(row.identity))
      : JSON.parse(row.identity) as Identity;
    if (!identity) {
      // The user was removed, or no longer passes the allow lists: their grants end now.
      this.#revokeFamily(row.familyId);
      throw new OAuthError("invalid_grant", "The user may no longer sign in here");
    }
    const grant: Grant = { identity, resource: row.resource, scope: row.scope, familyId: row.familyId };
    const tokens = await this.#prepareTokens(client, grant);
    // Decided again with the writes, in one transaction: another use of this token may have come in while
    // the tokens were signed. Of two retries at once, the second retires what the first issued.
    const outcome = store.transaction(() => {
      const now = this.#now();
      const current = findRefreshToken(store, tokenHash);
      if (!current) return undefined; // deleted meanwhile, with its client
      const decided = refreshUse(store, current, now, reuseIntervalMs);
      if (decided.kind === "reuse") {
        this.#revokeFamily(current.familyId);
        return decided;
      }
      if (decided.kind === "retry") retireRefreshToken(store, decided.successor, now);
      // used_at stays the first rotation's: the reuse interval counts from it.
      recordRefreshTokenUse(store, tokenHash, now, tokens.refreshHash);
      tokens.record();
      return decided;
    });
    if (outcome === undefined) throw new OAuthError("invalid_grant", "The refresh token is not valid");
    if (outcome.kind === "reuse") this.#refuseReuse(row, outcome.state);
    if (outcome.kind === "retry") {
      const sinceRotationMs = this.#now() - (row.usedAt ?? this.#now());
      this.#deps.log.info("refresh answer lost: a new pair issued, the unused one retired", {
        client_id: client.clientId,
      });
      this.#deps.audit?.record("refresh_retry", row.userId, {
        client_id: client.clientId,
        seconds_since_rotation: Math.floor(sinceRotationMs / 1000),
      });
    }
    return { grant, response: tokens.response };
  }

  /** Refuses a reused refresh token, whose family was just revoked, and records it. */
  #refuseReuse(row: RefreshTokenRow, state: "rotated" | "revoked" | "retired"): never {
    this.#deps.log.warn("refresh token reused; its family is revoked", { client_id: row.clientId });
    this.#deps.audit?.record("refresh_reuse", row.userId, { client_id: row.clientId, token_state: state });
    throw new OAuthError("invalid_grant", "The refresh token is not valid");
  }

  #clientCredentials(client: OAuthClient, form: URLSearchParams): Grant {
    if (client.kind !== "static" || !client.secret) {
      throw new OAuthError(
        "unauthorized_client",
        "Only registry clients with a secret may use client_credentials",
      );
    }
    const resources = this.#deps.resources();
    const resource = form.get("resource") ?? resources[0]!;
    if (!resources.includes(resource)) {
      throw new OAuthError("invalid_target", "resource is not served by this gateway");
    }
    const user = client.user ?? client.clientId;
    const identity: Identity = { id: user, name: user, groups: [...(client.groups ?? [])] };
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
      issuer: this.#deps.issuer(),
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
    const { store } = this.#deps;
    const record = () => {
      // Every access token is recorded with its owners; one without a refresh family (client_credentials)
      // is a family of its own, so that revoking a user's or a client's tokens reaches it too.
      insertAccessToken(store, {
        jti: access.jti,
        familyId: familyId ?? `token:${access.jti}`,
        expiresAt: access.expiresAt * 1000, // the JWT's exp is epoch seconds
        clientId: client.clientId,
        userId: identity.id,
      });
      if (refreshHash === undefined) return;
      insertRefreshToken(store, {
        tokenHash: refreshHash,
        familyId: familyId!,
        clientId: client.clientId,
        userId: identity.id,
        identity: JSON.stringify(identity),
        resource,
        scope,
        expiresAt: refreshExpiresAt,
        accessJti: access.jti,
      });
    };
    return { response, refreshHash, record };
  }

  #revokeFamily(familyId: string): void {
    // Refresh and access tokens together: a crash in between must not leave half a family live.
    this.#deps.store.transaction(() => revokeFamily(this.#deps.store, familyId, this.#now()));
  }

  /**
   * RFC 7009: revokes a refresh token's family, or an access token by its jti until its expiry
   * (`expiresAtSeconds`, the JWT's `exp`); unknown tokens are fine.
   */
  async revoke(
    client: OAuthClient,
    token: string,
    jti: string | undefined,
    expiresAtSeconds: number | undefined,
  ): Promise<void> {
    const row = findRefreshToken(this.#deps.store, await hashSecret(token));
    if (row && row.clientId === client.clientId) this.#revokeFamily(row.familyId);
    if (jti && expiresAtSeconds) revokeAccessToken(this.#deps.store, jti, expiresAtSeconds * 1000);
  }

  /**
   * Whether an access token is revoked, from memory: this process's revocations count at once, another
   * process's (the CLI's) within a second.
   */
  isRevoked(jti: string): boolean {
    return this.#revoked.has(jti);
  }
}
