// Sliding-window throttles: failed password sign-ins per account and address, and provider sign-in starts
// per address. Counts live in memory (they matter for minutes; a flood must not cost disk writes), or in the
// store when replicas share it (`shared_throttle.ts`).

/** How many failed password sign-ins are let through, and over what time. */
export interface ThrottleLimits {
  /** Failures per account name within the window before that account is refused. */
  readonly failuresPerAccount: number;
  /** Failures per client address (IPv6: per /64) within the window before that address is refused. */
  readonly failuresPerAddress: number;
  readonly windowMs: number;
  /** Most accounts, and most addresses, remembered at once; the oldest are forgotten first. */
  readonly maxEntries: number;
}

export const DEFAULT_THROTTLE_LIMITS: ThrottleLimits = Object.freeze({
  failuresPerAccount: 5,
  failuresPerAddress: 20,
  windowMs: 15 * 60_000,
  maxEntries: 10_000,
});

/** Refusals are written to the audit log at most this often per account or address. */
export const REPORT_INTERVAL_MS = 60_000;

/** How many provider sign-ins one client address may start, and over what time. */
export interface StartLimits {
  /** Starts per client address (IPv6: per /64) within the window before that address is refused. */
  readonly startsPerAddress: number;
  readonly windowMs: number;
  /** Most addresses remembered at once; the least recently seen are forgotten first. */
  readonly maxEntries: number;
}

export const DEFAULT_START_LIMITS: StartLimits = Object.freeze({
  startsPerAddress: 20,
  windowMs: 10 * 60_000,
  maxEntries: 10_000,
});

/** Why an attempt is refused before it is looked at. */
export interface Refusal {
  /** Whole seconds until the oldest counted attempt leaves the window (`Retry-After`, RFC 9110 §10.2.3). */
  readonly retryAfterSeconds: number;
  /**
   * Whether to write this refusal to the audit log: the first one, then one a minute per account or address,
   * so that a flood of refused attempts cannot turn into a flood of writes.
   */
  readonly report: boolean;
  /** Refusals of the same account or address not written since the last one that was. */
  readonly unreported: number;
}

/** Why a sign-in attempt is refused before its password is checked. */
export interface Throttled extends Refusal {
  readonly scope: "account" | "address";
}

/** An attempt let through: counted as a failure until it turns out right. */
export interface Admission {
  succeeded(): void;
}

/** Attempt times by key in a sliding window: one throttle's counts. */
export interface AttemptLog {
  /** Seconds until `key` may try again, or undefined when it may now. */
  retryAfterSeconds(key: string, now: number): number | undefined;
  add(key: string, now: number): void;
  clear(key: string): void;
  /** Takes back the attempt counted at `at` (an attempt that turned out right). */
  remove(key: string, at: number): void;
  /** Forgets what has left the window. */
  sweep(now: number): void;
  /** How many keys are remembered (for tests of the bound). */
  readonly size: number;
}

/** Which refusals to write to the audit log: the first per key, then one a minute. */
export interface RefusalReporter {
  next(key: string, now: number): { report: boolean; unreported: number };
  sweep(now: number): void;
  readonly size: number;
}

/**
 * Where the throttles keep their counts: this process's memory (`MEMORY_THROTTLE_COUNTERS`, one gateway),
 * or the store (`StoreThrottleCounters` in `shared_throttle.ts`, replicas sharing it).
 */
export interface ThrottleCounters {
  /** The attempts one throttle counts; `scope` names them in the store. */
  attempts(scope: string, limit: number, windowMs: number, maxEntries: number): AttemptLog;
  /** The refusals of one throttle, reported once a minute per key. */
  reports(scope: string, maxEntries: number): RefusalReporter;
  /** Runs `work` with no other gateway counting meanwhile (a store transaction; in memory it just runs). */
  atomically<T>(work: () => T): T;
}

export const MEMORY_THROTTLE_COUNTERS: ThrottleCounters = Object.freeze({
  attempts: (_scope: string, limit: number, windowMs: number, maxEntries: number) =>
    new SlidingWindowLog(limit, windowMs, maxEntries),
  reports: (_scope: string, maxEntries: number) => new RefusalReports(maxEntries),
  atomically: <T>(work: () => T): T => work(),
});

/** Attempt times by key in a sliding window, each list oldest first and never longer than the limit. */
export class SlidingWindowLog implements AttemptLog {
  readonly #entries = new Map<string, number[]>();
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #maxEntries: number;

