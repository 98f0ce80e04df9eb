/** `gatehouse serve`: starts the gateway, reloads on SIGHUP, and drains on SIGINT and SIGTERM. */
import { drainLogs } from "../log/buffered_stdout.ts";
import { createLogger, levelFromEnv, type Logger } from "../log/logger.ts";
import { exitOnUncaughtErrors } from "../log/uncaught_errors.ts";
import { type RunningGateway, startGateway } from "../gateway.ts";
import { type Command, parseCommandArgs } from "./args.ts";

/**
 * Routes console output (the runtime's own warnings, and libraries') into the log as JSON lines, so that
 * every line on stdout and stderr parses as JSON; returns a function that restores the console.
 */
function logConsoleOutput(log: Logger): () => void {
  const saved = { ...console };
  const toLog = (level: "debug" | "info" | "warn" | "error") => (...args: unknown[]) =>
    log[level]("console output", {
      text: args.map((arg) => typeof arg === "string" ? arg : Deno.inspect(arg)).join(" "),
    });
  Object.assign(console, {
    debug: toLog("debug"),
    log: toLog("info"),
    info: toLog("info"),
    warn: toLog("warn"),
    error: toLog("error"),
  });
  return () => Object.assign(console, saved);
}

export const serveCommand: Command = {
  help: `Usage: gatehouse serve [--registry PATH] [--listen HOST:PORT] [--data DIR]

Serves the registry until SIGINT or SIGTERM, then drains in-flight requests and stops.
registry.yaml and the policies directory are watched and reloaded on change; SIGHUP reloads too.
Logs are JSON lines on stdout (level from GATEHOUSE_LOG_LEVEL: debug, info, warn, error).

Options:
  --registry PATH     the registry file (default: ./registry.yaml)
  --listen HOST:PORT  overrides gateway.listen (port 0 picks a free port)
  --data DIR          overrides gateway.data_dir
  -h, --help          show this help`,
  async run(args) {
    const { values } = parseCommandArgs(args, {
      registry: { type: "string" },
      listen: { type: "string" },
      data: { type: "string" },
    });
    // Log lines are buffered and written off the request path; every exit below lets them all out first.
    const log = createLogger({ level: levelFromEnv(Deno.env.get("GATEHOUSE_LOG_LEVEL")) });
    const stopCatchingErrors = exitOnUncaughtErrors(log, { exit: Deno.exit });
    const restoreConsole = logConsoleOutput(log);
    // Signal handlers go in before the gateway starts, so an early SIGHUP cannot kill it.
    const stopRequested = Promise.withResolvers<void>();
    let gateway: RunningGateway | undefined;
    const stop = () => stopRequested.resolve();
    const reload = () => {
      log.info("SIGHUP: reloading the registry");
      gateway?.watcher?.reload().catch((error) => log.error("registry reload failed", { error }));
    };
    Deno.addSignalListener("SIGINT", stop);
    Deno.addSignalListener("SIGTERM", stop);
    Deno.addSignalListener("SIGHUP", reload);
    try {
      gateway = await startGateway({
        registryPath: values.registry ?? "registry.yaml",
        listen: values.listen,
        dataDir: values.data,
        log,
      });
      await stopRequested.promise;
      await gateway.shutdown();
    } finally {
      Deno.removeSignalListener("SIGINT", stop);
      Deno.removeSignalListener("SIGTERM", stop);
      Deno.removeSignalListener("SIGHUP", reload);
      stopCatchingErrors();
      restoreConsole();
      await drainLogs();
    }
    return 0;
  },
};
