// Grants: what a user's approval of a client led to. Each exchanged authorization code starts a refresh
// family, which holds the rotating refresh tokens and the access tokens issued from it; revoking the family
// revokes them all (RFC 6749 §4.1.2, RFC 7009 §2.1). The rows live in `store/grants.ts`.
import { consentsOfClient, deleteConsentsOfClient } from "../store/consents.ts";
import {
  activeFamilies,
  deleteUnusedCodesOf,
  familiesOf,
  findRefreshToken,
  type GrantFamily,
  type GrantOwner,
  retireRefreshToken as retireStoredRefreshToken,
  revokeLiveAccessToken,
  revokeLiveAccessTokensOf,
  revokeLiveAccessTokensOfFamily,
  revokeRefreshFamily,
  type StoredRefreshToken,
} from "../store/grants.ts";
import type { Store } from "../store/store.ts";

export type { GrantOwner } from "../store/grants.ts";

/** A grant with something still usable: a live refresh token or an access token neither expired nor revoked. */
export type ActiveGrant = GrantFamily;

/** What revoking grants did. */
export interface RevokedGrants {
  /** Grants that were active and are now revoked. */
  readonly grants: number;
  /** Refresh tokens that were live and are now revoked. */
  readonly refreshTokens: number;
  /** Access tokens, not yet expired, whose `jti` is now on the revoked list. */
  readonly accessTokens: number;
  /** Authorization codes issued but not exchanged yet, now deleted. */
  readonly pendingCodes: number;
}

/** The active grants, of everyone or of one user or client, oldest family id first (stable order). */
export function activeGrants(store: Store, now: number, owner?: GrantOwner): ActiveGrant[] {
  return activeFamilies(store, now, owner);
}

/**
 * Revokes a refresh family: its refresh tokens, and its access tokens by `jti` (those already expired
 * need no entry: their `exp` refuses them). Returns how many of each were still live.
 */
export function revokeFamily(
  store: Store,
  familyId: string,
  now: number,
): { refreshTokens: number; accessTokens: number } {
  const refreshTokens = revokeRefreshFamily(store, familyId, now);
  const accessTokens = revokeLiveAccessTokensOfFamily(store, familyId, now);
  return { refreshTokens, accessTokens };
}

/** A refresh token as stored (only its hash is kept); times are epoch ms. */
export type RefreshTokenRow = StoredRefreshToken;

/** The refresh token with this hash, or undefined. */
export function refreshTokenRow(store: Store, tokenHash: string): RefreshTokenRow | undefined {
  return findRefreshToken(store, tokenHash);
}

/**
 * What presenting a refresh token does. `rotate`: it is live. `retry`: it was rotated less than
 * `reuseIntervalMs` ago and its successor was never used, so the answer of its rotation was most likely lost;
 * the successor is retired and a new pair issued. `reuse`: anything else, which revokes the family
 * (RFC 9700 §4.14.2; the grace period is the "reuse interval" that §4.14.2 leaves to the server).
 */
export type RefreshUse =
  | { readonly kind: "rotate" }
  | { readonly kind: "retry"; readonly successor: RefreshTokenRow }
  | { readonly kind: "reuse"; readonly state: "rotated" | "revoked" | "retired" };

/**
 * Decides what presenting `row` does at `now`. Read inside the transaction that acts on it, so that two
 * retries at once see each other's writes: the second retires what the first issued.
 */
export function refreshUse(
  store: Store,
  row: RefreshTokenRow,
  now: number,
  reuseIntervalMs: number,
): RefreshUse {
  if (row.revokedAt !== undefined) {
    return { kind: "reuse", state: row.retiredAt !== undefined ? "retired" : "revoked" };
  }
  if (row.usedAt === undefined) return { kind: "rotate" };
  // Measured from the first rotation, so that retries cannot stretch the window.
  if (row.successorHash !== undefined && now - row.usedAt < reuseIntervalMs) {
    const successor = findRefreshToken(store, row.successorHash);
    if (successor && successor.usedAt === undefined && successor.revokedAt === undefined) {
      return { kind: "retry", successor };
    }
  }
  return { kind: "reuse", state: "rotated" };
}

/**
 * Retires a refresh token that was never used, with the access token issued alongside it: a retry of its
 * predecessor replaces both. Only one pair of a family stays live.
 */
export function retireRefreshToken(store: Store, row: RefreshTokenRow, now: number): void {
  retireStoredRefreshToken(store, row.tokenHash, now);
  if (row.accessJti !== undefined) revokeLiveAccessToken(store, row.accessJti, now);
}

/**
 * Revokes every grant of a user or of a client: each refresh family (refresh and access tokens), and the
 * codes not exchanged yet. One transaction: a running gateway sees all of it or none.
 */
export function revokeGrants(store: Store, owner: GrantOwner, now: number): RevokedGrants {
  return store.transaction(() => {
    const grants = activeFamilies(store, now, owner).length;
    let refreshTokens = 0;
    let accessTokens = 0;
    for (const familyId of familiesOf(store, owner)) {
      const revoked = revokeFamily(store, familyId, now);
      refreshTokens += revoked.refreshTokens;
      accessTokens += revoked.accessTokens;
    }
    // Access tokens of no family (client_credentials), and any the families above did not reach.
    accessTokens += revokeLiveAccessTokensOf(store, owner, now);
    const pendingCodes = deleteUnusedCodesOf(store, owner);
    return { grants, refreshTokens, accessTokens, pendingCodes };
  });
}

/** The users who approved a client (their consent is remembered), with when. */
export function consentsOf(store: Store, clientId: string): { userId: string; grantedAt: number }[] {
  return consentsOfClient(store, clientId);
}

/** Forgets the consents given to a client: each user is asked again. Returns how many. */
export function forgetConsents(store: Store, clientId: string): number {
  return deleteConsentsOfClient(store, clientId);
}
