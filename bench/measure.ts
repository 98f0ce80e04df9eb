/**
 * Percentiles, bounded load loops and waiting helpers shared by the benchmarks. Durations are in
 * milliseconds (`performance.now()`), throughputs in calls per second.
 */

/** The nearest-rank percentile `p` (0..100) of ascending `sorted` values; NaN when there are none. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(1, rank)) - 1]!;
}

/** The median of unsorted values. */
export function median(values: readonly number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** What one load run measured. */
export interface LoadResult {
  /** Calls that answered without error. */
  readonly calls: number;
  readonly errors: number;
  readonly concurrency: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly meanMs: number;
  /** Successful calls per second of wall time, all workers together. */
  readonly throughputPerSecond: number;
  readonly wallMs: number;
  /** The first error seen, for the report. */
  readonly firstError?: string;
  /** CPU time the watched process (`cpuPid`) spent per successful call, user and system. */
  readonly cpuMsPerCall?: number;
}

/** One call of a worker; throws on failure. */
export type Call = () => Promise<void>;

export interface LoadOptions {
  /** One call function per concurrent worker (each usually owns its own client). */
  readonly workers: readonly Call[];
  /** Calls per worker before measuring, not recorded. */
  readonly warmupPerWorker: number;
  /** Calls measured, all workers together. */
  readonly calls: number;
  /** The run stops here even if not every call was made. */
  readonly timeLimitMs: number;
  /** A process whose CPU time is measured while the calls are (the proxy under test). */
  readonly cpuPid?: number;
}

/** Latencies and wall time of one or more runs that are pooled into one result. */
export class Samples {
  readonly latenciesMs: number[] = [];
  errors = 0;
  wallMs = 0;
  /** CPU time of the watched process, if any. */
  cpuMs: number | undefined;
  concurrency = 0;
  firstError: string | undefined;

  add(other: Samples): void {
    for (const latency of other.latenciesMs) this.latenciesMs.push(latency);
    this.errors += other.errors;
    this.wallMs += other.wallMs;
    if (other.cpuMs !== undefined) this.cpuMs = (this.cpuMs ?? 0) + other.cpuMs;
    this.concurrency = other.concurrency;
    this.firstError ??= other.firstError;
  }

  result(): LoadResult {
    const sorted = [...this.latenciesMs].sort((a, b) => a - b);
    const sum = sorted.reduce((total, value) => total + value, 0);
    return {
      calls: sorted.length,
      errors: this.errors,
      concurrency: this.concurrency,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      meanMs: sorted.length > 0 ? sum / sorted.length : Number.NaN,
      throughputPerSecond: this.wallMs > 0 ? sorted.length / (this.wallMs / 1000) : Number.NaN,
      wallMs: this.wallMs,
      ...(this.firstError !== undefined ? { firstError: this.firstError } : {}),
      ...(this.cpuMs !== undefined && sorted.length > 0 ? { cpuMsPerCall: this.cpuMs / sorted.length } : {}),
    };
  }
}

/**
 * Warms every worker up, then lets them draw from one shared budget of `calls` until it is spent or the
 * time limit passes. Each call's latency is recorded; a failed call counts as an error, not a latency.
 */
export async function runLoad(options: LoadOptions): Promise<Samples> {
  const samples = new Samples();
  samples.concurrency = options.workers.length;
  const recordError = (error: unknown) => {
    samples.errors++;
    samples.firstError ??= error instanceof Error ? error.message : String(error);
  };
  await Promise.all(options.workers.map(async (call) => {
    for (let i = 0; i < options.warmupPerWorker; i++) await call().catch(() => {});
  }));
  let remaining = options.calls;
  const cpuBefore = options.cpuPid === undefined ? undefined : await cpuTimeMs(options.cpuPid);
  const started = performance.now();
  const deadline = started + options.timeLimitMs;
  await Promise.all(options.workers.map(async (call) => {
    while (remaining > 0 && performance.now() < deadline) {
      remaining--;
      const before = performance.now();
      try {
        await call();
        samples.latenciesMs.push(performance.now() - before);
      } catch (error) {
        recordError(error);
      }
    }
  }));
  samples.wallMs = performance.now() - started;
  if (cpuBefore !== undefined) samples.cpuMs = await cpuTimeMs(options.cpuPid!) - cpuBefore;
  return samples;
}

/** Linux counts CPU time in clock ticks of 1/100 s (USER_HZ). */
const MS_PER_CLOCK_TICK = 10;

/** The CPU time a process has used so far, user and system, in milliseconds (Linux /proc). */
export async function cpuTimeMs(pid: number): Promise<number> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name (which may hold spaces): state is field 3, utime 14 and stime 15.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * MS_PER_CLOCK_TICK;
}

/** Rejects when `promise` has not settled within `ms`. */
export async function within<T>(ms: number, promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** Bound on one plain HTTP request of a benchmark (the MCP clients have their own). */
export const HTTP_TIMEOUT_MS = 10_000;

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Calls `check` every `intervalMs` until it returns a value other than undefined; throws after `timeoutMs`. */
export async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  options: { intervalMs: number; timeoutMs: number; what: string },
): Promise<T> {
  const deadline = performance.now() + options.timeoutMs;
  while (true) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    if (performance.now() > deadline) {
      throw new Error(`${options.what} did not happen within ${options.timeoutMs} ms`);
    }
    await sleep(options.intervalMs);
  }
}
