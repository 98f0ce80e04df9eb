// Sign-in through upstream identity providers (GitHub, OpenID Connect): the redirect out and the callback;
// who may come in is decided in allow_lists.ts, sign-ins waiting for their callback live in pending_logins.ts.
import * as oauth from "oauth4webapi";
import { findProviderAccountId, insertProviderAccount } from "../store/provider_accounts.ts";
import type { Store } from "../store/store.ts";
import type { AuditLog } from "../audit/audit.ts";
import { insecureAllowed } from "../core/urls.ts";
import type { LoginProvider, Registry } from "../config/types.ts";
import { addressNetwork } from "../core/addresses.ts";
import type { Logger } from "../log/logger.ts";
import type { Identity } from "../core/caller.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { randomToken } from "../core/secrets.ts";
import {
  githubAllows,
  includesIgnoringCase,
  oidcAllows,
  providerStillAdmits,
  verifiedEmailOf,
} from "./allow_lists.ts";
import { PendingLogins } from "./pending_logins.ts";
import { type StartLimits, StartThrottle, type ThrottleCounters } from "./throttle.ts";

/** The outcome of starting a sign-in: where to send the browser, or how long its address must wait. */
export type StartedSignIn =
  | { readonly location: string }
  | { readonly throttled: true; readonly retryAfterSeconds: number };

/** github.com's endpoints, used when a `github` provider names none (GitHub Enterprise Server does). */
export const GITHUB = {
  authorizationEndpoint: "https://github.com/login/oauth/authorize",
  tokenEndpoint: "https://github.com/login/oauth/access_token",
  apiUrl: "https://api.github.com",
};

/**
 * Sign-in with upstream identity providers (`login.providers`): GitHub (OAuth, identity from its API)
 * and OpenID Connect (discovery, ID token with nonce). PKCE and state always; `allow` lists decide who
 * may come in.
 */
export class UpstreamLogins {
  readonly #registry: () => Registry;
  readonly #log: Logger;
  readonly #discovered = new Map<string, Promise<oauth.AuthorizationServer>>();
  readonly #now: () => number;
  readonly #store: Store;
  readonly #audit: AuditLog | undefined;
  readonly #starts: StartThrottle;
  readonly #pending: PendingLogins;

