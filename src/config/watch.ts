/**
 * Watches the registry and policy files and reloads on change, keeping the last good registry on errors.
 */
import { dirname } from "node:path";
import type { AuditLog } from "../audit/audit.ts";
import type { Logger } from "../log/logger.ts";
import { formatProblem, formatWarning } from "./errors.ts";
import type { RegistryHolder } from "./current.ts";
import { type LoadOptions, loadRegistry } from "./load.ts";

export interface RegistryWatcher {
  /** Loads the files now and applies the result (used on change, on SIGHUP, and by tests). */
  reload(): Promise<boolean>;
  close(): void;
}

interface WatchOptions {
  /** Absolute path of registry.yaml. */
  registryPath: string;
  loadOptions: LoadOptions;
  holder: RegistryHolder;
  log: Logger;
  /** Where swaps and rejected registries are recorded. */
  audit?: AuditLog;
  /** Quiet time after the last file event before reloading; editors write in several steps. */
  debounceMs?: number;
}

function isPolicyFile(path: string, policiesDir: string): boolean {
  return dirname(path) === policiesDir && /\.ya?ml$/.test(path);
}

/**
 * Watches registry.yaml (through its directory, so editors that replace the file are seen) and the
 * policies directory, and reloads after changes settle. A rejected registry leaves the current one serving.
 */
export function watchRegistry(options: WatchOptions): RegistryWatcher {
  const { registryPath, holder, log, audit } = options;
  const debounceMs = options.debounceMs ?? 150;
  let watcher: Deno.FsWatcher | undefined;
  let watchedKey = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  let closed = false;

  const reload = async (): Promise<boolean> => {
    const result = await loadRegistry(registryPath, options.loadOptions);
    if (result.warnings.length > 0) {
      log.warn("registry warnings", { warnings: result.warnings.map(formatWarning) });
    }
    const outcome = await holder.apply(result);
    if (outcome.ok) {
      const { next, diff } = outcome.event;
      log.info("registry reloaded", { generation: next.generation, ...diff });
      audit?.record("reload", undefined, {
        generation: next.generation,
        added: diff.added.length,
        removed: diff.removed.length,
        changed: diff.changed.length,
        unchanged: diff.unchanged.length,
      });
    } else {
      const problems = outcome.problems.map(formatProblem);
      log.error("registry rejected; the last good registry keeps serving", {
        generation: holder.current().generation,
        problems,
      });
      audit?.record("reload_rejected", undefined, { generation: holder.current().generation, problems });
    }
    rearm();
    return outcome.ok;
  };

  const schedule = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      if (!closed) reload().catch((error) => log.error("registry reload failed", { error }));
    }, debounceMs);
  };

  function rearm(): void {
    if (closed) return;
    const policiesDir = holder.current().registry.gateway.policiesDir;
    const dirs = [dirname(registryPath)];
    try {
      if (Deno.statSync(policiesDir).isDirectory && !dirs.includes(policiesDir)) dirs.push(policiesDir);
    } catch {
      // No policies directory (yet): a change to the registry's directory re-arms the watch.
    }
    const key = dirs.join("\n");
    if (key === watchedKey && watcher) return;
    watcher?.close();
    watchedKey = key;
    const current = Deno.watchFs(dirs, { recursive: false });
    watcher = current;
    (async () => {
      for await (const event of current) {
        const relevant = event.paths.some((path) =>
          path === registryPath || path === policiesDir || isPolicyFile(path, policiesDir)
        );
        if (relevant) schedule();
      }
    })().catch((error) => {
      if (!closed) log.error("registry watch stopped", { error });
    });
  }

  rearm();
  return {
    reload,
    close() {
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      watcher?.close();
      watcher = undefined;
    },
  };
}
