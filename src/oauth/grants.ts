import type { Store } from "../store/store.ts";

/**
 * Grants: what a user's approval of a client led to. Each exchanged authorization code starts a refresh
 * family (`family_id`), which holds the rotating refresh tokens and, through `access_token_grants`, the
 * access tokens issued from it; revoking the family revokes them all (RFC 6749 §4.1.2, RFC 7009 §2.1).
 */

/** A grant with something still usable: a live refresh token or an access token neither expired nor revoked. */
export interface ActiveGrant {
  readonly familyId: string;
  readonly clientId: string;
  readonly userId: string;
}

/** Whose grants: one user's, or one client's. */
export type GrantOwner = { readonly userId: string } | { readonly clientId: string };

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

/**
 * Every family and its owners: from refresh tokens, from the codes that started them, and from the access
 * tokens issued (a client_credentials token is a family of its own).
 */
const FAMILIES = `
  SELECT family_id, client_id, user_id FROM refresh_tokens
  UNION SELECT family_id, client_id, user_id FROM authorization_codes WHERE family_id IS NOT NULL
  UNION SELECT family_id, client_id, user_id FROM access_token_grants WHERE client_id IS NOT NULL`;

/** Families with a refresh token still usable, or an access token not expired and not revoked. */
const ACTIVE = `
  EXISTS (SELECT 1 FROM refresh_tokens AS r WHERE r.family_id = f.family_id
    AND r.used_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > :now_ms)
  OR EXISTS (SELECT 1 FROM access_token_grants AS a WHERE a.family_id = f.family_id
    AND a.expires_at > :now_s AND a.jti NOT IN (SELECT jti FROM revoked_access_tokens))`;

const clock = (now: number) => ({ now_ms: now, now_s: Math.floor(now / 1000) });

function ownerCondition(owner: GrantOwner | undefined): { sql: string; value: string | undefined } {
  if (owner === undefined) return { sql: "", value: undefined };
  return "userId" in owner
    ? { sql: "AND f.user_id = :owner", value: owner.userId }
    : { sql: "AND f.client_id = :owner", value: owner.clientId };
}

/** The active grants, of everyone or of one user or client, oldest family id first (stable order). */
export function activeGrants(store: Store, now: number, owner?: GrantOwner): ActiveGrant[] {
  const condition = ownerCondition(owner);
  const rows = store.db.prepare(
    `SELECT f.family_id, f.client_id, f.user_id FROM (${FAMILIES}) AS f
     WHERE (${ACTIVE}) ${condition.sql} ORDER BY f.family_id`,
  ).all({ ...clock(now), ...(condition.value === undefined ? {} : { owner: condition.value }) }) as {
    family_id: string;
    client_id: string;
    user_id: string;
  }[];
  return rows.map((row) => ({ familyId: row.family_id, clientId: row.client_id, userId: row.user_id }));
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
  const refresh = store.db.prepare(
    "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
  ).run(now, familyId);
  const access = store.db.prepare(
    "INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) SELECT jti, expires_at FROM access_token_grants WHERE family_id = ? AND expires_at > ?",
  ).run(familyId, Math.floor(now / 1000));
  return { refreshTokens: Number(refresh.changes), accessTokens: Number(access.changes) };
}

/** A refresh token as stored (only its hash is kept). */
export interface RefreshTokenRow {
  readonly token_hash: string;
  readonly family_id: string;
  readonly client_id: string;
  readonly user_id: string;
  /** JSON of the `TokenIdentity` it was issued to. */
  readonly identity: string;
  readonly resource: string;
  readonly scope: string;
  /** Epoch ms. */
  readonly expires_at: number;
  /** Epoch ms of its rotation (its first use). */
  readonly used_at: number | null;
  readonly revoked_at: number | null;
  /** The token its rotation issued (the latest one, after retries). */
  readonly successor_hash: string | null;
  /** The access token issued with it. */
  readonly access_jti: string | null;
  /** Epoch ms: replaced, unused, by a retry of its predecessor. */
  readonly retired_at: number | null;
}

/** The refresh token with this hash, or undefined. */
export function refreshTokenRow(store: Store, tokenHash: string): RefreshTokenRow | undefined {
  return store.db.prepare("SELECT * FROM refresh_tokens WHERE token_hash = ?").get(tokenHash) as
    | RefreshTokenRow
    | undefined;
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
  if (row.revoked_at !== null) {
    return { kind: "reuse", state: row.retired_at !== null ? "retired" : "revoked" };
  }
  if (row.used_at === null) return { kind: "rotate" };
  // Measured from the first rotation, so that retries cannot stretch the window.
  if (row.successor_hash !== null && now - row.used_at < reuseIntervalMs) {
    const successor = refreshTokenRow(store, row.successor_hash);
    if (successor && successor.used_at === null && successor.revoked_at === null) {
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
  store.db.prepare(
    "UPDATE refresh_tokens SET revoked_at = ?, retired_at = ? WHERE token_hash = ? AND revoked_at IS NULL",
  ).run(now, now, row.token_hash);
  if (row.access_jti !== null) {
    store.db.prepare(
      "INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at) SELECT jti, expires_at FROM access_token_grants WHERE jti = ? AND expires_at > ?",
    ).run(row.access_jti, Math.floor(now / 1000));
  }
}

/**
 * Revokes every grant of a user or of a client: each refresh family (refresh and access tokens), and the
 * codes not exchanged yet. One transaction: a running gateway sees all of it or none.
 */
export function revokeGrants(store: Store, owner: GrantOwner, now: number): RevokedGrants {
  return store.transaction(() => {
    const grants = activeGrants(store, now, owner).length;
    const condition = ownerCondition(owner);
    const families = store.db.prepare(
      `SELECT DISTINCT f.family_id FROM (${FAMILIES}) AS f WHERE 1 ${condition.sql}`,
    ).all({ owner: condition.value ?? null }) as { family_id: string }[];
    let refreshTokens = 0;
    let accessTokens = 0;
    for (const { family_id } of families) {
      const revoked = revokeFamily(store, family_id, now);
      refreshTokens += revoked.refreshTokens;
      accessTokens += revoked.accessTokens;
    }
    const column = "userId" in owner ? "user_id" : "client_id";
    // Access tokens of no family (client_credentials), and any the families above did not reach.
    accessTokens += Number(
      store.db.prepare(
        `INSERT OR IGNORE INTO revoked_access_tokens (jti, expires_at)
         SELECT jti, expires_at FROM access_token_grants WHERE ${column} = ? AND expires_at > ?`,
      ).run(condition.value!, Math.floor(now / 1000)).changes,
    );
    const codes = store.db.prepare(
      `DELETE FROM authorization_codes WHERE ${column} = ? AND used_at IS NULL`,
    ).run(condition.value!);
    return { grants, refreshTokens, accessTokens, pendingCodes: Number(codes.changes) };
  });
}

/** The users who approved a client (their consent is remembered), with when. */
export function consentsOf(store: Store, clientId: string): { userId: string; grantedAt: number }[] {
  return (store.db.prepare(
    "SELECT user_id, granted_at FROM consents WHERE client_id = ? ORDER BY user_id",
  ).all(clientId) as { user_id: string; granted_at: number }[])
    .map((row) => ({ userId: row.user_id, grantedAt: row.granted_at }));
}

/** Forgets the consents given to a client: each user is asked again. Returns how many. */
export function forgetConsents(store: Store, clientId: string): number {
  return Number(store.db.prepare("DELETE FROM consents WHERE client_id = ?").run(clientId).changes);
}
