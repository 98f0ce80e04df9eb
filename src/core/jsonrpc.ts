/** JSON-RPC error codes the gateway answers with (JSON-RPC 2.0 §5.1 and MCP). */
export const JSONRPC = Object.freeze({
  parseError: -32700,
  invalidRequest: -32600,
  methodNotFound: -32601,
  invalidParams: -32602,
  internalError: -32603,
  /** Implementation-defined server errors start here; each code below has one meaning. */
  /** The HTTP request cannot carry MCP as sent (method not allowed, a 2025-era request without a session). */
  transportRefused: -32000,
  backendUnavailable: -32001,
  /** Not -32002: the SDK sends that (the old "resource not found") as -32602, Invalid params. */
  backendTimeout: -32004,
  routingRefused: -32003,
  /** A third-party service must be connected first; `data.auth_url` is the consent link. */
  consentRequired: -32005,
  /** The access policies do not let the caller use this (the message names no rule). */
  accessDenied: -32006,
  /** A rate limit was reached; `data.retryAfter` says in how many seconds to retry. */
  rateLimited: -32007,
  /** The gateway is stopping and the call was still running at `gateway.shutdown_timeout`. */
  shuttingDown: -32008,
  /** HTTP 404: the `Mcp-Session-Id` names no open session (it ended, was evicted, or never existed). */
  sessionNotFound: -32009,
  /** HTTP 401: `/mcp` needs a valid access token. */
  authenticationRequired: -32010,
  /** HTTP 404: `/mcp/{backend}` names a backend that does not exist or that the caller may not use. */
  unknownBackend: -32011,
  /** MCP 2026-07-28: the request needs a client capability the client did not declare. */
  missingClientCapability: -32021,
  /** MCP: the client must open a URL first (2025-11-25 URL elicitation). */
  urlElicitationRequired: -32042,
});

/** The message of a call answered because the gateway stops. */
export const SHUTTING_DOWN = "Gatehouse is shutting down; retry the call in a moment";

/** An HTTP answer carrying one JSON-RPC error that belongs to no request (`id: null` unless given). */
export function jsonRpcErrorResponse(
  status: number,
  code: number,
  message: string,
  options: { id?: string | number | null; headers?: HeadersInit } = {},
): Response {
  return Response.json(
    { jsonrpc: "2.0", id: options.id ?? null, error: { code, message } },
    { status, headers: options.headers },
  );
}

/** An error that reaches the client as a JSON-RPC error object; its message is meant for the client. */
export class JsonRpcError extends Error {
  readonly code: number;
  readonly data: unknown;

  constructor(code: number, message: string, data?: unknown) {
    super(message);
    this.name = "JsonRpcError";
    this.code = code;
    this.data = data;
  }
}
