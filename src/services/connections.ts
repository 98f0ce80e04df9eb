// Users' connections to third-party services (product section 6): consent links, the code flow with the
// service, encrypted tokens and their refresh.
import * as oauth from "oauth4webapi";
import type { AuditLog } from "../audit/audit.ts";
import { type Registry, remoteOAuthOf, remoteOAuthServiceName } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { hashSecret, randomToken } from "../core/secrets.ts";
import {
  consumePendingConnect,
  deleteConnectTicketsExpiredBy,
  deletePendingConnectsExpiredBy,
  findConnectTicket,
  findPendingConnect,
  insertConnectTicket,
  insertPendingConnect,
  markConnectTicketUsed,
} from "../store/connect_tickets.ts";
import {
  claimServiceTokenRefresh,
  listServiceConnections,
  releaseServiceTokenRefresh,
} from "../store/service_tokens.ts";
import type { Store } from "../store/store.ts";
import { connectFailure, type ConnectStep } from "./connect_failure.ts";
import { ConsentRequiredError } from "./consent_required.ts";
import { authorizationUrl, exchangeCode, refreshDue, refreshGrant, revokeAt } from "./code_flow.ts";
import { SealedTokens } from "./sealed_tokens.ts";
import { ConnectTargets, type ResolvedTarget, servicePath } from "./connect_targets.ts";
import { clientMetadataDocument } from "./remote_oauth.ts";
import type { Vault } from "./vault.ts";

export { chooseTokenEndpointAuthMethod } from "./service_endpoints.ts";
export { refreshDue } from "./code_flow.ts";
export { servicePath } from "./connect_targets.ts";

const TICKET_TTL_MS = 10 * 60_000;
/** How long a claimed refresh is another process's (a request to the service is bounded well within it). */
const REFRESH_LEASE_MS = 15_000;
const REFRESH_POLL_MS = 100;
const PENDING_TTL_MS = 10 * 60_000;

/** What the user sees of a connection on /connections. */
export interface ConnectionSummary {
  readonly service: string;
  readonly scope: string;
  readonly expiresAt: number | undefined;
  readonly updatedAt: number;
}

/** What a disconnection did besides forgetting the token (see `ServiceConnections.disconnect()`). */
export type DisconnectOutcome = "not_connected" | "revoked" | "revocation_not_offered" | "revocation_failed";

/** A connection of some user, as administrators see it (never the token). */
export interface UserConnection extends ConnectionSummary {
  readonly userId: string;
}

/** Stored connections, of one user or of everyone, by user then service. */
export function listConnections(store: Store, userId?: string): UserConnection[] {
  return listServiceConnections(store, userId);
}

/**
 * Users' connections to third-party services: consent links (tickets), the authorization code flow with
 * the service (PKCE, state), encrypted storage, refresh before expiry (one at a time per user and
 * service), and `invalid_grant` making the next call ask for consent again.
 */
export class ServiceConnections {
  readonly #store: Store;
  readonly #registry: () => Registry;
  readonly #tokens: SealedTokens;
  readonly #log: Logger;
  readonly #audit: AuditLog | undefined;
  readonly #baseUrl: () => string;
  readonly #now: () => number;
  readonly #onRefresh: ((service: string, outcome: string) => void) | undefined;
  readonly #onFailure: ((userId: string, service: string, message: string) => void) | undefined;
  readonly #refreshing = new Map<string, Promise<string>>();
  readonly #targets: ConnectTargets;
  /** Told when a user connects a service: sessions waiting on that consent can be notified. */
  onConnected: ((userId: string, service: string, elicitationId: string | undefined) => void) | undefined;

