// The grant tables: authorization codes, refresh tokens (by family), the access tokens issued from each
// family (`access_token_grants`) and the access tokens revoked early (`revoked_access_tokens`). Times are
// epoch ms, access tokens' expiries included (their JWT `exp` is seconds; the store keeps it * 1000). Every
// write that can add a revocation moves the store's revocation revision, the cue of the in-memory set.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** Whose grants: one user's, or one client's. */
export type GrantOwner = { readonly userId: string } | { readonly clientId: string };

/** A refresh family and its owners. */
export interface GrantFamily {
  readonly familyId: string;
  readonly clientId: string;
  readonly userId: string;
}

/** An authorization code as stored (only its hash is kept); `identity` is JSON text. */
export interface StoredCode {
  readonly clientId: string;
  readonly userId: string;
  readonly identity: string;
  readonly redirectUri: string;
  /** The authorization request named its redirect_uri (then /token must repeat it). */
  readonly redirectUriGiven: boolean;
  readonly codeChallenge: string;
  readonly resource: string;
  readonly scope: string;
  readonly expiresAt: number;
  readonly usedAt: number | undefined;
  /** The refresh family its exchange started. */
  readonly familyId: string | undefined;
}

/** A refresh token as stored (only its hash is kept); `identity` is JSON text. */
export interface StoredRefreshToken {
  readonly tokenHash: string;
  readonly familyId: string;
  readonly clientId: string;
  readonly userId: string;
  readonly identity: string;
  readonly resource: string;
  readonly scope: string;
  readonly expiresAt: number;
  /** Its rotation (its first use). */
  readonly usedAt: number | undefined;
  readonly revokedAt: number | undefined;
  /** The token its rotation issued (the latest one, after retries). */
  readonly successorHash: string | undefined;
  /** The access token issued with it. */
  readonly accessJti: string | undefined;
  /** Replaced, unused, by a retry of its predecessor. */
  readonly retiredAt: number | undefined;
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
const ACTIVE = `(
  EXISTS (SELECT 1 FROM refresh_tokens AS r WHERE r.family_id = f.family_id
    AND r.used_at IS NULL AND r.revoked_at IS NULL AND r.expires_at > :now)
  OR EXISTS (SELECT 1 FROM access_token_grants AS a WHERE a.family_id = f.family_id
    AND a.expires_at > :now AND a.jti NOT IN (SELECT jti FROM revoked_access_tokens)))`;

/** Revokes (by jti) the access tokens of `access_token_grants` matching `condition`. */
const revokeAccess = (condition: string) =>
  `INSERT INTO revoked_access_tokens (jti, expires_at)
  SELECT jti, expires_at FROM access_token_grants WHERE ${condition} ON CONFLICT (jti) DO NOTHING`;

const statements = preparedStatements({
  // Authorization codes
  insertCode: `INSERT INTO authorization_codes (code_hash, client_id, user_id, identity, redirect_uri,
    redirect_uri_given, code_challenge, resource, scope, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  findCode: "SELECT * FROM authorization_codes WHERE code_hash = ?",
  markCodeUsed: `UPDATE authorization_codes SET used_at = ?, family_id = ?
    WHERE code_hash = ? AND used_at IS NULL`,
  deleteUnusedCodesOfUser: "DELETE FROM authorization_codes WHERE user_id = ? AND used_at IS NULL",
  deleteUnusedCodesOfClient: "DELETE FROM authorization_codes WHERE client_id = ? AND used_at IS NULL",
  deleteCodesExpiredBy: "DELETE FROM authorization_codes WHERE expires_at <= ?",
  // Refresh tokens
  insertRefreshToken: `INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity,
    resource, scope, expires_at, access_jti) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
  findRefreshToken: "SELECT * FROM refresh_tokens WHERE token_hash = ?",
  recordRefreshTokenUse: `UPDATE refresh_tokens SET used_at = COALESCE(used_at, ?), successor_hash = ?
    WHERE token_hash = ?`,
  retireRefreshToken: `UPDATE refresh_tokens SET revoked_at = ?, retired_at = ?
    WHERE token_hash = ? AND revoked_at IS NULL`,
  revokeRefreshFamily: "UPDATE refresh_tokens SET revoked_at = ? WHERE family_id = ? AND revoked_at IS NULL",
  deleteRefreshTokensOfClient: "DELETE FROM refresh_tokens WHERE client_id = ?",
  deleteExpiredRefreshTokens: "DELETE FROM refresh_tokens WHERE expires_at <= ?",
  // Access tokens
  insertAccessToken: `INSERT INTO access_token_grants (jti, family_id, expires_at, client_id, user_id)
    VALUES (?, ?, ?, ?, ?)`,
  revokeAccessToken:
    "INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
  revokeLiveAccessToken: revokeAccess("jti = ? AND expires_at > ?"),
  revokeLiveAccessTokensOfFamily: revokeAccess("family_id = ? AND expires_at > ?"),
  revokeLiveAccessTokensOfUser: revokeAccess("user_id = ? AND expires_at > ?"),
  revokeLiveAccessTokensOfClient: revokeAccess("client_id = ? AND expires_at > ?"),
  revokeAccessTokensOfClientFamilies: revokeAccess(`family_id IN (
    SELECT family_id FROM refresh_tokens WHERE client_id = ?
    UNION SELECT family_id FROM authorization_codes WHERE client_id = ? AND family_id IS NOT NULL)`),
  liveRevocations: "SELECT jti, expires_at FROM revoked_access_tokens WHERE expires_at > ?",
  deleteExpiredRevocations: "DELETE FROM revoked_access_tokens WHERE expires_at <= ?",
  deleteExpiredAccessTokens: "DELETE FROM access_token_grants WHERE expires_at <= ?",
  // Families
  activeFamilies: `SELECT f.family_id, f.client_id, f.user_id FROM (${FAMILIES}) AS f
    WHERE ${ACTIVE} ORDER BY f.family_id`,
  activeFamiliesOfUser: `SELECT f.family_id, f.client_id, f.user_id FROM (${FAMILIES}) AS f
    WHERE ${ACTIVE} AND f.user_id = :owner ORDER BY f.family_id`,
  activeFamiliesOfClient: `SELECT f.family_id, f.client_id, f.user_id FROM (${FAMILIES}) AS f
    WHERE ${ACTIVE} AND f.client_id = :owner ORDER BY f.family_id`,
  familiesOfUser: `SELECT DISTINCT f.family_id FROM (${FAMILIES}) AS f WHERE f.user_id = ?`,
  familiesOfClient: `SELECT DISTINCT f.family_id FROM (${FAMILIES}) AS f WHERE f.client_id = ?`,
});

