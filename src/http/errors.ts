/**
 * HTTP errors: `HttpError`, the 503 of an unwritable store, and the handler that answers everything else with a 500 that leaks nothing.
 */
import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../log/logger.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { type UnwritableReason, unwritableReason } from "../store/write_health.ts";

/** Seconds a client is told to wait when the store cannot be written (RFC 9110 §10.2.3 Retry-After). */
export const STORE_UNWRITABLE_RETRY_AFTER_SECONDS = 30;

/**
 * The answer to a request whose write the store refused (disk full, read-only): 503 with RFC 6749's
 * `temporarily_unavailable` (§4.1.2.1, §5.2 shape), which every JSON endpoint shares; no internals.
 */
export function storeUnwritableResponse(reason?: UnwritableReason): Response {
  return Response.json({
    error: "temporarily_unavailable",
    error_description: reason === "unreachable"
      ? "The gateway cannot use its store right now (the database cannot be reached); try again later"
      : "The gateway cannot save data right now (its store cannot be written); try again later",
  }, {
    status: 503,
    headers: { "cache-control": "no-store", "retry-after": String(STORE_UNWRITABLE_RETRY_AFTER_SECONDS) },
  });
}

/** An HTTP error that carries its own JSON response; its message is meant for the client. */
export class HttpError extends Error {
  readonly status: number;
  readonly code: string;
  readonly headers: Record<string, string>;

  constructor(status: number, code: string, message: string, headers: Record<string, string> = {}) {
    super(message);
    this.name = "HttpError";
    this.status = status;
    this.code = code;
    this.headers = headers;
  }

  toResponse(): Response {
    return Response.json({ error: this.code, error_description: this.message }, {
      status: this.status,
      headers: { "cache-control": "no-store", ...this.headers },
    });
  }
}

/**
 * Maps any thrown error to a response; a 500 never shows the client its message or stack. A store that
 * cannot be written is a 503, logged by the store once per burst rather than here once per request.
 */
export function createErrorHandler(log: Logger) {
  return function onError(error: Error, c: Context): Response {
    if (error instanceof HttpError || error instanceof OAuthError) return error.toResponse();
    const unwritable = unwritableReason(error);
    if (unwritable !== undefined) {
      log.debug("request refused: the store cannot be written", {
        method: c.req.method,
        path: c.req.path,
        reason: unwritable,
      });
      return storeUnwritableResponse(unwritable);
    }
    if (error instanceof HTTPException) {
      const status = error.status;
      return Response.json({
        error: status === 413 ? "payload_too_large" : "bad_request",
        error_description: error.message || "Bad request",
      }, {
        status,
      });
    }
    log.error("request failed", { method: c.req.method, path: c.req.path, error });
    return Response.json({ error: "server_error", error_description: "Internal error" }, { status: 500 });
  };
}
