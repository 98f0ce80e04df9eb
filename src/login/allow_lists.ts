// Who may sign in through an upstream provider: the `allow` lists of GitHub and OpenID Connect providers,
// applied at sign-in and again to earlier sign-ins under today's registry.
import type * as oauth from "oauth4webapi";
import type { LoginProvider } from "../config/types.ts";
import type { Identity } from "../core/caller.ts";

/** GitHub logins and org names are case-insensitive. */
export function includesIgnoringCase(list: readonly string[], value: string): boolean {
  return list.some((entry) => entry.toLowerCase() === value.toLowerCase());
}

/** A GitHub account may sign in when it is listed, or belongs to a listed org. */
export function githubAllows(
  provider: Extract<LoginProvider, { type: "github" }>,
  login: string,
  orgs: readonly string[],
): boolean {
  return includesIgnoringCase(provider.allow.users, login) ||
    orgs.some((org) => includesIgnoringCase(provider.allow.orgs, org));
}

/**
 * An OIDC account may sign in when its subject is in `allow.users`, its verified email in `allow.users`
 * (entries with "@") or `allow.emails` (or its domain, "@example.com"), or one of its groups is listed.
 * Only `sub` identifies the user (OIDC Core §5.7): `preferred_username` is the user's to choose, so it
 * never matches. `verifiedEmail` is an address the provider said it verified (`email_verified: true`).
 */
export function oidcAllows(
  provider: Extract<LoginProvider, { type: "oidc" }>,
  who: { sub: string; verifiedEmail: string | undefined; groups: readonly string[] },
): boolean {
  const { allow } = provider;
  const email = who.verifiedEmail?.toLowerCase();
  const isEmail = (entry: string) => email !== undefined && entry.toLowerCase() === email;
  return allow.users.some((entry) => entry === who.sub || (entry.includes("@") && isEmail(entry))) ||
    allow.emails.some((entry) =>
      isEmail(entry) || (email !== undefined && entry.startsWith("@") && email.endsWith(entry.toLowerCase()))
    ) ||
    who.groups.some((group) => allow.groups.includes(group));
}

/** OIDC Core §5.1: an `email` claim counts only when `email_verified` is true (not absent, not "true"). */
export function verifiedEmailOf(claims: oauth.IDToken): string | undefined {
  return typeof claims.email === "string" && claims.email_verified === true ? claims.email : undefined;
}

/**
 * Whether an identity signed in earlier through a provider may still come in under today's `providers`:
 * the provider still exists and its allow lists still admit what was known of the user then. For OIDC the
 * subject comes from the user id (`{provider}:{sub}`), never the display name, and the email is one the
 * provider had verified (only those are kept).
 */
export function providerStillAdmits(
  providers: Readonly<Record<string, LoginProvider>>,
  identity: Identity,
): boolean {
  const name = identity.provider;
  if (name === undefined || !Object.hasOwn(providers, name)) return false;
  const provider = providers[name]!;
  const unqualified = (value: string) => value.startsWith(`${name}:`) ? value.slice(name.length + 1) : value;
  if (provider.type === "github") {
    return githubAllows(provider, identity.name, identity.groups.map(unqualified));
  }
  if (!identity.id.startsWith(`${name}:`)) return false;
  return oidcAllows(provider, {
    sub: unqualified(identity.id),
    verifiedEmail: identity.email,
    groups: identity.groups,
  });
}