// --- Authorization codes ---

export function insertCode(
  store: Store,
  code: Omit<StoredCode, "usedAt" | "familyId"> & { codeHash: string },
): void {
  statements(store).insertCode.run(
    code.codeHash,
    code.clientId,
    code.userId,
    code.identity,
    code.redirectUri,
    code.redirectUriGiven ? 1 : 0,
    code.codeChallenge,
    code.resource,
    code.scope,
    code.expiresAt,
  );
}

export function findCode(store: Store, codeHash: string): StoredCode | undefined {
  const row = statements(store).findCode.get(codeHash) as
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
  if (!row) return undefined;
  return {
    clientId: row.client_id,
    userId: row.user_id,
    identity: row.identity,
    redirectUri: row.redirect_uri,
    redirectUriGiven: row.redirect_uri_given !== 0,
    codeChallenge: row.code_challenge,
    resource: row.resource,
    scope: row.scope,
    expiresAt: row.expires_at,
    usedAt: row.used_at ?? undefined,
    familyId: row.family_id ?? undefined,
  };
}

/** Marks a code used, starting refresh family `familyId`; false when it was used already (single use). */
export function markCodeUsed(store: Store, codeHash: string, usedAt: number, familyId: string): boolean {
  return changes(statements(store).markCodeUsed.run(usedAt, familyId, codeHash)) === 1;
}

/** Deletes the codes of a user or a client not exchanged yet; returns how many. */
export function deleteUnusedCodesOf(store: Store, owner: GrantOwner): number {
  return changes(
    "userId" in owner
      ? statements(store).deleteUnusedCodesOfUser.run(owner.userId)
      : statements(store).deleteUnusedCodesOfClient.run(owner.clientId),
  );
}

