/** How much each benchmark does: the full run, and `--quick` (a short run for tests, same shape). */
export interface BenchSettings {
  readonly quick: boolean;
  /** Concurrency levels of the load runs. */
  readonly concurrency: readonly number[];
  /** Load runs alternate between the targets this many times; their samples are pooled. */
  readonly rounds: number;
  /** Calls measured per target and concurrency level, over all rounds. */
  readonly calls: (concurrency: number) => number;
  readonly warmupPerWorker: number;
  /** Bound on one load run. */
  readonly runTimeLimitMs: number;
  /** Bound on starting a gateway or a backend. */
  readonly startTimeoutMs: number;
  /** Bound on fetching and starting an npm bridge (the first run downloads it). */
  readonly bridgeStartTimeoutMs: number;
  readonly memory: {
    readonly sessions: number;
    readonly openConcurrency: number;
    /** Quiet time before memory is read: between a change (sessions opened, load run) and the reading. */
    readonly settleMs: number;
    /** After start, before the idle reading: past the first start's password worker (1 s idle). */
    readonly idleSettleMs: number;
    /** Calls made before the reading after load. */
    readonly loadCalls: number;
    /** How long after the load the reading waits at most for the resident set to fall under its target. */
    readonly afterLoadIdleMs: number;
  };
  readonly startupRuns: number;
  readonly reload: { readonly reloads: number; readonly workers: number; readonly timeoutMs: number };
  readonly soak: SoakSettings;
}

/** The soak run (`--only soak`): mixed traffic for a long time, sampled at a fixed interval. */
export interface SoakSettings {
  readonly durationMs: number;
  readonly sampleIntervalMs: number;
  /** Users, each a `clients:` entry with `client_credentials`, and concurrent workers per user. */
  readonly users: number;
  readonly workersPerUser: number;
}

/** What the command line may change of the soak run. */
export interface SoakOptions {
  readonly minutes?: number;
  readonly sampleSeconds?: number;
}

export function benchSettings(quick: boolean, soak: SoakOptions = {}): BenchSettings {
  return {
    quick,
    concurrency: [1, 16],
    rounds: quick ? 1 : 3,
    calls: (concurrency) => quick ? (concurrency === 1 ? 200 : 480) : (concurrency === 1 ? 3_000 : 12_000),
    warmupPerWorker: quick ? 10 : 50,
    runTimeLimitMs: quick ? 10_000 : 30_000,
    startTimeoutMs: 30_000,
    bridgeStartTimeoutMs: quick ? 45_000 : 120_000,
    memory: {
      sessions: 500,
      openConcurrency: 16,
      settleMs: quick ? 300 : 1_000,
      idleSettleMs: 2_500,
      loadCalls: quick ? 2_000 : 10_000,
      afterLoadIdleMs: quick ? 5_000 : 60_000,
    },
    startupRuns: quick ? 2 : 5,
    reload: { reloads: quick ? 2 : 5, workers: 4, timeoutMs: 5_000 },
    soak: {
      durationMs: (soak.minutes ?? (quick ? 1 : 30)) * 60_000,
      sampleIntervalMs: (soak.sampleSeconds ?? 30) * 1_000,
      users: 4,
      workersPerUser: 3,
    },
  };
}
