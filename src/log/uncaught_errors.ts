/**
 * The end of a process on an uncaught error: log it, let every buffered log line out, then exit with
 * the runtime's code for it (1), with its report and stack on stderr as the runtime would print them.
 */
import { drainLogs } from "./buffered_stdout.ts";
import type { Logger } from "./logger.ts";

/** Deno's exit code for an uncaught error, kept so that supervisors see what they saw before. */
export const UNCAUGHT_ERROR_EXIT_CODE = 1;

const encoder = new TextEncoder();

/**
 * Catches uncaught errors and unhandled rejections: logs one, then exits once the log buffer is written
 * (the runtime's own exit would cut off the write in flight). Returns a function that removes the
 * handlers. `exit` is `Deno.exit`; `drain` waits for the log buffer.
 */
export function exitOnUncaughtErrors(
  log: Logger,
  options: { exit: (code: number) => void; drain?: () => Promise<void> },
): () => void {
  const drain = options.drain ?? drainLogs;
  let exiting = false;
  const handle = (event: Event, error: unknown) => {
    event.preventDefault();
    log.error("uncaught error; exiting", { error });
    reportToStderr(event.type === "unhandledrejection" ? "Uncaught (in promise)" : "Uncaught", error);
    if (exiting) return;
    exiting = true;
    drain().finally(() => options.exit(UNCAUGHT_ERROR_EXIT_CODE));
  };
  const onError = (event: ErrorEvent) => handle(event, event.error);
  const onRejection = (event: PromiseRejectionEvent) => handle(event, event.reason);
  globalThis.addEventListener("error", onError);
  globalThis.addEventListener("unhandledrejection", onRejection);
  return () => {
    globalThis.removeEventListener("error", onError);
    globalThis.removeEventListener("unhandledrejection", onRejection);
  };
}

/** The runtime's report (`error: Uncaught Error: ...` and the stack), which the JSON line leaves out. */
function reportToStderr(what: string, error: unknown): void {
  try {
    const detail = error instanceof Error ? error.stack ?? `${error.name}: ${error.message}` : String(error);
    let bytes = encoder.encode(`error: ${what} ${detail}\n`);
    while (bytes.length > 0) bytes = bytes.subarray(Deno.stderr.writeSync(bytes));
  } catch {
    // stderr is gone, or the error cannot be printed: the JSON line is the record.
  }
}
