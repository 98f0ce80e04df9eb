// What the log tells of a stdio backend process: its stderr (rate limited), the messages it dropped, and
// how it ended when it failed to start.
import type { BackendSettings } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import { stderrRateLimitFor } from "./stderr_rate_limit.ts";
import type { StdioTransport } from "./stdio_transport.ts";

/** Logs a process's stderr (at most 20 lines per 10 s per backend) and the messages it had dropped. */
export function pipeStderr(transport: StdioTransport, backend: BackendSettings, log: Logger): void {
  const backendLog = log.child({ backend: backend.name });
  // Keyed by the gateway's logger: the limit holds across every process of the backend.
  const limit = stderrRateLimitFor(log, backend.name);
  const suppressed = (lines: number) => {
    if (lines > 0) backendLog.info("backend stderr suppressed", { lines });
  };
  transport.onstderr = (line) => {
    const admitted = limit.admit();
    suppressed(admitted.suppressed);
    if (admitted.log) backendLog.info("backend stderr", { line });
  };
  transport.onstderrend = () => suppressed(limit.flush());
  transport.ondropped = ({ bytes, id }) =>
    backendLog.warn("backend message dropped", {
      bytes,
      max_response_size: backend.maxResponseBytes,
      // Without an id of a call in flight, nobody's call could be failed in its place.
      failed_call: id !== undefined,
    });
}

/** Logs a failed start with what the process printed and how it ended; the error to report. */
export function startFailed(
  transport: StdioTransport,
  error: unknown,
  backend: BackendSettings,
  log: Logger,
): unknown {
  const exit = transport.exit;
  log.warn("backend failed to start", {
    backend: backend.name,
    error: error instanceof Error ? error.message : String(error),
    exit_code: exit?.code,
    signal: exit?.signal ?? undefined,
    stderr: transport.recentStderr,
  });
  if (!exit) return error;
  const how = exit.signal ? `signal ${exit.signal}` : `code ${exit.code}`;
  return new Error(`the process exited with ${how} during its handshake`);
}
