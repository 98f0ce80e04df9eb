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

interface Bucket {
  tokens: number;
  updatedAt: number;
  /** When the last refusal was reported (one audit row per limit and user a minute). */
  reportedAt: number;
}

const MAX_BUCKETS = 50_000;

/**
 * Token buckets per limit, user (and backend, for limits naming backends): each holds up to
 * `requests_per_minute` requests and refills at that rate, so a burst of a minute's worth passes and the
 * steady rate is the limit.
 */
export class RateLimiter {
  readonly #buckets = new Map<string, Bucket>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Takes `count` requests from every bucket that applies, or none when one of them is short. */
  take(registry: Registry, subject: PolicySubject, scope: LimitScope, count = 1): Admission {
    const now = this.#now();
    const applicable: { limit: CompiledLimit; bucket: Bucket }[] = [];
    for (const limit of limitsOf(registry)) {
      if (!limit.subjects.matches(subject)) continue;
      if (limit.backends) {
        if (scope.backend === undefined || !limit.backends.test(scope.backend)) continue;
      } else if (scope.kind === "routed") continue;
      const key = `${limit.key}\n${subject.id}\n${limit.backends ? scope.backend : ""}`;
      const bucket = this.#bucket(key, limit.limit.requestsPerMinute, now);
      applicable.push({ limit, bucket });
    }
    for (const { limit, bucket } of applicable) {
      if (bucket.tokens >= count) continue;
      const perMs = limit.limit.requestsPerMinute / 60_000;
      const first = now - bucket.reportedAt >= 60_000;
      if (first) bucket.reportedAt = now;
      return {
        ok: false,
        retryAfterSeconds: Math.max(1, Math.ceil((count - bucket.tokens) / perMs / 1000)),
        limit: limit.limit,
        first,
      };
    }
    for (const { bucket } of applicable) bucket.tokens -= count;
    return { ok: true };
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
