// The counters replicas share when the store is shared: `rate_buckets` (token buckets of `limits:`) and
// `throttle_events` (attempts counted by the sign-in throttles). Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/**
 * A bucket's tokens refilled up to `now`: `capacity` a minute, never above `capacity`, never backwards when
 * another replica's clock is ahead (`updated_at` only moves forward). The same sum, in the same order, as
 * the in-memory buckets of `policy/limits.ts`.
 */
const REFILLED = {
  sqlite:
    `MIN(:capacity, rate_buckets.tokens + MAX(0, :now - rate_buckets.updated_at) * :capacity / 60000.0)`,
  postgres: `LEAST(CAST(:capacity AS DOUBLE PRECISION), rate_buckets.tokens
    + CAST(GREATEST(0, CAST(:now AS BIGINT) - rate_buckets.updated_at) AS DOUBLE PRECISION)
    * CAST(:capacity AS DOUBLE PRECISION) / 60000)`,
};

/**
 * A bucket or throttle key as stored: PostgreSQL text cannot hold U+0000, which a tried account name may
 * contain, so it is escaped (and the escape character with it, so that no two keys meet).
 */
function storedKey(key: string): string {
  return key.includes("\0") || key.includes("\\")
    ? key.replaceAll("\\", "\\\\").replaceAll("\0", "\\0")
    : key;
}

const statements = preparedStatements({
  // One statement per bucket, so that two replicas taking at once cannot both take the last token: a new
  // bucket starts full (a batch larger than it inserts nothing), an existing one is refilled and taken
  // from only when it holds `count`; RETURNING tells which.
  takeTokens: {
    sqlite: `INSERT INTO rate_buckets (bucket, tokens, updated_at)
      SELECT :bucket, :capacity - :count, :now WHERE :capacity >= :count
      ON CONFLICT (bucket) DO UPDATE SET tokens = ${REFILLED.sqlite} - :count,
        updated_at = MAX(rate_buckets.updated_at, :now)
      WHERE ${REFILLED.sqlite} >= :count
      RETURNING tokens`,
    postgres: `INSERT INTO rate_buckets (bucket, tokens, updated_at)
      SELECT CAST(:bucket AS TEXT), CAST(:capacity AS DOUBLE PRECISION) - CAST(:count AS DOUBLE PRECISION),
        CAST(:now AS BIGINT)
      WHERE CAST(:capacity AS DOUBLE PRECISION) >= CAST(:count AS DOUBLE PRECISION)
      ON CONFLICT (bucket) DO UPDATE SET tokens = ${REFILLED.postgres} - CAST(:count AS DOUBLE PRECISION),
        updated_at = GREATEST(rate_buckets.updated_at, CAST(:now AS BIGINT))
      WHERE ${REFILLED.postgres} >= CAST(:count AS DOUBLE PRECISION)
      RETURNING tokens`,
  },
  readBucket: "SELECT tokens, updated_at, reported_at FROM rate_buckets WHERE bucket = ?",
  // A refusal is reported by the one replica that moves `reported_at` (a missing bucket is a full one).
  claimBucketReport: `INSERT INTO rate_buckets (bucket, tokens, updated_at, reported_at)
    VALUES (:bucket, :capacity, :now, :now)
    ON CONFLICT (bucket) DO UPDATE SET reported_at = :now
    WHERE rate_buckets.reported_at IS NULL OR rate_buckets.reported_at <= :due`,
  pruneBuckets: `DELETE FROM rate_buckets
    WHERE updated_at <= ? AND (reported_at IS NULL OR reported_at <= ?)`,

  recentEvents: `SELECT at FROM throttle_events WHERE scope = ? AND key = ? AND at > ?
    ORDER BY at DESC LIMIT ?`,
  latestEvent: "SELECT MAX(at) AS at FROM throttle_events WHERE scope = ? AND key = ?",
  insertEvent: "INSERT INTO throttle_events (scope, key, at) VALUES (?, ?, ?)",
  // One row, as the in-memory log takes back one attempt (two at the same millisecond are two rows).
  deleteOneEvent: {
    sqlite: `DELETE FROM throttle_events WHERE rowid = (
      SELECT rowid FROM throttle_events WHERE scope = ? AND key = ? AND at = ? LIMIT 1)`,
    postgres: `DELETE FROM throttle_events WHERE ctid = (
      SELECT ctid FROM throttle_events WHERE scope = ? AND key = ? AND at = ? LIMIT 1)`,
  },
  deleteEventsOfKey: "DELETE FROM throttle_events WHERE scope = ? AND key = ?",
  pruneEventsOfKey: "DELETE FROM throttle_events WHERE scope = ? AND key = ? AND at <= ?",
  pruneEventsOfScope: "DELETE FROM throttle_events WHERE scope = ? AND at <= ?",
  countKeys: "SELECT COUNT(DISTINCT key) AS keys FROM throttle_events WHERE scope = ?",
});

