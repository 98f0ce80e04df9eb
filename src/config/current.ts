/**
 * The registry in force: a holder that swaps in a new snapshot after every listener has prepared for it.
 */
import { type BackendDiff, diffBackends } from "./diff.ts";
import type { ConfigProblem } from "./errors.ts";
import type { LoadResult } from "./load.ts";
import type { Registry } from "./types.ts";

/** One generation of the registry, as handlers see it for the whole of a request. */
export interface RegistrySnapshot {
  readonly generation: number;
  readonly registry: Registry;
  /** Epoch milliseconds when this generation was swapped in. */
  readonly loadedAt: number;
}

/** The outcome of the last reload attempt that failed; cleared by the next success. */
export interface ReloadFailure {
  readonly at: number;
  readonly problems: readonly ConfigProblem[];
}

/** Told of every swap, after it happened. */
export interface SwapEvent {
  readonly previous: RegistrySnapshot;
  readonly next: RegistrySnapshot;
  readonly diff: BackendDiff;
}

/**
 * Runs before a new generation is swapped in, with the chance to build what it needs; a throw rejects the
 * generation and the current one keeps serving (build, start, swap, stop).
 */
export type SwapPreparer = (next: Registry, diff: BackendDiff) => void | Promise<void>;
export type SwapListener = (event: SwapEvent) => void;

/** The current registry generation: read it once per request; replace it only whole. */
export interface RegistryHolder {
  current(): RegistrySnapshot;
  lastFailure(): ReloadFailure | undefined;
  /** Applies a load result: swaps it in when it is good, records the failure otherwise. */
  apply(
    result: LoadResult,
  ): Promise<{ ok: true; event: SwapEvent } | { ok: false; problems: readonly ConfigProblem[] }>;
  onPrepare(preparer: SwapPreparer): () => void;
  onSwap(listener: SwapListener): () => void;
  /** Told of every rejected reload, with its problems. */
  onReject(listener: (problems: readonly ConfigProblem[]) => void): () => void;
}

/** Creates the holder with an initial good registry. */
export function createRegistryHolder(
  initial: Registry,
  options: { now?: () => number; onListenerError?: (error: unknown) => void } = {},
): RegistryHolder {
  const now = options.now ?? Date.now;
  let snapshot: RegistrySnapshot = Object.freeze({ generation: 1, registry: initial, loadedAt: now() });
  let failure: ReloadFailure | undefined;
  const preparers = new Set<SwapPreparer>();
  const listeners = new Set<SwapListener>();
  const rejectListeners = new Set<(problems: readonly ConfigProblem[]) => void>();
  // Reloads run one at a time, in order, so a slow preparer cannot let an older registry win.
  let queue: Promise<unknown> = Promise.resolve();

  const fail = (problems: readonly ConfigProblem[]) => {
    failure = Object.freeze({ at: now(), problems });
    for (const listener of rejectListeners) listener(problems);
    return { ok: false as const, problems };
  };

  const applyNow = async (result: LoadResult) => {
    if (!result.ok) return fail(result.problems);
    const previous = snapshot;
    const diff = diffBackends(previous.registry, result.registry);
    try {
      for (const prepare of preparers) await prepare(result.registry, diff);
    } catch (error) {
      const message = error instanceof Error ? error.message : String(error);
      return fail([{ file: result.registry.files[0] ?? "registry", line: 0, col: 0, message }]);
    }
    snapshot = Object.freeze({
      generation: previous.generation + 1,
      registry: result.registry,
      loadedAt: now(),
    });
    failure = undefined;
    const event: SwapEvent = Object.freeze({ previous, next: snapshot, diff });
    for (const listener of listeners) {
      try {
        listener(event);
      } catch (error) {
        options.onListenerError?.(error);
      }
    }
    return { ok: true as const, event };
  };

  return {
    current: () => snapshot,
    lastFailure: () => failure,
    apply(result) {
      const run = queue.then(() => applyNow(result));
      queue = run.catch(() => undefined);
      return run;
    },
    onPrepare(preparer) {
      preparers.add(preparer);
      return () => preparers.delete(preparer);
    },
    onSwap(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    onReject(listener) {
      rejectListeners.add(listener);
      return () => rejectListeners.delete(listener);
    },
  };
}
