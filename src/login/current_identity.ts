/**
 * Who a signed-in user is under today's registry: removed users and providers' changed allow lists end their sign-in.
 */
import type { Identity } from "../core/caller.ts";
import type { LocalAccounts } from "./local.ts";
import type { UpstreamLogins } from "./providers.ts";

/**
 * Who a signed-in user is under today's registry, or undefined when they may no longer come in:
 * checked when a browser session is used and when a refresh token is, so removing a user or tightening
 * an allow list takes effect without waiting for their grants to expire.
 */
export type IdentityCheck = (identity: Identity) => Identity | undefined;

export function createIdentityCheck(accounts: LocalAccounts, logins: UpstreamLogins): IdentityCheck {
  return (identity) => {
    if (identity.provider !== undefined) return logins.stillAllowed(identity) ? identity : undefined;
    return accounts.current(identity);
  };
}
