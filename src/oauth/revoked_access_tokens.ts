// The access tokens revoked before they expire (RFC 7009), held in memory so that checking a bearer token
// reads no store; the rows stay in `store/grants.ts`, the one record of a revocation. Another process's
// revocations are seen through `Store.changedElsewhere()`: SQLite's data_version, or, on PostgreSQL, the
// announcement another replica makes with each revocation (LISTEN/NOTIFY).
import { accessTokenRevocationsRevision, liveAccessTokenRevocations } from "../store/grants.ts";
import type { Store } from "../store/store.ts";

/**
 * How stale a revocation written by another process (the `gatehouse` CLI) may be, at most. Reading
 * `PRAGMA data_version` takes the store's shared lock (about 15 µs, 3% of a relayed call's CPU), so it is
 * read at most this often; 50 ms is shorter than any CLI command takes to start and exit.
 */
export const OTHER_WRITERS_CHECK_INTERVAL_MS = 50;

export interface RevokedAccessTokensOptions {
  /** The clock (epoch ms), which expiries and the check interval are read against. */
  now?: () => number;
  /** How often at most SQLite is asked whether another connection wrote (default 50 ms). */
  otherWritersCheckIntervalMs?: number;
}

/**
 * The revoked access tokens that have not expired, by jti. Loaded on the first check, and loaded again:
 * at once after this process revoked one (the store's revocation revision moved, an in-memory compare);
 * within `otherWritersCheckIntervalMs` after another connection committed (`PRAGMA data_version`, read
 * at most that often, on the next check). A revocation is dropped when its token expires: from then on the
 * token's `exp` refuses it.
 */
export class RevokedAccessTokens {
  readonly #store: Store;
  readonly #now: () => number;
  readonly #checkIntervalMs: number;
  /** Expiry (epoch ms) of each revoked jti. */
  #expiries = new Map<string, number>();
  /** The earliest expiry in `#expiries`: until then nothing needs dropping. */
  #nextExpiryMs = Infinity;
  /** The revocation revision loaded; undefined before the first load or when it was read in a transaction. */
  #revision: number | undefined;
  #dataVersion = 0;
  #checkedAtMs = -Infinity;

  constructor(store: Store, options: RevokedAccessTokensOptions = {}) {
    this.#store = store;
    this.#now = options.now ?? Date.now;
    this.#checkIntervalMs = options.otherWritersCheckIntervalMs ?? OTHER_WRITERS_CHECK_INTERVAL_MS;
  }

  /** Whether the access token `jti` is revoked (and not expired). */
  has(jti: string): boolean {
    const now = this.#now();
    this.#refresh(now);
    const expiresAt = this.#expiries.get(jti);
    if (expiresAt === undefined) return false;
    if (expiresAt > now) return true;
    this.#expiries.delete(jti);
    return false;
  }

  /** How many revocations are held now. */
  get size(): number {
    return this.#expiries.size;
  }

  #refresh(now: number): void {
    const revision = accessTokenRevocationsRevision(this.#store);
    if (revision === undefined || revision !== this.#revision) return this.#load(now, revision);
    const sinceCheckMs = now - this.#checkedAtMs;
    // A clock set back (sinceCheckMs < 0) must not postpone the check until it catches up.
    if (sinceCheckMs >= 0 && sinceCheckMs < this.#checkIntervalMs) return;
    this.#checkedAtMs = now;
    if (this.#store.changedElsewhere() !== this.#dataVersion) return this.#load(now, revision);
    if (now >= this.#nextExpiryMs) this.#dropExpired(now);
  }

  #load(now: number, revision: number | undefined): void {
    // The version is read before the rows: a commit in between is then seen by the next check.
    const version = this.#store.changedElsewhere();
    const expiries = new Map<string, number>();
    let nextExpiryMs = Infinity;
    for (const { jti, expiresAt } of liveAccessTokenRevocations(this.#store, now)) {
      expiries.set(jti, expiresAt);
      if (expiresAt < nextExpiryMs) nextExpiryMs = expiresAt;
    }
    this.#expiries = expiries;
    this.#nextExpiryMs = nextExpiryMs;
    this.#dataVersion = version;
    this.#revision = revision;
    this.#checkedAtMs = now;
  }

  #dropExpired(now: number): void {
    let nextExpiryMs = Infinity;
    for (const [jti, expiresAt] of this.#expiries) {
      if (expiresAt <= now) this.#expiries.delete(jti);
      else if (expiresAt < nextExpiryMs) nextExpiryMs = expiresAt;
    }
    this.#nextExpiryMs = nextExpiryMs;
  }
}