  constructor(limit: number, windowMs: number, maxEntries: number) {
    this.#limit = limit;
    this.#windowMs = windowMs;
    this.#maxEntries = maxEntries;
  }

  #recent(key: string, now: number): number[] {
    const times = (this.#entries.get(key) ?? []).filter((at) => at > now - this.#windowMs);
    if (times.length === 0) this.#entries.delete(key);
    return times;
  }

  /** Seconds until `key` may try again, or undefined when it may now. */
  retryAfterSeconds(key: string, now: number): number | undefined {
    const times = this.#recent(key, now);
    if (times.length < this.#limit) return undefined;
    return Math.max(1, Math.ceil((times[0]! + this.#windowMs - now) / 1000));
  }

  add(key: string, now: number): void {
    const times = this.#recent(key, now);
    times.push(now);
    // Re-inserted at the end: Map order is then least recently failed first, the order to forget in.
    this.#entries.delete(key);
    this.#entries.set(key, times.slice(-this.#limit));
    if (this.#entries.size > this.#maxEntries) this.sweep(now);
    while (this.#entries.size > this.#maxEntries) this.#entries.delete(this.#entries.keys().next().value!);
  }

  clear(key: string): void {
    this.#entries.delete(key);
  }

  /** Takes back the failure counted at `at` (an attempt that turned out right). */
  remove(key: string, at: number): void {
    const times = this.#entries.get(key);
    const index = times?.lastIndexOf(at) ?? -1;
    if (index >= 0) times!.splice(index, 1);
    if (times?.length === 0) this.#entries.delete(key);
  }

  sweep(now: number): void {
    for (const [key, times] of this.#entries) {
      if (times.at(-1)! <= now - this.#windowMs) this.#entries.delete(key);
    }
  }

  get size(): number {
    return this.#entries.size;
  }
}

/**
 * Which refusals to write to the audit log: the first per key, then one a minute, each with the number not
 * written since; at most `maxEntries` keys remembered.
 */
export class RefusalReports implements RefusalReporter {
  /** When a refusal was last reported, and how many were not since, by key. */
  readonly #reported = new Map<string, { at: number; unreported: number }>();
  readonly #maxEntries: number;

  constructor(maxEntries: number) {
    this.#maxEntries = maxEntries;
  }

  next(key: string, now: number): { report: boolean; unreported: number } {
    const last = this.#reported.get(key);
    if (last && now - last.at < REPORT_INTERVAL_MS) {
      last.unreported++;
      return { report: false, unreported: last.unreported };
    }
    this.#reported.delete(key);
    this.#reported.set(key, { at: now, unreported: 0 });
    while (this.#reported.size > this.#maxEntries) this.#reported.delete(this.#reported.keys().next().value!);
    return { report: true, unreported: last?.unreported ?? 0 };
  }

  sweep(now: number): void {
    for (const [key, { at }] of this.#reported) {
      if (at <= now - REPORT_INTERVAL_MS) this.#reported.delete(key);
    }
  }

  get size(): number {
    return this.#reported.size;
  }
}

/**
 * Slows password guessing at `POST /login`: too many failures for one account, or from one client address,
 * within the window, and further attempts are refused without checking the password.
 *
 * An attempt counts as a failure from the moment it is let through, before its password is checked (which
 * takes a while): many attempts sent at once cannot all slip past the limit. One that turns out right takes
 * its count back, and clears its account's failures.
 *
 * On one gateway the counts live in memory rather than in the store: they matter for minutes, a restart
 * forgetting them gives back one window at most, and keeping them in memory means a flood of bad passwords
 * costs no disk writes (each SQLite write is a synchronous, fully synced transaction; refusals reach the
 * audit log at most once a minute per account or address). Memory stays bounded by `maxEntries` per kind,
 * swept of expired entries as the window passes. Replicas sharing a store count there instead (`counters`),
 * or each would let through its own window's worth.
 */
export class SignInThrottle {
  readonly #accounts: AttemptLog;
  readonly #addresses: AttemptLog;
  readonly #limits: ThrottleLimits;
  readonly #now: () => number;
  readonly #counters: ThrottleCounters;
  /** Keyed by scope and account or address. */
  readonly #reported: RefusalReporter;
  #nextSweepAt: number;

  constructor(options: { limits?: ThrottleLimits; now?: () => number; counters?: ThrottleCounters } = {}) {
    this.#limits = options.limits ?? DEFAULT_THROTTLE_LIMITS;
    this.#now = options.now ?? Date.now;
    this.#counters = options.counters ?? MEMORY_THROTTLE_COUNTERS;
    const { failuresPerAccount, failuresPerAddress, windowMs, maxEntries } = this.#limits;
    this.#accounts = this.#counters.attempts("password_account", failuresPerAccount, windowMs, maxEntries);
    this.#addresses = this.#counters.attempts("password_address", failuresPerAddress, windowMs, maxEntries);
    this.#reported = this.#counters.reports("password_refusal", 2 * maxEntries);
    this.#nextSweepAt = this.#now() + windowMs;
  }

  /**
   * Refuses an attempt for `account` from `network` (checked before the password), or lets it through,
   * counted as a failure until the caller says it `succeeded()`.
   */
  admit(account: string, network: string): Throttled | Admission {
    const now = this.#tick();
    // Checked and counted as one step, so that attempts at several replicas at once cannot all slip past.
    return this.#counters.atomically(() => this.#admit(account, network, now));
  }

  #admit(account: string, network: string, now: number): Throttled | Admission {
    const byAddress = this.#addresses.retryAfterSeconds(network, now);
    const byAccount = this.#accounts.retryAfterSeconds(account, now);
    if (byAddress === undefined && byAccount === undefined) {
      this.#accounts.add(account, now);
      this.#addresses.add(network, now);
      return {
        succeeded: () => {
          // One good account must not reset the address's count: only this attempt is taken back.
          this.#accounts.clear(account);
          this.#addresses.remove(network, now);
        },
      };
    }
    const [scope, key, retryAfterSeconds] = (byAccount ?? 0) >= (byAddress ?? 0)
      ? ["account" as const, account, byAccount!]
      : ["address" as const, network, byAddress!];
    return { scope, retryAfterSeconds, ...this.#reported.next(`${scope}\0${key}`, now) };
  }

  /** How many accounts and addresses are remembered (for tests of the bound). */
  get size(): { accounts: number; addresses: number; reported: number } {
    return { accounts: this.#accounts.size, addresses: this.#addresses.size, reported: this.#reported.size };
  }

  #tick(): number {
    const now = this.#now();
    if (now >= this.#nextSweepAt) {
      this.#accounts.sweep(now);
      this.#addresses.sweep(now);
      this.#reported.sweep(now);
      this.#nextSweepAt = now + this.#limits.windowMs;
    }
    return now;
  }
}

/**
 * Slows starts of provider sign-ins at `GET /login/{provider}` per client network (IPv6: per /64), so that
 * no one address can fill the store with pending sign-ins; other addresses are never held back by it.
 */
export class StartThrottle {
  readonly #starts: AttemptLog;
  readonly #reported: RefusalReporter;
  readonly #limits: StartLimits;
  readonly #now: () => number;
  readonly #counters: ThrottleCounters;
  #nextSweepAt: number;

  constructor(options: { limits?: StartLimits; now?: () => number; counters?: ThrottleCounters } = {}) {
    this.#limits = options.limits ?? DEFAULT_START_LIMITS;
    this.#now = options.now ?? Date.now;
    this.#counters = options.counters ?? MEMORY_THROTTLE_COUNTERS;
    const { startsPerAddress, windowMs, maxEntries } = this.#limits;
    this.#starts = this.#counters.attempts("provider_start", startsPerAddress, windowMs, maxEntries);
    this.#reported = this.#counters.reports("provider_start_refusal", maxEntries);
    this.#nextSweepAt = this.#now() + windowMs;
  }

  /** Counts a start from `network`, or refuses it (uncounted) when the network has used up its window. */
  admit(network: string): Refusal | undefined {
    const now = this.#now();
    if (now >= this.#nextSweepAt) {
      this.#starts.sweep(now);
      this.#reported.sweep(now);
      this.#nextSweepAt = now + this.#limits.windowMs;
    }
    return this.#counters.atomically(() => {
      const retryAfterSeconds = this.#starts.retryAfterSeconds(network, now);
      if (retryAfterSeconds === undefined) {
        this.#starts.add(network, now);
        return undefined;
      }
      return { retryAfterSeconds, ...this.#reported.next(network, now) };
    });
  }

  /** How many addresses are remembered (for tests of the bound). */
  get size(): { addresses: number; reported: number } {
    return { addresses: this.#starts.size, reported: this.#reported.size };
  }
}
