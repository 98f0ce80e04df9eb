// CORS for the endpoints browser-based clients call with fetch (Fetch standard §3.2, the CORS protocol):
// preflights are answered here, and every answer says which page may read it.
import type { Context, Env, MiddlewareHandler } from "hono";
import { cors } from "hono/cors";

/** Request headers an MCP or OAuth browser client sends (MCP 2025-11-25 and 2026-07-28 transports). */
export const CORS_REQUEST_HEADERS: readonly string[] = [
  "authorization",
  "content-type",
  "accept",
  "mcp-session-id",
  "mcp-protocol-version",
  "last-event-id",
  "mcp-method",
  "mcp-name",
];

/** Response headers a browser client must be able to read (the session, the OAuth challenge, back-off). */
export const CORS_EXPOSED_HEADERS: readonly string[] = [
  "mcp-session-id",
  "mcp-protocol-version",
  "www-authenticate",
  "retry-after",
];

/** Short, so that a reload changing `allowed_origins` reaches browsers soon. */
export const PREFLIGHT_MAX_AGE_SECONDS = 600;

export interface BrowserCorsOptions<E extends Env> {
  /** The methods the path answers. */
  readonly methods: readonly string[];
  /** Whether a page of `origin` may read the answer (and send the request a preflight asks about). */
  readonly allowsOrigin: (origin: string, c: Context<E>) => boolean;
}

/**
 * Answers CORS preflights without going further (no token needed, nothing else runs) and puts
 * Allow-Origin and Expose-Headers on every other answer, errors included. The Origin is echoed when
 * allowed; credentials never are, since nothing behind these paths uses cookies.
 */
export function browserCors<E extends Env>(options: BrowserCorsOptions<E>): MiddlewareHandler<E> {
  if (options.methods.length === 0) throw new TypeError("Cannot set up CORS: no methods given");
  const { allowsOrigin } = options;
  const handleCors = cors({
    origin: (origin, c) => origin !== "" && allowsOrigin(origin, c as Context<E>) ? origin : null,
    allowMethods: [...options.methods],
    allowHeaders: [...CORS_REQUEST_HEADERS],
    exposeHeaders: [...CORS_EXPOSED_HEADERS],
    maxAge: PREFLIGHT_MAX_AGE_SECONDS,
  });
  return function browserCors(c, next) {
    // Fetch standard §3.2.2: a preflight is an OPTIONS with Access-Control-Request-Method; any other
    // OPTIONS is an ordinary request for the route to answer.
    if (c.req.method === "OPTIONS" && c.req.header("access-control-request-method") === undefined) {
      return next();
    }
    return handleCors(c, next);
  };
}
