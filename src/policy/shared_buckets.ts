/**
 * Rate-limit buckets in the store (`rate_buckets`), for replicas sharing it: each bucket is refilled and
 * taken from by one statement, so every replica counts against the same tokens.
 */
import type { Store } from "../store/store.ts";
import {
  claimBucketReport,
  pruneRateBuckets,
  readBucket,
  takeBucketTokens,
} from "../store/shared_counters.ts";
import { type BucketDraw, REPORT_INTERVAL_MS, type ShortBucket, type TokenBuckets } from "./limits.ts";

/** Thrown inside the transaction to undo the buckets already taken from when a later one is short. */
const SHORT = Symbol("a bucket is short");

/**
 * The buckets of every gateway on one store. One bucket (the usual case) is one statement; several, one
 * transaction (all or none). A refusal costs a read, and its report once a minute a write.
 */
export class StoreTokenBuckets implements TokenBuckets {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  take(draws: readonly BucketDraw[], count: number, now: number): ShortBucket | undefined {
    if (draws.length === 1) {
      return this.#takeFrom(draws[0]!, count, now) ? undefined : this.#short(draws, 0, now);
    }
    let shortIndex = -1;
    try {
      this.#store.transaction(() => {
        for (let index = 0; index < draws.length; index++) {
          if (this.#takeFrom(draws[index]!, count, now)) continue;
          shortIndex = index;
          throw SHORT;
        }
      });
      return undefined;
    } catch (error) {
      if (error !== SHORT) throw error;
    }
    return this.#short(draws, shortIndex, now);
  }

  /** Deletes the buckets idle for a minute (full again, as a missing one is); returns how many. */
  prune(now: number): number {
    return pruneRateBuckets(this.#store, now - 60_000);
  }

  #takeFrom(draw: BucketDraw, count: number, now: number): boolean {
    const left = takeBucketTokens(this.#store, { bucket: draw.key, capacity: draw.perMinute, count, now });
    return left !== undefined;
  }

  /** The short bucket's tokens now, and whether this gateway is the one to report its refusal. */
  #short(draws: readonly BucketDraw[], index: number, now: number): ShortBucket {
    const { key, perMinute } = draws[index]!;
    const stored = readBucket(this.#store, key);
    // A bucket not stored yet is full (a batch larger than the limit never fits).
    const tokens = stored === undefined
      ? perMinute
      : Math.min(perMinute, stored.tokens + Math.max(0, now - stored.updatedAt) * perMinute / 60_000);
    const due = now - REPORT_INTERVAL_MS;
    const first = (stored?.reportedAt === undefined || stored.reportedAt <= due) &&
      claimBucketReport(this.#store, { bucket: key, capacity: perMinute, now, due });
    return { index, tokens, first };
  }
}