  constructor(
    deps: {
      store: Store;
      registry: () => Registry;
      vault: Vault;
      log: Logger;
      /** Where connections and disconnections are recorded. */
      audit?: AuditLog;
      baseUrl: () => string;
      /** Told of every refresh of a user's token: "ok", "invalid_grant" or "error". */
      onRefresh?: (service: string, outcome: string) => void;
      /** Told when a user's connection fails at the service, with what the error page says (no secret). */
      onFailure?: (userId: string, service: string, message: string) => void;
    },
    now: () => number = Date.now,
  ) {
    this.#store = deps.store;
    this.#onRefresh = deps.onRefresh;
    this.#onFailure = deps.onFailure;
    this.#registry = deps.registry;
    this.#tokens = new SealedTokens(deps.store, deps.vault, now);
    this.#log = deps.log;
    this.#audit = deps.audit;
    this.#baseUrl = deps.baseUrl;
    this.#now = now;
    this.#targets = new ConnectTargets(deps.registry, (backend) => ({
      store: deps.store,
      vault: deps.vault,
      baseUrl: deps.baseUrl,
      callbackUrl: this.callbackUrl(remoteOAuthServiceName(backend)),
      log: deps.log,
      now,
    }));
  }

  #service(name: string): ResolvedTarget {
    return this.#targets.of(name);
  }

  /** The user's access token for `service`, refreshed when it is about to expire; else a consent link. */
  async token(userId: string, serviceName: string): Promise<string> {
    const row = this.#tokens.find(userId, serviceName);
    if (!row) throw await this.consentRequired(userId, serviceName);
    const stored = await this.#tokens.open(row, userId, serviceName);
    if (row.expiresAt === undefined || !refreshDue(row.expiresAt, row.updatedAt, this.#now())) {
      return stored.access_token;
    }
    if (!stored.refresh_token) {
      this.#tokens.delete(userId, serviceName);
      this.#audit?.record("disconnection", userId, { service: serviceName, reason: "expired" });
      throw await this.consentRequired(userId, serviceName);
    }
    const key = JSON.stringify([userId, serviceName]);
    let refreshing = this.#refreshing.get(key);
    if (!refreshing) {
      // A refresh may have finished while this call was opening the old token: then use its result.
      const current = this.#tokens.find(userId, serviceName);
      if (current?.updatedAt !== row.updatedAt) return await this.token(userId, serviceName);
      refreshing = this.#refreshOnce(userId, serviceName, row.updatedAt, stored.refresh_token).finally(() =>
        this.#refreshing.delete(key)
      );
      this.#refreshing.set(key, refreshing);
    }
    return await refreshing;
  }

  /**
   * Refreshes the token saved at `updatedAt` when this process claims its refresh in the store; else another
   * process (a replica) is refreshing it, and its result is waited for, rather than spending the same
   * refresh token twice (a server that rotates them would refuse the second, and the user would be asked
   * to connect again).
   */
  async #refreshOnce(
    userId: string,
    service: string,
    updatedAt: number,
    refreshToken: string,
  ): Promise<string> {
    const token = { userId, service, updatedAt };
    const claimedAt = this.#now();
    if (claimServiceTokenRefresh(this.#store, token, claimedAt, REFRESH_LEASE_MS)) {
      try {
        return await this.#refresh(userId, service, refreshToken);
      } catch (error) {
        releaseServiceTokenRefresh(this.#store, token, claimedAt);
        throw error;
      }
    }
    for (let waited = 0; waited < REFRESH_LEASE_MS; waited += REFRESH_POLL_MS) {
      await new Promise((resolve) => setTimeout(resolve, REFRESH_POLL_MS));
      const current = this.#tokens.find(userId, service);
      // Refused there (forgotten), or refreshed there: either way, what the store holds now decides.
      if (current === undefined || current.updatedAt !== updatedAt) return await this.token(userId, service);
    }
    throw new Error(`the refresh of this ${service} token elsewhere did not finish; try again`);
  }

  async #refresh(userId: string, serviceName: string, refreshToken: string): Promise<string> {
    try {
      const result = await refreshGrant(this.#service(serviceName), refreshToken);
      await this.#tokens.save(userId, serviceName, result, refreshToken);
      this.#onRefresh?.(serviceName, "ok");
      this.#log.info("service token refreshed", { service: serviceName });
      return result.access_token;
    } catch (error) {
      const invalidGrant = error instanceof oauth.ResponseBodyError && error.error === "invalid_grant";
      this.#onRefresh?.(serviceName, invalidGrant ? "invalid_grant" : "error");
      if (invalidGrant) {
        // The grant is gone at the service: forget it; the next call asks for consent again.
        this.#tokens.delete(userId, serviceName);
        this.#log.warn("service refresh refused; consent needed again", { service: serviceName });
        this.#audit?.record("disconnection", userId, { service: serviceName, reason: "invalid_grant" });
        throw await this.consentRequired(userId, serviceName);
      }
      throw error;
    }
  }

  /**
   * The server refused the user's token (401: revoked or expired there): it is forgotten, and the user is
   * asked to connect again, rather than the same token failing every call.
   */
  async refused(userId: string, service: string): Promise<ConsentRequiredError> {
    if (this.#tokens.find(userId, service) !== undefined) {
      this.#tokens.delete(userId, service);
      this.#log.warn("a backend refused a user's token; consent needed again", { service });
      this.#audit?.record("disconnection", userId, { service, reason: "refused" });
    }
    return await this.consentRequired(userId, service);
  }

  /** Makes a consent link for this user and service. */
  async consentRequired(userId: string, service: string): Promise<ConsentRequiredError> {
    const ticket = randomToken(24);
    const elicitationId = randomToken(12);
    insertConnectTicket(this.#store, {
      ticketHash: await hashSecret(ticket),
      userId,
      service,
      elicitationId,
      expiresAt: this.#now() + TICKET_TTL_MS,
    });
    const url = `${this.#baseUrl()}/connect/${servicePath(service)}?ticket=${ticket}`;
    return new ConsentRequiredError(service, url, elicitationId);
  }

  /**
   * Opens a consent link for the signed-in user: the ticket must be unused, unexpired, for this service
   * and this user. Returns the URL of the service's authorization endpoint.
   */
  async start(serviceName: string, ticket: string, signedInUser: string): Promise<string> {
    const target = this.#service(serviceName);
    const ticketHash = await hashSecret(ticket);
    const row = findConnectTicket(this.#store, ticketHash);
    if (!row || row.service !== serviceName || row.usedAt !== undefined || row.expiresAt <= this.#now()) {
      throw new OAuthError(
        "invalid_request",
        "This link has expired or was already used; retry in your client",
        400,
      );
    }
    if (row.userId !== signedInUser) {
      throw new OAuthError("access_denied", "This link belongs to another user", 403);
    }
    if (!markConnectTicketUsed(this.#store, ticketHash, this.#now())) {
      throw new OAuthError("invalid_request", "This link was already used", 400);
    }

    const state = randomToken(24);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const url = await authorizationUrl(target, {
      callbackUrl: this.callbackUrl(serviceName),
      state,
      codeVerifier,
    })
      .catch((error: unknown) => {
        throw this.#failed(signedInUser, serviceName, "discovery", error);
      });
    this.#sweep();
    // In the store, so that the service's callback may land on any replica.
    insertPendingConnect(this.#store, await hashSecret(state), {
      userId: signedInUser,
      service: serviceName,
      codeVerifier,
      elicitationId: row.elicitationId,
      expiresAt: this.#now() + PENDING_TTL_MS,
    });
    return url;
  }

  /**
   * The origin of a service's authorization endpoint (for page CSP): as the registry names it, or as
   * discovered for an OAuth-protected backend; undefined when unknown.
   */
  async authorizationOrigin(service: string): Promise<string | undefined> {
    const settings = this.#registry().services[service];
    const endpoint = settings?.authorizationEndpoint ?? settings?.issuer ??
      (this.#targets.has(service)
        ? await this.#service(service).server().then(
          (server) => server.authorization_endpoint,
          () => undefined,
        )
        : undefined);
    return endpoint ? new URL(endpoint).origin : undefined;
  }

  /**
   * Gatehouse's client ID metadata document, which the authorization servers of OAuth-protected backends
   * fetch (see `remote_registration.ts`): one redirect URI per such backend.
   */
  clientMetadataDocument(): Record<string, unknown> {
    const redirectUris = Object.values(this.#registry().backends)
      .filter((backend) => remoteOAuthOf(backend) !== undefined)
      .map((backend) => this.callbackUrl(remoteOAuthServiceName(backend.name)));
    return clientMetadataDocument(this.#baseUrl(), redirectUris);
  }

  callbackUrl(service: string): string {
    return `${this.#baseUrl()}/connect/${servicePath(service)}/callback`;
  }

  /**
   * The service's callback: same user, single-use state, code exchanged, tokens stored encrypted. A
   * failure says which step failed and why (see `connectFailure()`).
   */
  async finish(serviceName: string, callback: URL, signedInUser: string | undefined): Promise<void> {
    const state = callback.searchParams.get("state") ?? "";
    const stateHash = await hashSecret(state);
    const pending = findPendingConnect(this.#store, stateHash);
    if (!pending || pending.service !== serviceName || pending.expiresAt <= this.#now()) {
      throw new OAuthError("invalid_request", "This connection attempt expired; retry in your client", 400);
    }
    // The user first: another browser opening this URL must not use up the rightful user's attempt.
    if (signedInUser === undefined) {
      throw new OAuthError("access_denied", "Not signed in to Gatehouse in this browser", 403);
    }
    if (pending.userId !== signedInUser) {
      throw new OAuthError("access_denied", "Signed in as another user", 403);
    }
    if (!consumePendingConnect(this.#store, stateHash)) {
      throw new OAuthError("invalid_request", "This connection attempt was already used", 400);
    }
    let step: ConnectStep = "discovery";
    let result: oauth.TokenEndpointResponse;
    try {
      result = await exchangeCode(
        this.#service(serviceName),
        callback,
        { callbackUrl: this.callbackUrl(serviceName), state, codeVerifier: pending.codeVerifier },
        (current) => step = current,
      );
    } catch (error) {
      throw this.#failed(pending.userId, serviceName, step, error);
    }
    await this.#tokens.save(pending.userId, serviceName, result, undefined);
    this.#log.info("service connected", { service: serviceName });
    this.#audit?.record("connection", pending.userId, {
      service: serviceName,
      scope: result.scope ?? "",
      refresh_token_issued: result.refresh_token !== undefined,
    });
    this.onConnected?.(pending.userId, serviceName, pending.elicitationId);
  }

  /** A connection that failed at the service: logged, told to `onFailure`, and the error to answer with. */
  #failed(userId: string, service: string, step: ConnectStep, error: unknown): OAuthError {
    const message = connectFailure(service, step, error);
    this.#log.warn("service connection failed", { service, step, reason: message, error });
    this.#onFailure?.(userId, service, message);
    return new OAuthError("access_denied", message, 400);
  }

  list(userId: string): ConnectionSummary[] {
    return listConnections(this.#store, userId);
  }

  /**
   * Forgets the user's token, revoking it at the service when the service offers revocation (RFC 7009).
   * Says what happened: nothing to forget, revoked at the service, or forgotten here only (the service
   * offers no revocation or is no longer in the registry; or revoking failed, which is logged).
   */
  async disconnect(userId: string, serviceName: string): Promise<DisconnectOutcome> {
    const row = this.#tokens.find(userId, serviceName);
    this.#tokens.delete(userId, serviceName);
    if (!row) return "not_connected";
    this.#audit?.record("disconnection", userId, { service: serviceName, reason: "user" });
    if (!this.#targets.has(serviceName)) return "revocation_not_offered";
    try {
      const stored = await this.#tokens.open(row, userId, serviceName);
      const revoked = await revokeAt(this.#service(serviceName), stored.refresh_token ?? stored.access_token);
      return revoked ? "revoked" : "revocation_not_offered";
    } catch (error) {
      this.#log.warn("service revocation failed; the token is forgotten here anyway", {
        service: serviceName,
        error,
      });
      return "revocation_failed";
    }
  }

  #sweep(): void {
    const now = this.#now();
    deletePendingConnectsExpiredBy(this.#store, now);
    deleteConnectTicketsExpiredBy(this.#store, now - TICKET_TTL_MS);
  }
}