  constructor(
    registry: () => Registry,
    log: Logger,
    options: {
      store: Store;
      audit?: AuditLog;
      now?: () => number;
      startLimits?: StartLimits;
      /** Where sign-in starts are counted (in memory unless replicas share the store). */
      throttleCounters?: ThrottleCounters;
    },
  ) {
    this.#registry = registry;
    this.#log = log;
    this.#audit = options.audit;
    this.#now = options.now ?? Date.now;
    this.#store = options.store;
    this.#starts = new StartThrottle({
      limits: options.startLimits,
      now: this.#now,
      counters: options.throttleCounters,
    });
    this.#pending = new PendingLogins(this.#store, this.#now);
  }

  /**
   * Binds a provider-qualified user id to the provider's permanent account id on first sign-in; false when
   * the id now belongs to another account (a renamed login taken by someone else).
   */
  #sameAccount(userId: string, accountId: string): boolean {
    const known = findProviderAccountId(this.#store, userId);
    if (known !== undefined) return known === accountId;
    insertProviderAccount(this.#store, { userId, accountId, firstSeen: this.#now() });
    return true;
  }

  /** Writes the audit row of a refused sign-in and returns the error to throw. */
  #refused(
    error: OAuthError,
    provider: string,
    reason: string,
    where: { address?: string },
    who: { subject?: string; name?: string } = {},
  ): OAuthError {
    this.#audit?.record("sign_in_failed", who.subject, {
      method: "provider",
      provider,
      ...where,
      reason,
      ...(who.name === undefined ? {} : { name: who.name }),
    });
    return error;
  }

  /** The providers to offer on the sign-in page. */
  list(): { name: string; label: string }[] {
    return Object.values(this.#registry().login.providers).map(({ name, label }) => ({ name, label }));
  }

  #provider(name: string): LoginProvider {
    const providers = this.#registry().login.providers;
    if (!Object.hasOwn(providers, name)) {
      throw new OAuthError("invalid_request", "Unknown sign-in provider", 404);
    }
    return providers[name]!;
  }

  async #server(provider: LoginProvider): Promise<oauth.AuthorizationServer> {
    if (provider.type === "github") {
      return {
        issuer: "https://github.com/login/oauth",
        authorization_endpoint: provider.authorizationEndpoint ?? GITHUB.authorizationEndpoint,
        token_endpoint: provider.tokenEndpoint ?? GITHUB.tokenEndpoint,
      };
    }
    let discovered = this.#discovered.get(provider.issuer);
    if (!discovered) {
      const issuer = new URL(provider.issuer);
      discovered = oauth.discoveryRequest(issuer, {
        algorithm: "oidc",
        [oauth.allowInsecureRequests]: insecureAllowed(provider.issuer),
      }).then((response) => oauth.processDiscoveryResponse(issuer, response));
      this.#discovered.set(provider.issuer, discovered);
      discovered.catch(() => this.#discovered.delete(provider.issuer));
    }
    return await discovered;
  }

  /**
   * Where to send the browser to sign in with `providerName`; `returnTo` is where to come back after,
   * `browserBinding` a secret kept by the browser that only its callback will present, `address` the
   * client's (starts are throttled per address, and refusals audited once a minute per address).
   */
  async start(
    providerName: string,
    returnTo: string,
    callbackUrl: string,
    browserBinding: string,
    address?: string,
  ): Promise<StartedSignIn> {
    const provider = this.#provider(providerName);
    const network = address === undefined ? "unknown" : addressNetwork(address);
    const refusal = this.#starts.admit(network);
    if (refusal) {
      if (refusal.report) {
        this.#audit?.record("sign_in_throttled", undefined, {
          method: "provider",
          provider: providerName,
          ...(address === undefined ? {} : { address }),
          scope: "address",
          retry_after_seconds: refusal.retryAfterSeconds,
          ...(refusal.unreported > 0 ? { unrecorded_refusals: refusal.unreported } : {}),
        });
      }
      return { throttled: true, retryAfterSeconds: refusal.retryAfterSeconds };
    }
    const server = await this.#server(provider);
    const state = randomToken(24);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const nonce = oauth.generateRandomNonce();
    await this.#pending.hold({
      state,
      provider: providerName,
      codeVerifier,
      nonce,
      returnTo,
      browserBinding,
      network,
    });
    const url = new URL(server.authorization_endpoint!);
    url.searchParams.set("client_id", provider.clientId);
    url.searchParams.set("redirect_uri", callbackUrl);
    url.searchParams.set("response_type", "code");
    url.searchParams.set("state", state);
    url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(codeVerifier));
    url.searchParams.set("code_challenge_method", "S256");
    if (provider.type === "oidc") {
      url.searchParams.set("scope", provider.scopes.join(" "));
      url.searchParams.set("nonce", nonce);
    } else {
      url.searchParams.set("scope", "read:user read:org");
      url.searchParams.set("allow_signup", "false");
    }
    return { location: url.href };
  }

  /**
   * Completes a sign-in from the provider's callback: checks state (single use), exchanges the code,
   * reads the identity, and applies the provider's `allow` lists. `address` (the client's) goes into the
   * audit row written for every outcome.
   */
  async finish(
    providerName: string,
    callback: URL,
    callbackUrl: string,
    browserBinding: string | undefined,
    address?: string,
  ): Promise<{ identity: Identity; returnTo: string }> {
    const where = address === undefined ? {} : { address };
    const state = callback.searchParams.get("state") ?? "";
    const pending = await this.#pending.take(providerName, state, browserBinding);
    if (!pending) {
      throw this.#refused(
        new OAuthError("invalid_request", "This sign-in has expired or was already used; start again"),
        providerName,
        "expired_or_reused_state",
        where,
      );
    }
    const provider = this.#provider(providerName);
    const server = await this.#server(provider);
    const client: oauth.Client = { client_id: provider.clientId };
    const authentication = provider.clientSecret
      ? oauth.ClientSecretPost(provider.clientSecret)
      : oauth.None();
    const insecure = { [oauth.allowInsecureRequests]: insecureAllowed(server.token_endpoint!) };
    let parameters: URLSearchParams;
    try {
      parameters = oauth.validateAuthResponse(server, client, callback, state);
    } catch {
      throw this.#refused(
        new OAuthError("access_denied", "The provider did not sign you in"),
        providerName,
        "provider_refused",
        where,
      );
    }
    let result: oauth.TokenEndpointResponse;
    try {
      const response = await oauth.authorizationCodeGrantRequest(
        server,
        client,
        authentication,
        parameters,
        callbackUrl,
        pending.codeVerifier,
        insecure,
      );
      result = await oauth.processAuthorizationCodeResponse(server, client, response, {
        expectedNonce: provider.type === "oidc" ? pending.nonce : undefined,
        requireIdToken: provider.type === "oidc",
      });
    } catch (error) {
      // A provider that is down, or that refuses the code: the same page for the person either way.
      this.#log.warn("upstream sign-in failed", { provider: providerName, error });
      throw this.#refused(
        new OAuthError("access_denied", "The provider did not sign you in"),
        providerName,
        "code_exchange_failed",
        where,
      );
    }
    const identity = provider.type === "github"
      ? await this.#githubIdentity(provider, result.access_token, where)
      : this.#oidcIdentity(provider, oauth.getValidatedIdTokenClaims(result)!, where);
    this.#audit?.record("sign_in", identity.id, {
      method: "provider",
      provider: providerName,
      ...where,
      name: identity.name,
    });
    return { identity, returnTo: pending.returnTo };
  }

  async #githubIdentity(
    provider: Extract<LoginProvider, { type: "github" }>,
    token: string,
    where: { address?: string },
  ): Promise<Identity> {
    const api = (provider.apiUrl ?? GITHUB.apiUrl).replace(/\/+$/, "");
    const get = async (path: string) => {
      const response = await fetch(`${api}${path}`, {
        headers: {
          authorization: `Bearer ${token}`,
          accept: "application/vnd.github+json",
          "user-agent": "gatehouse",
        },
        signal: AbortSignal.timeout(10_000),
      });
      if (!response.ok) {
        throw this.#refused(
          new OAuthError("access_denied", "GitHub did not say who you are"),
          provider.name,
          "identity_unavailable",
          where,
        );
      }
      return await response.json();
    };
    const user = await get("/user") as { login?: string; id?: number | string; email?: string | null };
    const login = String(user.login ?? "");
    const orgs = provider.allow.orgs.length > 0
      ? ((await get("/user/orgs")) as { login?: string }[]).map((org) => String(org.login))
      : [];
    if (!login || !githubAllows(provider, login, orgs)) {
      throw this.#refused(
        new OAuthError("access_denied", "This GitHub account may not sign in here", 403),
        provider.name,
        "not_allowed",
        where,
        login ? { subject: `${provider.name}:${login}`, name: login } : {},
      );
    }
    const userId = `${provider.name}:${login}`;
    if (user.id === undefined || !this.#sameAccount(userId, String(user.id))) {
      throw this.#refused(
        new OAuthError(
          "access_denied",
          "This GitHub login belonged to another account here; ask the administrator",
          403,
        ),
        provider.name,
        "account_changed",
        where,
        { subject: userId, name: login },
      );
    }
    return {
      id: userId,
      name: login,
      ...(user.email ? { email: user.email } : {}),
      groups: orgs.filter((org) => includesIgnoringCase(provider.allow.orgs, org)).map((org) =>
        `${provider.name}:${org}`
      ),
      provider: provider.name,
    };
  }

  #oidcIdentity(
    provider: Extract<LoginProvider, { type: "oidc" }>,
    claims: oauth.IDToken,
    where: { address?: string },
  ): Identity {
    // The name is for display only; who the user is, is `sub` (OIDC Core §5.7).
    const name = String(claims.preferred_username ?? claims.sub);
    // Only a verified address is kept: stillAllowed() later trusts identity.email as verified.
    const email = verifiedEmailOf(claims);
    const rawGroups = claims[provider.groupsClaim];
    const groups = Array.isArray(rawGroups) ? rawGroups.map(String) : [];
    if (!oidcAllows(provider, { sub: claims.sub, verifiedEmail: email, groups })) {
      throw this.#refused(
        new OAuthError("access_denied", "This account may not sign in here", 403),
        provider.name,
        "not_allowed",
        where,
        { subject: `${provider.name}:${claims.sub}`, name },
      );
    }
    return {
      id: `${provider.name}:${claims.sub}`,
      name,
      ...(email ? { email } : {}),
      groups,
      provider: provider.name,
    };
  }

  /**
   * Whether an identity signed in earlier through a provider may still come in under today's registry:
   * the provider still exists and its allow lists still admit what was known of the user then. For OIDC
   * the subject comes from the user id (`{provider}:{sub}`), never the display name, and the email is one
   * the provider had verified (only those are kept).
   */
  stillAllowed(identity: Identity): boolean {
    return providerStillAdmits(this.#registry().login.providers, identity);
  }
}
