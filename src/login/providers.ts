import * as oauth from "oauth4webapi";
import type { Store } from "../store/store.ts";
import type { AuditLog } from "../audit/audit.ts";
import { LOOPBACK_URL_HOSTNAMES } from "../config/schema.ts";
import type { LoginProvider, Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { TokenIdentity } from "../oauth/access_token.ts";
import { OAuthError } from "../oauth/errors.ts";
import { randomToken, timingSafeEqual } from "../oauth/secrets.ts";

/** A sign-in started at an upstream provider, waiting for its callback. */
interface PendingLogin {
  readonly provider: string;
  readonly codeVerifier: string;
  readonly nonce: string;
  readonly returnTo: string;
  /** The browser that started it (RFC 6749 §10.12): a random value also kept in a cookie there. */
  readonly browserBinding: string;
  readonly expiresAt: number;
}

const PENDING_TTL_MS = 10 * 60_000;
const MAX_PENDING = 10_000;
/** github.com's endpoints, used when a `github` provider names none (GitHub Enterprise Server does). */
export const GITHUB = {
  authorizationEndpoint: "https://github.com/login/oauth/authorize",
  tokenEndpoint: "https://github.com/login/oauth/access_token",
  apiUrl: "https://api.github.com",
};

/** GitHub logins and org names are case-insensitive. */
function includesIgnoringCase(list: readonly string[], value: string): boolean {
  return list.some((entry) => entry.toLowerCase() === value.toLowerCase());
}

/** A GitHub account may sign in when it is listed, or belongs to a listed org. */
function githubAllows(
  provider: Extract<LoginProvider, { type: "github" }>,
  login: string,
  orgs: readonly string[],
): boolean {
  return includesIgnoringCase(provider.allow.users, login) ||
    orgs.some((org) => includesIgnoringCase(provider.allow.orgs, org));
}

/** An OIDC account may sign in when its name or subject, (verified) email or domain, or a group is listed. */
function oidcAllows(
  provider: Extract<LoginProvider, { type: "oidc" }>,
  who: { name: string; sub: string; email: string | undefined; groups: readonly string[] },
): boolean {
  const { allow } = provider;
  const email = who.email?.toLowerCase();
  return allow.users.includes(who.name) || allow.users.includes(who.sub) ||
    (email !== undefined &&
      allow.emails.some((entry) => {
        const wanted = entry.toLowerCase();
        return wanted === email || (wanted.startsWith("@") && email.endsWith(wanted));
      })) ||
    who.groups.some((group) => allow.groups.includes(group));
}

/**
 * Plain http is allowed only to a server on this machine (tests, or a local identity provider or service);
 * anything else must be https.
 */
export function insecureAllowed(url: string | undefined): boolean {
  if (!url) return false;
  const { protocol, hostname } = new URL(url);
  return protocol === "http:" && LOOPBACK_URL_HOSTNAMES.has(hostname);
}

/**
 * Sign-in with upstream identity providers (`login.providers`): GitHub (OAuth, identity from its API)
 * and OpenID Connect (discovery, ID token with nonce). PKCE and state always; `allow` lists decide who
 * may come in.
 */
export class UpstreamLogins {
  readonly #registry: () => Registry;
  readonly #log: Logger;
  readonly #pending = new Map<string, PendingLogin>();
  readonly #discovered = new Map<string, Promise<oauth.AuthorizationServer>>();
  readonly #now: () => number;
  readonly #store: Store | undefined;
  readonly #audit: AuditLog | undefined;

  constructor(
    registry: () => Registry,
    log: Logger,
    options: { audit?: AuditLog; now?: () => number; store?: Store } = {},
  ) {
    this.#registry = registry;
    this.#log = log;
    this.#audit = options.audit;
    this.#now = options.now ?? Date.now;
    this.#store = options.store;
  }

  /**
   * Binds a provider-qualified user id to the provider's permanent account id on first sign-in; false when
   * the id now belongs to another account (a renamed login taken by someone else).
   */
  #sameAccount(userId: string, accountId: string): boolean {
    if (!this.#store) return true;
    const known = this.#store.db.prepare("SELECT account_id FROM provider_accounts WHERE user_id = ?")
      .get(userId) as { account_id: string } | undefined;
    if (known) return known.account_id === accountId;
    this.#store.db.prepare("INSERT INTO provider_accounts (user_id, account_id, first_seen) VALUES (?, ?, ?)")
      .run(userId, accountId, this.#now());
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
   * `browserBinding` a secret kept by the browser that only its callback will present.
   */
  async start(
    providerName: string,
    returnTo: string,
    callbackUrl: string,
    browserBinding: string,
  ): Promise<string> {
    const provider = this.#provider(providerName);
    const server = await this.#server(provider);
    this.#sweep();
    const state = randomToken(24);
    const codeVerifier = oauth.generateRandomCodeVerifier();
    const nonce = oauth.generateRandomNonce();
    this.#pending.set(state, {
      provider: providerName,
      codeVerifier,
      nonce,
      returnTo,
      browserBinding,
      expiresAt: this.#now() + PENDING_TTL_MS,
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
    return url.href;
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
  ): Promise<{ identity: TokenIdentity; returnTo: string }> {
    const where = address === undefined ? {} : { address };
    const state = callback.searchParams.get("state") ?? "";
    const pending = this.#pending.get(state);
    this.#pending.delete(state);
    if (
      !pending || pending.provider !== providerName || pending.expiresAt <= this.#now() ||
      // RFC 6749 §10.12, RFC 9700 §4.7: only the browser that started the sign-in may finish it.
      !browserBinding || !timingSafeEqual(pending.browserBinding, browserBinding)
    ) {
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
    this.#audit?.record("sign_in", identity.userId, {
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
  ): Promise<TokenIdentity> {
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
      userId,
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
  ): TokenIdentity {
    const name = String(claims.preferred_username ?? claims.sub);
    // An address the provider says it has not verified proves nothing (OIDC Core §5.1 email_verified).
    const email = typeof claims.email === "string" && claims.email_verified !== false
      ? claims.email
      : undefined;
    const rawGroups = claims[provider.groupsClaim];
    const groups = Array.isArray(rawGroups) ? rawGroups.map(String) : [];
    if (!oidcAllows(provider, { name, sub: claims.sub, email, groups })) {
      throw this.#refused(
        new OAuthError("access_denied", "This account may not sign in here", 403),
        provider.name,
        "not_allowed",
        where,
        { subject: `${provider.name}:${claims.sub}`, name },
      );
    }
    return {
      userId: `${provider.name}:${claims.sub}`,
      name,
      ...(email ? { email } : {}),
      groups,
      provider: provider.name,
    };
  }

  /**
   * Whether an identity signed in earlier through a provider may still come in under today's registry:
   * the provider still exists and its allow lists still admit what was known of the user then.
   */
  stillAllowed(identity: TokenIdentity): boolean {
    const providers = this.#registry().login.providers;
    const name = identity.provider;
    if (name === undefined || !Object.hasOwn(providers, name)) return false;
    const provider = providers[name]!;
    const unqualified = (value: string) =>
      value.startsWith(`${name}:`) ? value.slice(name.length + 1) : value;
    if (provider.type === "github") {
      return githubAllows(provider, identity.name, identity.groups.map(unqualified));
    }
    return oidcAllows(provider, {
      name: identity.name,
      sub: unqualified(identity.userId),
      email: identity.email,
      groups: identity.groups,
    });
  }

  #sweep(): void {
    const now = this.#now();
    for (const [state, pending] of this.#pending) if (pending.expiresAt <= now) this.#pending.delete(state);
    while (this.#pending.size >= MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
  }
}
