import type { Context } from "hono";
import { HTTPException } from "hono/http-exception";
import type { Logger } from "../log/logger.ts";
import { OAuthError } from "../oauth/errors.ts";

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

/** Maps any thrown error to a response; a 500 never shows the client its message or stack. */
export function createErrorHandler(log: Logger) {
  return function onError(error: Error, c: Context): Response {
    if (error instanceof HttpError || error instanceof OAuthError) return error.toResponse();
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
