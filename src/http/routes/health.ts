/** `/healthz` (the process answers) and `/readyz` (the registry in force and a writable store). */
import type { Hono } from "hono";
import type { RegistryHolder } from "../../config/current.ts";
import { formatProblem } from "../../config/errors.ts";
import type { Store } from "../../store/store.ts";
import { VERSION } from "../../version.ts";
import type { AppEnv } from "../env.ts";

export interface HealthRouteDependencies {
  holder: RegistryHolder;
  store: Store;
  now: () => number;
}

export function mountHealthRoutes(app: Hono<AppEnv>, deps: HealthRouteDependencies): void {
  const { holder, store, now } = deps;
  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", (c) => {
    const snapshot = c.get("snapshot");
    const failure = holder.lastFailure();
    const storeOpen = store.db.isOpen;
    // Not ready while writes fail (disk full, read-only); a probe write here notices space coming back.
    const writable = storeOpen && store.checkWritable();
    const writes = store.writeHealth();
    const ready = storeOpen && writable;
    const body = {
      status: ready ? "ready" : "not_ready",
      version: VERSION,
      registry: {
        generation: snapshot.generation,
        loaded_at: new Date(snapshot.loadedAt).toISOString(),
        last_error: failure
          ? { at: new Date(failure.at).toISOString(), problems: failure.problems.map(formatProblem) }
          : null,
      },
      store: {
        open: storeOpen,
        writable,
        unwritable: writes.writable ? null : {
          reason: writes.reason,
          since: writes.since === undefined ? undefined : new Date(writes.since).toISOString(),
          failed_writes: writes.failedWrites,
        },
      },
      time: new Date(now()).toISOString(),
    };
    return c.json(body, ready ? 200 : 503, { "cache-control": "no-store" });
  });
}