/** Deletes the codes that expired at or before `cutoffMs`. */
export function deleteCodesExpiredBy(store: Store, cutoffMs: number): void {
  statements(store).deleteCodesExpiredBy.run(cutoffMs);
}

// --- Refresh tokens ---

export function insertRefreshToken(
  store: Store,
  token:
    & Pick<
      StoredRefreshToken,
      "tokenHash" | "familyId" | "clientId" | "userId" | "identity" | "resource" | "scope" | "expiresAt"
    >
    & { accessJti: string },
): void {
  statements(store).insertRefreshToken.run(
    token.tokenHash,
    token.familyId,
    token.clientId,
    token.userId,
    token.identity,
    token.resource,
    token.scope,
    token.expiresAt,
    token.accessJti,
  );
}

export function findRefreshToken(store: Store, tokenHash: string): StoredRefreshToken | undefined {
  const row = statements(store).findRefreshToken.get(tokenHash) as
    | {
      token_hash: string;
      family_id: string;
      client_id: string;
      user_id: string;
      identity: string;
      resource: string;
      scope: string;
      expires_at: number;
      used_at: number | null;
      revoked_at: number | null;
      successor_hash: string | null;
      access_jti: string | null;
      retired_at: number | null;
    }
    | undefined;
  if (!row) return undefined;
  return {
    tokenHash: row.token_hash,
    familyId: row.family_id,
    clientId: row.client_id,
    userId: row.user_id,
    identity: row.identity,
    resource: row.resource,
    scope: row.scope,
    expiresAt: row.expires_at,
    usedAt: row.used_at ?? undefined,
    revokedAt: row.revoked_at ?? undefined,
    successorHash: row.successor_hash ?? undefined,
    accessJti: row.access_jti ?? undefined,
    retiredAt: row.retired_at ?? undefined,
  };
}

/** Records a rotation: the first use's time stays (the reuse interval counts from it); the successor changes. */
export function recordRefreshTokenUse(
  store: Store,
  tokenHash: string,
  usedAt: number,
  successorHash: string | undefined,
): void {
  statements(store).recordRefreshTokenUse.run(usedAt, successorHash ?? null, tokenHash);
}

/** Revokes a refresh token as retired (replaced unused by a retry of its predecessor). */
export function retireRefreshToken(store: Store, tokenHash: string, atMs: number): void {
  statements(store).retireRefreshToken.run(atMs, atMs, tokenHash);
}

/** Revokes a family's refresh tokens not revoked yet; returns how many. */
export function revokeRefreshFamily(store: Store, familyId: string, atMs: number): number {
  return changes(statements(store).revokeRefreshFamily.run(atMs, familyId));
}

export function deleteRefreshTokensOfClient(store: Store, clientId: string): void {
  statements(store).deleteRefreshTokensOfClient.run(clientId);
}

/** Deletes the refresh tokens that expired by `nowMs`. */
export function deleteExpiredRefreshTokens(store: Store, nowMs: number): void {
  statements(store).deleteExpiredRefreshTokens.run(nowMs);
}

// --- Access tokens ---

/** Records an access token with its family and owners; `expiresAt` is epoch ms (its JWT `exp` * 1000). */
export function insertAccessToken(
  store: Store,
  token: { jti: string; familyId: string; expiresAt: number; clientId: string; userId: string },
): void {
  statements(store).insertAccessToken.run(
    token.jti,
    token.familyId,
    token.expiresAt,
    token.clientId,
    token.userId,
  );
}

/**
 * Per store: how many writes that can add to `revoked_access_tokens` this connection ran. Another
 * connection's writes do not move it (`Store.changedElsewhere()` does).
 */
const revocationRevisions = new WeakMap<Store, number>();

/**
 * Runs a write that can add to `revoked_access_tokens`, then moves the revocation revision (even when it
 * fails: a reload too many costs little). Every such write goes through here.
 */
