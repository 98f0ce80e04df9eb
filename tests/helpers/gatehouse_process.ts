import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));

/** The permission and V8 flags of `deno task start`, which `deno task compile` must share. */
export async function startTaskFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`));
  const start: string = config.tasks.start;
  return start.split(/\s+/).filter((word) => word.startsWith("--allow-") || word.startsWith("--v8-flags="));
}

/** A gatehouse process started as `deno task start` starts it, with its stdout collected line by line. */
export interface GatehouseProcess {
  readonly url: string;
  readonly lines: string[];
  readonly child: Deno.ChildProcess;
  /** Resolves with the first log line matching `predicate` (bounded by `timeoutMs`). */
  waitForLine(predicate: (line: string) => boolean, timeoutMs?: number): Promise<string>;
  /** Sends a signal and waits for the exit status. */
  stop(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
  stderr(): string;
}

/**
 * Runs `main.ts` (or the `entry` script, a fixture standing in for it) with the start task's flags and the
 * given arguments, without waiting; with `fileLimit`, under that `ulimit -n`.
 */
export async function spawnGatehouse(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; fileLimit?: number; entry?: string } = {},
) {
  const command = [
    Deno.execPath(),
    "run",
    ...await startTaskFlags(),
    options.entry ?? `${ROOT}main.ts`,
    ...args,
  ];
  const [program, commandArgs] = options.fileLimit === undefined
    ? [command[0]!, command.slice(1)]
    : ["bash", ["-c", `ulimit -n ${options.fileLimit} && exec "$@"`, "bash", ...command]];
  return new Deno.Command(program, {
    args: commandArgs,
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Runs a command to completion and returns its output. */
export async function runGatehouse(
  args: string[],
  options: { cwd?: string; env?: Record<string, string>; stdin?: string } = {},
): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = await spawnGatehouse(args, options);
  const writer = child.stdin.getWriter();
  if (options.stdin !== undefined) await writer.write(new TextEncoder().encode(options.stdin));
  await writer.close();
  const output = await child.output();
  const decoder = new TextDecoder();
  return { code: output.code, stdout: decoder.decode(output.stdout), stderr: decoder.decode(output.stderr) };
}

/** Starts `gatehouse serve` and waits until it listens. */
export async function startGatehouse(
  args: string[],
  options: {
    cwd?: string;
    env?: Record<string, string>;
    timeoutMs?: number;
    fileLimit?: number;
    /** A script to run instead of `main.ts` (taking `serve` and its arguments). */
    entry?: string;
  } = {},
): Promise<GatehouseProcess> {
  const child = await spawnGatehouse(["serve", ...args], options);
  await child.stdin.close();
  const lines: string[] = [];
  const waiters = new Set<{
    predicate: (line: string) => boolean;
    resolve: (line: string) => void;
    reject: (error: Error) => void;
  }>();
  let stderrText = "";
  let stdoutEnded = false;
  const decoder = new TextDecoder();
  const stdoutDone = (async () => {
    let buffered = "";
    for await (const chunk of child.stdout) {
      buffered += decoder.decode(chunk, { stream: true });
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        lines.push(line);
        for (const waiter of waiters) {
          if (waiter.predicate(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
      }
    }
    // The process is gone: no line will come.
    stdoutEnded = true;
    for (const waiter of waiters) {
      waiters.delete(waiter);
      waiter.reject(new Error(`gatehouse exited before the log line; stdout: ${lines.join("\n")}`));
    }
  })();
  const stderrDone = (async () => {
    for await (const chunk of child.stderr) stderrText += decoder.decode(chunk, { stream: true });
  })();

  const waitForLine = (predicate: (line: string) => boolean, timeoutMs = 10_000) => {
    const seen = lines.find(predicate);
    if (seen) return Promise.resolve(seen);
    if (stdoutEnded) return Promise.reject(new Error(`gatehouse exited before the log line`));
    return new Promise<string>((resolve, reject) => {
      const waiter = {
        predicate,
        resolve: (line: string) => {
          clearTimeout(timer);
          resolve(line);
        },
        reject: (error: Error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      const timer = setTimeout(() => {
        waiters.delete(waiter);
        reject(
          new Error(
            `No matching log line within ${timeoutMs} ms; stderr: ${stderrText}; stdout: ${lines.join("\n")}`,
          ),
        );
      }, timeoutMs);
      waiters.add(waiter);
    });
  };

  let status: Promise<Deno.CommandStatus> | undefined;
  const stop = async (signal: Deno.Signal = "SIGTERM") => {
    if (!status) {
      try {
        child.kill(signal);
      } catch {
        // Already exited.
      }
      status = child.status;
    }
    const result = await status;
    await Promise.all([stdoutDone, stderrDone]);
    return result;
  };

  try {
    const listening = await Promise.race([
      waitForLine((line) => line.includes('"gatehouse listening"'), options.timeoutMs ?? 20_000),
      child.status.then((exit) => {
        throw new Error(`gatehouse exited with ${exit.code} before listening: ${stderrText}`);
      }),
    ]);
    return { url: JSON.parse(listening).url, lines, child, waitForLine, stop, stderr: () => stderrText };
  } catch (error) {
    await stop("SIGKILL");
    throw error;
  }
}

/** Polls `check` every 20 ms until it returns true or `timeoutMs` passes. */
export async function eventually(check: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
