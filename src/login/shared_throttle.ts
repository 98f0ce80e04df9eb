/**
 * The throttles' counts in the store (`throttle_events`), for replicas sharing it: each attempt is a row,
 * counted within its window and added in one transaction with the check, so every replica sees the same
 * count.
 */
import {
  clearThrottleEvents,
  countThrottleKeys,
  deleteThrottleEvent,
  insertThrottleEvent,
  latestThrottleEvent,
  pruneThrottleEvents,
  pruneThrottleEventsOfKey,
  recentThrottleEvents,
} from "../store/shared_counters.ts";
import type { Store } from "../store/store.ts";
import {
  type AttemptLog,
  type RefusalReporter,
  REPORT_INTERVAL_MS,
  type ThrottleCounters,
} from "./throttle.ts";

/**
 * Every throttle's counts on one store; `prune()` (the housekeeping's) deletes the attempts that have left
 * their window, and the reports older than a minute.
 */
export class StoreThrottleCounters implements ThrottleCounters {
  readonly #store: Store;
  /** How long each scope's rows matter. */
  readonly #windows = new Map<string, number>();

  constructor(store: Store) {
    this.#store = store;
  }

  attempts(scope: string, limit: number, windowMs: number): AttemptLog {
    this.#windows.set(scope, Math.max(windowMs, this.#windows.get(scope) ?? 0));
    return new StoreAttemptLog(this.#store, scope, limit, windowMs);
  }

  reports(scope: string, maxEntries: number): RefusalReporter {
    this.#windows.set(scope, Math.max(REPORT_INTERVAL_MS, this.#windows.get(scope) ?? 0));
    return new StoreRefusalReports(this.#store, scope, maxEntries);
  }

  atomically<T>(work: () => T): T {
    return this.#store.transaction(work);
  }

  /** Deletes the rows of every scope made before its window; returns how many. */
  prune(now: number): number {
    let pruned = 0;
    for (const [scope, windowMs] of this.#windows) {
      pruned += pruneThrottleEvents(this.#store, scope, now - windowMs);
    }
    return pruned;
  }
}

/** One throttle's attempts in the store: at most `limit` rows a key within the window. */
class StoreAttemptLog implements AttemptLog {
  readonly #store: Store;
  readonly #scope: string;
  readonly #limit: number;
  readonly #windowMs: number;

  constructor(store: Store, scope: string, limit: number, windowMs: number) {
    this.#store = store;
    this.#scope = scope;
    this.#limit = limit;
    this.#windowMs = windowMs;
  }

  retryAfterSeconds(key: string, now: number): number | undefined {
    const times = recentThrottleEvents(this.#store, this.#scope, key, now - this.#windowMs, this.#limit);
    if (times.length < this.#limit) return undefined;
    // Newest first: the last is the oldest attempt that still counts.
    return Math.max(1, Math.ceil((times[times.length - 1]! + this.#windowMs - now) / 1000));
  }

  add(key: string, now: number): void {
    pruneThrottleEventsOfKey(this.#store, this.#scope, key, now - this.#windowMs);
    insertThrottleEvent(this.#store, this.#scope, key, now);
  }

  clear(key: string): void {
    clearThrottleEvents(this.#store, this.#scope, key);
  }

  remove(key: string, at: number): void {
    deleteThrottleEvent(this.#store, this.#scope, key, at);
  }

  sweep(): void {
    // The housekeeping prunes the store (`StoreThrottleCounters.prune`), for every replica at once.
  }

  get size(): number {
    return countThrottleKeys(this.#store, this.#scope);
  }
}

/**
 * Refusal reports shared by every replica: the one that writes a key's report row (at most one a minute)
 * reports it, with the refusals it answered itself since it last reported that key (each replica counts
 * its own in memory: a refusal costs no write).
 */
class StoreRefusalReports implements RefusalReporter {
  readonly #store: Store;
  readonly #scope: string;
  readonly #maxEntries: number;
  /** Refusals answered here and not reported, with when the last was, by key. */
  readonly #unreported = new Map<string, { count: number; at: number }>();

  constructor(store: Store, scope: string, maxEntries: number) {
    this.#store = store;
    this.#scope = scope;
    this.#maxEntries = maxEntries;
  }

  next(key: string, now: number): { report: boolean; unreported: number } {
    const due = (at: number | undefined) => at === undefined || now - at >= REPORT_INTERVAL_MS;
    const claimed = due(latestThrottleEvent(this.#store, this.#scope, key)) &&
      this.#store.transaction(() => {
        if (!due(latestThrottleEvent(this.#store, this.#scope, key))) return false;
        clearThrottleEvents(this.#store, this.#scope, key);
        insertThrottleEvent(this.#store, this.#scope, key, now);
        return true;
      });
    const mine = this.#unreported.get(key);
    this.#unreported.delete(key);
    if (claimed) return { report: true, unreported: mine?.count ?? 0 };
    const count = (mine?.count ?? 0) + 1;
    this.#unreported.set(key, { count, at: now });
    while (this.#unreported.size > this.#maxEntries) {
      this.#unreported.delete(this.#unreported.keys().next().value!);
    }
    return { report: false, unreported: count };
  }

  sweep(now: number): void {
    for (const [key, { at }] of this.#unreported) {
      if (at <= now - REPORT_INTERVAL_MS) this.#unreported.delete(key);
    }
  }

  get size(): number {
    return this.#unreported.size;
  }
}
