/** Rate limits (`limits:`): token buckets per limit and user (and backend), checked before each call. */
import type { RateLimit, Registry } from "../config/types.ts";
import { GlobSet } from "../core/glob.ts";
import { type PolicySubject, SubjectMatcher } from "./policy.ts";

/** A limit with its subjects and backends compiled. */
interface CompiledLimit {
  readonly limit: RateLimit;
  /** Names the limit's buckets across reloads: its id, else its place and settings. */
  readonly key: string;
  readonly subjects: SubjectMatcher;
  readonly backends: GlobSet | undefined;
}

const compiled = new WeakMap<Registry, readonly CompiledLimit[]>();

function limitsOf(registry: Registry): readonly CompiledLimit[] {
  let limits = compiled.get(registry);
  if (!limits) {
    limits = registry.limits.map((limit, index) => ({
      limit,
      key: limit.id ?? JSON.stringify([index, limit.subjects, limit.backends, limit.requestsPerMinute]),
      subjects: new SubjectMatcher(limit.subjects),
      backends: limit.backends && new GlobSet(limit.backends),
    }));
    compiled.set(registry, limits);
  }
  return limits;
}

/** Which limits a request counts against. */
export type LimitScope =
  /** A request to `/mcp` (limits without backends) or to `/mcp/{backend}` (those and the backend's). */
  | { readonly kind: "endpoint"; readonly backend: string | undefined }
  /** A call `/mcp` routed to one backend: only the limits naming backends. */
  | { readonly kind: "routed"; readonly backend: string };

export type Admission =
  | { readonly ok: true }
  | {
    readonly ok: false;
    readonly retryAfterSeconds: number;
    readonly limit: RateLimit;
    readonly first: boolean;
  };

/** One bucket a request takes from: a limit's, for one user (and backend). */
export interface BucketDraw {
  /** Names the bucket: the limit, the user and, for limits naming backends, the backend. */
  readonly key: string;
  /** The limit's requests per minute: the bucket's size and its refill rate a minute. */
  readonly perMinute: number;
}

interface LimitDraw extends BucketDraw {
  readonly limit: RateLimit;
}

/** A bucket that could not give what was asked. */
export interface ShortBucket {
  /** Its place in the draws. */
  readonly index: number;
  /** The tokens it holds now. */
  readonly tokens: number;
  /** Whether this refusal is the one a minute to report (per bucket, across every gateway sharing it). */
  readonly first: boolean;
}

/**
 * Where the buckets live: this process's memory (`MemoryTokenBuckets`, one gateway) or the store
 * (`StoreTokenBuckets` in `shared_buckets.ts`, replicas sharing it).
 */
export interface TokenBuckets {
  /** Takes `count` from every bucket of `draws`, or from none when one is short: then that one (the first). */
  take(draws: readonly BucketDraw[], count: number, now: number): ShortBucket | undefined;
}

/** A limit's bucket refills at its size a minute; a refusal is reported at most this often per bucket. */
export const REPORT_INTERVAL_MS = 60_000;

const ADMITTED: Admission = Object.freeze({ ok: true });

/**
 * Token buckets per limit, user (and backend, for limits naming backends): each holds up to
 * `requests_per_minute` requests and refills at that rate, so a burst of a minute's worth passes and the
 * steady rate is the limit. The buckets are in memory unless `buckets` says otherwise.
 */
export class RateLimiter {
  readonly #buckets: TokenBuckets;
  readonly #now: () => number;

  constructor(options: { buckets?: TokenBuckets; now?: () => number } = {}) {
    this.#buckets = options.buckets ?? new MemoryTokenBuckets();
    this.#now = options.now ?? Date.now;
  }

  /** Takes `count` requests from every bucket that applies, or none when one of them is short. */
  take(registry: Registry, subject: PolicySubject, scope: LimitScope, count = 1): Admission {
    const draws: LimitDraw[] = [];
    for (const limit of limitsOf(registry)) {
      if (!limit.subjects.matches(subject)) continue;
      if (limit.backends) {
        if (scope.backend === undefined || !limit.backends.test(scope.backend)) continue;
      } else if (scope.kind === "routed") continue;
      draws.push({
        key: `${limit.key}\n${subject.id}\n${limit.backends ? scope.backend : ""}`,
        perMinute: limit.limit.requestsPerMinute,
        limit: limit.limit,
      });
    }
    if (draws.length === 0) return ADMITTED;
    const now = this.#now();
    const short = this.#buckets.take(draws, count, now);
    if (short === undefined) return ADMITTED;
    const { limit } = draws[short.index]!;
    const perMs = limit.requestsPerMinute / 60_000;
    return {
      ok: false,
      retryAfterSeconds: Math.max(1, Math.ceil((count - short.tokens) / perMs / 1000)),
      limit,
      first: short.first,
    };
  }
}

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** When the last refusal was reported (one audit row per limit and user a minute). */
  reportedAt: number;
}

const MAX_BUCKETS = 50_000;

/** A short bucket's refusal, reported when its last report is a minute old. */
function short(bucket: Bucket, index: number, now: number): ShortBucket {
  const first = now - bucket.reportedAt >= REPORT_INTERVAL_MS;
  if (first) bucket.reportedAt = now;
  return { index, tokens: bucket.tokens, first };
}

/** The buckets of one gateway, in its memory: at most `MAX_BUCKETS`, those idle a minute forgotten first. */
export class MemoryTokenBuckets implements TokenBuckets {
  readonly #buckets = new Map<string, Bucket>();

  take(draws: readonly BucketDraw[], count: number, now: number): ShortBucket | undefined {
    if (draws.length === 1) {
      // The usual case (one limit applies): no list of buckets.
      const bucket = this.#bucket(draws[0]!.key, draws[0]!.perMinute, now);
      if (bucket.tokens < count) return short(bucket, 0, now);
      bucket.tokens -= count;
      return undefined;
    }
    const buckets: Bucket[] = [];
    for (const draw of draws) buckets.push(this.#bucket(draw.key, draw.perMinute, now));
    for (let index = 0; index < buckets.length; index++) {
      if (buckets[index]!.tokens < count) return short(buckets[index]!, index, now);
    }
    for (const bucket of buckets) bucket.tokens -= count;
    return undefined;
  }

  #bucket(key: string, perMinute: number, now: number): Bucket {
    let bucket = this.#buckets.get(key);
    if (!bucket) {
      if (this.#buckets.size >= MAX_BUCKETS) this.#sweep(now);
      bucket = { tokens: perMinute, updatedAt: now, reportedAt: -Infinity };
      this.#buckets.set(key, bucket);
      return bucket;
    }
    bucket.tokens = Math.min(perMinute, bucket.tokens + (now - bucket.updatedAt) * perMinute / 60_000);
    bucket.updatedAt = now;
    return bucket;
  }

  /** Forgets buckets untouched for a minute (they would be full again anyway). */
  #sweep(now: number): void {
    for (const [key, bucket] of this.#buckets) {
      if (now - bucket.updatedAt >= 60_000) this.#buckets.delete(key);
    }
  }
}