function revoking<T>(store: Store, write: (prepared: ReturnType<typeof statements>) => T): T {
  try {
    const result = write(statements(store));
    // Other replicas reload their revocations (PostgreSQL sends it when the transaction commits).
    store.announce("revocations");
    return result;
  } finally {
    revocationRevisions.set(store, (revocationRevisions.get(store) ?? 0) + 1);
  }
}

/**
 * The revocation revision of `store`: it moves with every write of this connection that can add a
 * revocation. Undefined while a transaction is open, whose writes may still roll back: what is read then
 * is not to be kept.
 */
export function accessTokenRevocationsRevision(store: Store): number | undefined {
  return store.db.isTransaction ? undefined : revocationRevisions.get(store) ?? 0;
}

/** Puts an access token on the revoked list until `expiresAt` (epoch ms). */
export function revokeAccessToken(store: Store, jti: string, expiresAt: number): void {
  revoking(store, (prepared) => prepared.revokeAccessToken.run(jti, expiresAt));
}

/** Revokes a recorded access token unless it expired by `nowMs`; returns whether it was revoked now. */
export function revokeLiveAccessToken(store: Store, jti: string, nowMs: number): boolean {
  return revoking(store, (prepared) => changes(prepared.revokeLiveAccessToken.run(jti, nowMs)) === 1);
}

/** Revokes a family's access tokens that have not expired by `nowMs`; returns how many were revoked now. */
export function revokeLiveAccessTokensOfFamily(store: Store, familyId: string, nowMs: number): number {
  return revoking(store, (prepared) => changes(prepared.revokeLiveAccessTokensOfFamily.run(familyId, nowMs)));
}

/** Revokes a user's or a client's access tokens that have not expired by `nowMs`; returns how many now. */
export function revokeLiveAccessTokensOf(store: Store, owner: GrantOwner, nowMs: number): number {
  return revoking(store, (prepared) =>
    changes(
      "userId" in owner
        ? prepared.revokeLiveAccessTokensOfUser.run(owner.userId, nowMs)
        : prepared.revokeLiveAccessTokensOfClient.run(owner.clientId, nowMs),
    ));
}

/** Revokes every access token of the families of a client's refresh tokens and exchanged codes. */
export function revokeAccessTokensOfClientFamilies(store: Store, clientId: string): void {
  revoking(store, (prepared) => prepared.revokeAccessTokensOfClientFamilies.run(clientId, clientId));
}

/** The revocations that have not expired by `nowMs`: jti and expiry (epoch ms). */
export function liveAccessTokenRevocations(
  store: Store,
  nowMs: number,
): { readonly jti: string; readonly expiresAt: number }[] {
  const rows = statements(store).liveRevocations.all(nowMs) as { jti: string; expires_at: number }[];
  return rows.map((row) => ({ jti: row.jti, expiresAt: row.expires_at }));
}

/** Deletes the records and revocations of access tokens that expired by `nowMs`. */
export function deleteExpiredAccessTokens(store: Store, nowMs: number): void {
  statements(store).deleteExpiredRevocations.run(nowMs);
  statements(store).deleteExpiredAccessTokens.run(nowMs);
}

// --- Families ---

/** The families with something still usable at `nowMs`, of everyone or of one owner, by family id. */
export function activeFamilies(store: Store, nowMs: number, owner?: GrantOwner): GrantFamily[] {
  const statement = owner === undefined
    ? statements(store).activeFamilies
    : "userId" in owner
    ? statements(store).activeFamiliesOfUser
    : statements(store).activeFamiliesOfClient;
  const parameters: Record<string, number | string> = owner === undefined
    ? { now: nowMs }
    : { now: nowMs, owner: "userId" in owner ? owner.userId : owner.clientId };
  const rows = statement.all(parameters) as { family_id: string; client_id: string; user_id: string }[];
  return rows.map((row) => ({ familyId: row.family_id, clientId: row.client_id, userId: row.user_id }));
}

/** Every family of a user or of a client, active or not. */
export function familiesOf(store: Store, owner: GrantOwner): string[] {
  const rows =
    ("userId" in owner
      ? statements(store).familiesOfUser.all(owner.userId)
      : statements(store).familiesOfClient.all(owner.clientId)) as { family_id: string }[];
  return rows.map((row) => row.family_id);
}