/** One bucket of a limit: its name and its size (the limit's requests per minute, also its refill rate). */
export interface BucketTake {
  readonly bucket: string;
  readonly capacity: number;
  readonly count: number;
  readonly now: number;
}

/** Takes `count` tokens from the bucket, refilled to `now`: the tokens left, or undefined when it is short. */
export function takeBucketTokens(store: Store, take: BucketTake): number | undefined {
  const { capacity, count, now } = take;
  const row = statements(store).takeTokens.get({ bucket: storedKey(take.bucket), capacity, count, now });
  return row === undefined ? undefined : Number(row.tokens);
}

/** A bucket as stored: its tokens as of `updatedAt`, and when a refusal of it was last reported. */
export interface StoredBucket {
  readonly tokens: number;
  readonly updatedAt: number;
  readonly reportedAt: number | undefined;
}

export function readBucket(store: Store, bucket: string): StoredBucket | undefined {
  const row = statements(store).readBucket.get(storedKey(bucket));
  if (row === undefined) return undefined;
  return {
    tokens: Number(row.tokens),
    updatedAt: Number(row.updated_at),
    reportedAt: row.reported_at === null ? undefined : Number(row.reported_at),
  };
}

/**
 * Marks a refusal of the bucket reported at `now` unless the last report was after `due`; true for the one
 * caller (of every replica) that marked it.
 */
export function claimBucketReport(
  store: Store,
  claim: { bucket: string; capacity: number; now: number; due: number },
): boolean {
  const { capacity, now, due } = claim;
  return changes(
    statements(store).claimBucketReport.run({ bucket: storedKey(claim.bucket), capacity, now, due }),
  ) ===
    1;
}

/**
 * Deletes the buckets untouched since `cutoffMs` (full again by now) whose last report is that old too;
 * returns how many.
 */
export function pruneRateBuckets(store: Store, cutoffMs: number): number {
  return changes(statements(store).pruneBuckets.run(cutoffMs, cutoffMs));
}

/** The newest `limit` attempt times of a key after `sinceMs`, newest first. */
export function recentThrottleEvents(
  store: Store,
  scope: string,
  key: string,
  sinceMs: number,
  limit: number,
): number[] {
  return statements(store).recentEvents.all(scope, storedKey(key), sinceMs, limit).map((row) =>
    Number(row.at)
  );
}

/** When the key's newest attempt was, if it has any. */
export function latestThrottleEvent(store: Store, scope: string, key: string): number | undefined {
  const at = statements(store).latestEvent.get(scope, storedKey(key))?.at;
  return at === null || at === undefined ? undefined : Number(at);
}

export function insertThrottleEvent(store: Store, scope: string, key: string, atMs: number): void {
  statements(store).insertEvent.run(scope, storedKey(key), atMs);
}

/** Deletes one attempt of the key made at `atMs`. */
export function deleteThrottleEvent(store: Store, scope: string, key: string, atMs: number): void {
  statements(store).deleteOneEvent.run(scope, storedKey(key), atMs);
}

/** Deletes every attempt of the key. */
export function clearThrottleEvents(store: Store, scope: string, key: string): void {
  statements(store).deleteEventsOfKey.run(scope, storedKey(key));
}

/** Deletes the key's attempts made at or before `cutoffMs`. */
export function pruneThrottleEventsOfKey(store: Store, scope: string, key: string, cutoffMs: number): void {
  statements(store).pruneEventsOfKey.run(scope, storedKey(key), cutoffMs);
}

/** Deletes every attempt of `scope` made at or before `cutoffMs`; returns how many. */
export function pruneThrottleEvents(store: Store, scope: string, cutoffMs: number): number {
  return changes(statements(store).pruneEventsOfScope.run(scope, cutoffMs));
}

/** How many keys of `scope` have attempts stored. */
export function countThrottleKeys(store: Store, scope: string): number {
  return Number(statements(store).countKeys.get(scope)?.keys ?? 0);
}
