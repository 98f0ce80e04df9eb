/** What changed between two registries' backends (added, removed, changed), for reloads. */
import { Template } from "./template.ts";
import type { BackendSettings, Registry } from "./types.ts";

/** How the backends of two registry generations relate; later layers keep unchanged backends running. */
export interface BackendDiff {
  readonly added: readonly string[];
  readonly removed: readonly string[];
  readonly changed: readonly string[];
  readonly unchanged: readonly string[];
}

/** A comparable form of a value, in which a Template stands for what it renders (not its source). */
function canonical(value: unknown): unknown {
  if (value instanceof Template) return { template: value.identity() };
  if (Array.isArray(value)) return value.map(canonical);
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.keys(value).sort().map((key) => [key, canonical((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}

/**
 * A string equal for two backend definitions exactly when they would behave the same. It holds resolved
 * `${secret:...}` values: hash it before keeping it anywhere.
 */
export function backendIdentity(backend: BackendSettings): string {
  return JSON.stringify(canonical(backend));
}

/** True when two backend definitions would behave the same. */
export function sameBackend(a: BackendSettings, b: BackendSettings): boolean {
  return backendIdentity(a) === backendIdentity(b);
}

/** Compares the backends of two registries; `previous` undefined means everything is added. */
export function diffBackends(previous: Registry | undefined, next: Registry): BackendDiff {
  const before = previous?.backends ?? {};
  const after = next.backends;
  const added: string[] = [];
  const changed: string[] = [];
  const unchanged: string[] = [];
  for (const [name, settings] of Object.entries(after)) {
    const old = Object.hasOwn(before, name) ? before[name] : undefined;
    if (!old) added.push(name);
    else if (sameBackend(old, settings)) unchanged.push(name);
    else changed.push(name);
  }
  const removed = Object.keys(before).filter((name) => !Object.hasOwn(after, name));
  return { added, removed, changed, unchanged };
}
