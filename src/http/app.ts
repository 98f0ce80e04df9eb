// The gateway's HTTP surface: middleware (registry snapshot, log, CORS, body limit), health, /mcp, /metrics.
// The authorization server's route groups are in routes/, one file each; this file mounts them.
import { JSONRPC, jsonRpcErrorResponse } from "../core/jsonrpc.ts";
import { readAtMost } from "../core/streams.ts";
import { type Context, Hono } from "hono";
import type { RegistryHolder } from "../config/current.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";
import type { McpFront } from "../mcp/front/http_entry.ts";
import type { Metrics } from "../metrics/metrics.ts";
import type { AppEnv } from "./env.ts";
import { type BrowserSignInDependencies, createBrowserSignIn } from "./browser_session.ts";
import { refuseRepeatedQuery } from "./request_helpers.ts";
import { type DiscoveryRouteDependencies, mountDiscoveryRoutes } from "./routes/discovery.ts";
import { mountRegistrationRoutes, type RegistrationRouteDependencies } from "./routes/registration.ts";
import { mountStatusRoutes, type StatusRouteDependencies } from "./routes/status.ts";
import { mountSignInRoutes, type SignInRouteDependencies } from "./routes/sign_in.ts";
import { type ConnectionRouteDependencies, mountConnectionRoutes } from "./routes/connections.ts";
import { mountTokenRoutes, type TokenRouteDependencies } from "./routes/tokens.ts";
import { mountHealthRoutes } from "./routes/health.ts";
import { mountMcpRoutes } from "./routes/mcp.ts";
import { mountMetricsRoute } from "./routes/metrics.ts";
import { type TokenChecker } from "./auth.ts";
import { browserCors } from "./cors.ts";
import { isOriginAllowed } from "./dns_rebinding.ts";
import { createErrorHandler, HttpError } from "./errors.ts";

export interface AppDependencies {
  holder: RegistryHolder;
  store: Store;
  log: Logger;
  now?: () => number;
  /** The MCP endpoints, and the URL the gateway listens on (for Host checks and default links). */
  mcp?: { front: McpFront; listenUrl: string; tokens?: TokenChecker };
  /** The authorization server's routes (discovery, sign-in, tokens, clients). */
  oauth?: OAuthRouteDependencies;
  /** Served at `/metrics` to loopback, or to anyone with `gateway.metrics_token`. */
  metrics?: Metrics;
}

/**
 * The paths browser-based clients call with fetch, and their methods (`/x/*` covers `/x` too). Pages and
 * `/introspect` are not among them: no CORS headers there.
 */
const BROWSER_FETCH_ROUTES: readonly (readonly [path: string, methods: readonly string[]])[] = [
  ["/mcp/*", ["GET", "POST", "DELETE"]],
  ["/.well-known/*", ["GET"]],
  ["/jwks.json", ["GET"]],
  ["/register/*", ["GET", "POST", "PUT", "DELETE"]],
  ["/token", ["POST"]],
  ["/revoke", ["POST"]],
];

/** What the authorization server's route groups use, together. */
export type OAuthRouteDependencies =
  & DiscoveryRouteDependencies
  & RegistrationRouteDependencies
  & BrowserSignInDependencies
  & Omit<SignInRouteDependencies, "browser">
  & TokenRouteDependencies
  & {
    /** Users' connections to third-party services (consent links). */
    connections?: ConnectionRouteDependencies["connections"];
    /** The status page's data, for `/status` and `/status.json`. */
    status?: StatusRouteDependencies["report"];
  };

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

  // One line per request, on the hot path: flat primitive fields under fixed names (the logger's cheap
  // case), and the line goes to a buffer, not to a write.
  app.use(async function requestLog(c, next) {
    const started = performance.now();
    await next();
    const path = c.req.path;
    const fields = {
      method: c.req.method,
      path,
      status: c.res.status,
      duration_ms: Math.round((performance.now() - started) * 10) / 10,
    };
    if (path === "/healthz" || path === "/readyz") log.debug("request", fields);
    else log.info("request", fields);
  });

  const allowsOrigin = (origin: string, c: Context<AppEnv>) =>
    isOriginAllowed(origin, c.get("snapshot").registry.gateway, deps.mcp?.listenUrl);
  for (const [path, methods] of BROWSER_FETCH_ROUTES) app.use(path, browserCors({ methods, allowsOrigin }));

  // The one check of `gateway.max_body_size`, for every route (declared or chunked bodies): 413, as a
  // JSON-RPC error on the MCP endpoints and as an OAuth-style error elsewhere.
  app.use(async function limitBody(c, next) {
    // The limit is part of the registry, so it can change on reload.
    const maxSize = c.get("snapshot").registry.gateway.maxBodyBytes;
    const raw = c.req.raw;
    if (!raw.body) return next();
    const declared = raw.headers.get("content-length");
    if (declared !== null && !raw.headers.has("transfer-encoding")) {
      return Number(declared) > maxSize ? tooLarge(c.req.path, maxSize) : next();
    }
    // No declared length (chunked, or none): read the body up to the limit, and hand on a request that
    // holds it. Not `new Request(raw, ...)` (as Hono's bodyLimit does): that reads the served request's
    // signal, and Deno then prints a plain-text warning among the JSON log lines.
    const body = await readAtMost(raw.body, maxSize);
    if (!body) return tooLarge(c.req.path, maxSize);
    c.req.raw = new Request(raw.url, { method: raw.method, headers: raw.headers, body });
    return next();
  });

  mountHealthRoutes(app, { holder, store, now });

  if (deps.oauth) mountOAuthRoutes(app, deps.oauth);
  if (deps.mcp) mountMcpRoutes(app, { ...deps.mcp, metrics: deps.metrics });
  if (deps.metrics) mountMetricsRoute(app, deps.metrics);

  app.notFound(() => new HttpError(404, "not_found", "No such endpoint").toResponse());
  app.onError(createErrorHandler(log));
  return app;
}

/** The answer to a body over `gateway.max_body_size`: a JSON-RPC error on /mcp, an OAuth-style one elsewhere. */
function tooLarge(path: string, maxSize: number): Response {
  const message = `Request body is larger than ${maxSize} bytes`;
  if (path === "/mcp" || path.startsWith("/mcp/")) {
    return jsonRpcErrorResponse(413, JSONRPC.invalidRequest, message);
  }
  throw new HttpError(413, "payload_too_large", message);
}

/** Mounts the authorization server's route groups, in the order they have always matched. */
function mountOAuthRoutes(app: Hono<AppEnv>, oauth: OAuthRouteDependencies): void {
  // RFC 6749 §3.1: no parameter twice on the browser legs either (the forms check their bodies).
  for (const path of ["/authorize", "/login/*", "/connect/*"]) app.use(path, refuseRepeatedQuery);
  const browser = createBrowserSignIn(oauth);
  mountDiscoveryRoutes(app, oauth);
  mountRegistrationRoutes(app, oauth);
  if (oauth.status) mountStatusRoutes(app, { report: oauth.status, browser });
  mountSignInRoutes(app, { ...oauth, browser });
  if (oauth.connections) mountConnectionRoutes(app, { connections: oauth.connections, browser });
  mountTokenRoutes(app, oauth);
}
