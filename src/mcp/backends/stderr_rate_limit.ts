// Keeps a chatty backend's stderr from flooding the log: a line budget per window, per gateway and backend.

/**
 * Rate limit of a backend's stderr in the log: `limit` lines per window, then one line saying how many
 * were left out (told when the next line comes after the window, or at `flush()`).
 */
export class StderrRateLimit {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #count = 0;
  #suppressed = 0;

  constructor(options: { limit?: number; windowMs?: number; now?: () => number } = {}) {
    this.#limit = options.limit ?? 20;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether to log this line, and how many lines were left out before it (to log first). */
  admit(): { log: boolean; suppressed: number } {
    const now = this.#now();
    let suppressed = 0;
    if (now - this.#windowStart >= this.#windowMs) {
      suppressed = this.flush();
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count < this.#limit) {
      this.#count++;
      return { log: true, suppressed };
    }
    this.#suppressed++;
    return { log: false, suppressed };
  }

  /** How many lines were left out and not yet told; resets it. */
  flush(): number {
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}

const rateLimits = new WeakMap<object, Map<string, StderrRateLimit>>();

/** The stderr rate limit of backend `name` among those logged to `log`: one per gateway and backend. */
export function stderrRateLimitFor(log: object, name: string): StderrRateLimit {
  let byName = rateLimits.get(log);
  if (!byName) rateLimits.set(log, byName = new Map());
  let limit = byName.get(name);
  if (!limit) byName.set(name, limit = new StderrRateLimit());
  return limit;
}
