// Turns what a failed backend call threw into the JSON-RPC error its client gets, telling the connection
// whether the backend timed out or could not be reached.
import type { BackendSettings } from "../../config/types.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import type { Logger } from "../../log/logger.ts";
import { ConsentRequiredError } from "../../services/consent_required.ts";

/** The failed call, and whom to tell what its failure says of the backend. */
export interface FailedCall {
  readonly backend: BackendSettings;
  readonly method: string;
  /** The caller's signal: a call it aborted says nothing of the backend. */
  readonly signal: AbortSignal | undefined;
  /** Where a timeout is logged (at warn: the backend is slower than its bound, an operator's matter). */
  readonly log: Logger;
  /** The backend did not answer within its call timeout. */
  onTimeout(): void;
  /** The backend cannot be reached; `message` says why. */
  onUnreachable(message: string): void;
}

/** The error to answer a failed call with: the backend's own JSON-RPC error, or one of ours. */
export function translateCallError(error: unknown, call: FailedCall): Error {
  if (error instanceof JsonRpcError) return error;
  // The user's token refused by a backend with its own OAuth (transports.ts): their consent link to answer
  // with, which says nothing of the backend.
  if (error instanceof ConsentRequiredError) return error;
  if (
    error && typeof error === "object" && "code" in error && typeof error.code === "number" &&
    error.code < 0
  ) {
    const protocolError = error as { code: number; message?: string; data?: unknown };
    return new JsonRpcError(
      protocolError.code,
      String(protocolError.message ?? "Backend error"),
      protocolError.data,
    );
  }
  const { backend, method } = call;
  const message = error instanceof Error ? error.message : String(error);
  if (/timed? ?out/i.test(message)) {
    call.log.warn("backend call timed out", {
      backend: backend.name,
      method,
      timeout_seconds: backend.callTimeoutSeconds,
    });
    call.onTimeout();
    return new JsonRpcError(
      JSONRPC.backendTimeout,
      `Backend "${backend.name}" did not answer ${method} within ${backend.callTimeoutSeconds} s`,
    );
  }
  // The caller giving up says nothing of the backend; anything else means it cannot be reached.
  if (!call.signal?.aborted) call.onUnreachable(message);
  return new JsonRpcError(JSONRPC.backendUnavailable, `Backend "${backend.name}" failed: ${message}`);
}

/** What a failed health check says of the backend: nothing when it was a user's refused token. */
export function healthCheckFailure(error: unknown): string | undefined {
  if (error instanceof ConsentRequiredError) return undefined;
  return `health check failed: ${error instanceof Error ? error.message : String(error)}`;
}
