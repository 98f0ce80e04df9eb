import { Hono } from "hono";
import type { RegistrySnapshot } from "../config/current.ts";
import { bodyLimit } from "hono/body-limit";
import type { RegistryHolder } from "../config/current.ts";
import { formatProblem } from "../config/errors.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";
import { VERSION } from "../version.ts";
import { createErrorHandler, HttpError } from "./errors.ts";

export interface AppDependencies {
  holder: RegistryHolder;
  store: Store;
  log: Logger;
  now?: () => number;
}

/** What every handler can read from the context: the registry generation of this request. */
export type AppEnv = { Variables: { snapshot: RegistrySnapshot } };

/** The HTTP surface of the gateway; later layers mount their routes on the returned app. */
export function createApp(deps: AppDependencies): Hono<AppEnv> {
  const { holder, store, log } = deps;
  const now = deps.now ?? Date.now;
  const app = new Hono<AppEnv>();

  // One registry generation per request, however long it runs and whatever reloads meanwhile.
  app.use(function pinSnapshot(c, next) {
    c.set("snapshot", holder.current());
    return next();
  });

  app.use(async function requestLog(c, next) {
    const started = performance.now();
    await next();
    const fields = {
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (c.req.path === "/healthz" || c.req.path === "/readyz") log.debug("request", fields);
    else log.info("request", fields);
  });

  app.use(function limitBody(c, next) {
    // The limit is part of the registry, so it can change on reload.
    const maxSize = c.get("snapshot").registry.gateway.maxBodyBytes;
    return bodyLimit({
      maxSize,
      onError: () => {
        throw new HttpError(413, "payload_too_large", `Request body is larger than ${maxSize} bytes`);
      },
    })(c, next);
  });

  app.get("/healthz", (c) => c.json({ status: "ok" }));

  app.get("/readyz", (c) => {
    const snapshot = c.get("snapshot");
    const failure = holder.lastFailure();
    const storeOpen = store.db.isOpen;
    const body = {
      status: storeOpen ? "ready" : "not_ready",
      version: VERSION,
      registry: {
        generation: snapshot.generation,
        loaded_at: new Date(snapshot.loadedAt).toISOString(),
        last_error: failure
          ? { at: new Date(failure.at).toISOString(), problems: failure.problems.map(formatProblem) }
          : null,
      },
      store: { open: storeOpen },
      time: new Date(now()).toISOString(),
    };
    return c.json(body, storeOpen ? 200 : 503, { "cache-control": "no-store" });
  });

  app.notFound(() => new HttpError(404, "not_found", "No such endpoint").toResponse());
  app.onError(createErrorHandler(log));
  return app;
}
