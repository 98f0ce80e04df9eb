/**
 * Load runs of several targets side by side: per concurrency level every target gets its workers, then
 * the targets take turns for a few rounds (so a slow drift of the machine spreads over all of them) and
 * each target's rounds are pooled.
 */
import { closeWorkers, connectWorkers, type Worker } from "./clients.ts";
import { type LoadResult, runLoad, Samples } from "./measure.ts";
import type { BenchSettings } from "./settings.ts";

export interface LoadTarget {
  readonly label: string;
  /** A new worker (its own client, session or process) for this target. */
  connect(): Promise<Worker>;
  /** The process in the middle (gateway or bridge), whose CPU time per call is reported. */
  readonly cpuPid?: number;
}

/** A target's result at one concurrency level, or why it has none. */
export type TargetOutcome = { readonly result: LoadResult } | { readonly error: string };

/** outcomes.get(concurrency).get(label) */
export type SideBySide = Map<number, Map<string, TargetOutcome>>;

export async function runSideBySide(
  targets: readonly LoadTarget[],
  settings: BenchSettings,
): Promise<SideBySide> {
  const outcomes: SideBySide = new Map();
  for (const concurrency of settings.concurrency) {
    const byTarget = new Map<string, TargetOutcome>();
    outcomes.set(concurrency, byTarget);
    const connected: { target: LoadTarget; workers: Worker[]; samples: Samples }[] = [];
    try {
      for (const target of targets) {
        try {
          const workers = await connectWorkers(concurrency, () => target.connect());
          connected.push({ target, workers, samples: new Samples() });
        } catch (error) {
          byTarget.set(target.label, { error: `Cannot connect: ${messageOf(error)}` });
        }
      }
      const callsPerRun = Math.ceil(settings.calls(concurrency) / settings.rounds);
      for (let round = 0; round < settings.rounds; round++) {
        for (const entry of connected) {
          entry.samples.add(
            await runLoad({
              workers: entry.workers.map((worker) => worker.call),
              warmupPerWorker: settings.warmupPerWorker,
              calls: callsPerRun,
              timeLimitMs: settings.runTimeLimitMs,
              ...(entry.target.cpuPid !== undefined ? { cpuPid: entry.target.cpuPid } : {}),
            }),
          );
        }
      }
      for (const entry of connected) byTarget.set(entry.target.label, { result: entry.samples.result() });
    } finally {
      await Promise.all(connected.map((entry) => closeWorkers(entry.workers)));
    }
  }
  return outcomes;
}

export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function resultOf(outcomes: SideBySide, concurrency: number, label: string): LoadResult | undefined {
  const outcome = outcomes.get(concurrency)?.get(label);
  return outcome && "result" in outcome ? outcome.result : undefined;
}
