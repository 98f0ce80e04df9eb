/**
 * The processes a benchmark starts: the gateway, the echo backend, the npm bridges. Each is watched line
 * by line, drained so it never blocks on a full pipe, and stopped with everything it started (Linux:
 * its descendants are found in /proc).
 */
import { fileURLToPath } from "node:url";
import { pollUntil, sleep, within } from "./measure.ts";

export const ROOT = fileURLToPath(new URL("../", import.meta.url));
export const CONFIG = `${ROOT}deno.json`;
export const ECHO_SERVER = `${ROOT}bench/fixtures/echo_server.ts`;
export const RELAY = `${ROOT}bench/fixtures/relay.ts`;

/** How many characters of a process's output are kept for error messages. */
const KEPT_OUTPUT_CHARS = 8_000;

export interface RunningProcess {
  readonly pid: number;
  readonly name: string;
  /** Resolves with the first stdout line matching `predicate`; rejects on exit or after `timeoutMs`. */
  waitForLine(predicate: (line: string) => boolean, timeoutMs: number): Promise<string>;
  /** The last few thousand characters of stdout and stderr. */
  recentOutput(): string;
  /** True once the process has exited. */
  exited(): boolean;
  /** SIGTERM to the process and its descendants, SIGKILL to what is left after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/** Every process started and not yet stopped, so an interrupted run can still stop them. */
const live = new Set<RunningProcess>();

/** Stops every process still running (on SIGINT or SIGTERM of the benchmark). */
export async function stopAllProcesses(): Promise<void> {
  await Promise.all([...live].map((process) => process.stop(1_000)));
}

/** Starts `command` with stdin closed and its output piped to us. */
export function spawnProcess(
  name: string,
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): RunningProcess {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: options.cwd ?? ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let recent = "";
  const keep = (text: string) => {
    recent = (recent + text).slice(-KEPT_OUTPUT_CHARS);
  };
  const waiters = new Set<{ predicate: (line: string) => boolean; resolve: (line: string) => void }>();
  const lines: string[] = [];
  let hasExited = false;
  const status = child.status.then((result) => {
    hasExited = true;
    return result;
  });
  const stdoutDone = (async () => {
    const decoder = new TextDecoder();
    let buffered = "";
    for await (const chunk of child.stdout) {
      const text = decoder.decode(chunk, { stream: true });
      keep(text);
      if (waiters.size === 0 && lines.length >= 50) continue; // only the first lines are ever awaited
      buffered += text;
      let newline: number;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline);
        buffered = buffered.slice(newline + 1);
        if (lines.length < 50) lines.push(line);
        for (const waiter of waiters) {
          if (waiter.predicate(line)) {
            waiters.delete(waiter);
            waiter.resolve(line);
          }
        }
      }
    }
  })().catch(() => {});
  const stderrDone = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) keep(decoder.decode(chunk, { stream: true }));
  })().catch(() => {});

  let stopping: Promise<void> | undefined;
  const running: RunningProcess = {
    pid: child.pid,
    name,
    waitForLine(predicate, timeoutMs) {
      const seen = lines.find(predicate);
      if (seen !== undefined) return Promise.resolve(seen);
      const { promise, resolve } = Promise.withResolvers<string>();
      const waiter = { predicate, resolve };
      waiters.add(waiter);
      const exit = status.then((result) => {
        throw new Error(`${name} exited with code ${result.code}`);
      });
      return within(timeoutMs, Promise.race([promise, exit]), `${name} start`).finally(() => {
        waiters.delete(waiter);
      }).catch((error) => {
        throw new Error(`${error.message}; its output ends with:\n${recent.trim().slice(-2_000)}`);
      });
    },
    recentOutput: () => recent,
    exited: () => hasExited,
    stop(graceMs = 3_000) {
      stopping ??= (async () => {
        const tree = [...descendantsOf(child.pid), child.pid];
        signalAll(tree, "SIGTERM");
        const ended = await Promise.race([status.then(() => true), sleep(graceMs).then(() => false)]);
        // Whatever is still alive of the tree (the process itself, or a grandchild a bridge left) is killed.
        if (!ended) signalAll([child.pid], "SIGKILL");
        signalAll(tree.filter((pid) => pid !== child.pid && isAlive(pid)), "SIGKILL");
        await status;
        // A grandchild that outlives the process may hold the pipes open: do not wait for it forever.
        await Promise.race([Promise.all([stdoutDone, stderrDone]), sleep(graceMs)]);
        live.delete(running);
      })();
      return stopping;
    },
  };
  live.add(running);
  return running;
}

function signalAll(pids: readonly number[], signal: Deno.Signal): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, signal);
    } catch {
      // Already gone.
    }
  }
}

function isAlive(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return !/\) Z /.test(stat);
  } catch {
    return false;
  }
}

/**
 * Every process below `pid` in the process tree, deepest first (Linux /proc; Deno lets only a program
 * run with `--allow-all` read another process's /proc entries).
 */
export function descendantsOf(pid: number): number[] {
  const children = new Map<number, number[]>();
  try {
    for (const entry of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(entry.name)) continue;
      try {
        const stat = Deno.readTextFileSync(`/proc/${entry.name}/stat`);
        // The command name may hold spaces and parentheses: the fields after the last ")" are fixed.
        const parent = Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
        const list = children.get(parent) ?? [];
        list.push(Number(entry.name));
        children.set(parent, list);
      } catch {
        // The process ended while the list was read.
      }
    }
  } catch {
    return [];
  }
  const found: number[] = [];
  const visit = (parent: number) => {
    for (const child of children.get(parent) ?? []) {
      visit(child);
      found.push(child);
    }
  };
  visit(pid);
  return found;
}

/** The first process below `pid` whose command line (words joined by spaces) matches `pattern`. */
export function findDescendant(pid: number, pattern: RegExp): number | undefined {
  return descendantsOf(pid).find((candidate) => {
    try {
      return pattern.test(Deno.readTextFileSync(`/proc/${candidate}/cmdline`).replaceAll("\0", " "));
    } catch {
      return false;
    }
  });
}

/** Resident memory of a process in bytes (VmRSS of /proc/PID/status), and its peak (VmHWM). */
export async function residentMemory(pid: number): Promise<{ rssBytes: number; peakBytes: number }> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const field = (name: string) => {
    const match = new RegExp(`^${name}:\\s+(\\d+) kB`, "m").exec(status);
    if (!match) throw new Error(`Cannot read ${name} of process ${pid}`);
    return Number(match[1]) * 1024;
  };
  return { rssBytes: field("VmRSS"), peakBytes: field("VmHWM") };
}

/** A free TCP port on 127.0.0.1, for the bridges that cannot be told to pick one. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Resolves once something accepts TCP connections on 127.0.0.1:`port`. */
export async function waitForPort(port: number, process: RunningProcess, timeoutMs: number): Promise<void> {
  await pollUntil(async () => {
    if (process.exited()) throw new Error("exited");
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    connection.close();
    return true;
  }, { intervalMs: 50, timeoutMs, what: `${process.name} listening on port ${port}` }).catch((error) => {
    throw new Error(
      process.exited()
        ? `${process.name} exited: ${process.recentOutput().trim().slice(-1_000)}`
        : `${error.message}: ${process.recentOutput().trim().slice(-1_000)}`,
    );
  });
}

/** The permission and V8 flags of `deno task start`, which a compiled binary shares. */
export async function startTaskFlags(): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(CONFIG));
  const start: string = config.tasks.start;
  return start.split(/\s+/).filter((word) => word.startsWith("--allow-") || word.startsWith("--v8-flags="));
}

/** The command line that runs the echo fixture over stdio. */
export function echoStdioCommand(): { command: string; args: string[] } {
  return { command: Deno.execPath(), args: ["run", "-A", `--config=${CONFIG}`, ECHO_SERVER, "stdio"] };
}

export interface HttpFixture {
  readonly url: string;
  readonly process: RunningProcess;
}

/** Starts the echo fixture over Streamable HTTP on a free port. */
export async function startEchoHttp(timeoutMs: number): Promise<HttpFixture> {
  return await startHttpFixture("echo backend", [ECHO_SERVER, "http"], timeoutMs);
}

/**
 * Starts the minimal relay (bench/fixtures/relay.ts) in front of `backendUrl`; with `verify`, it checks
 * each request's access token against the gateway's keys first.
 */
export async function startRelay(
  backendUrl: string,
  timeoutMs: number,
  verify?: { readonly jwks: string; readonly issuer: string; readonly audience: string },
): Promise<HttpFixture> {
  const flags = verify
    ? ["--jwks", verify.jwks, "--issuer", verify.issuer, "--audience", verify.audience]
    : [];
  return await startHttpFixture(
    verify ? "verifying relay" : "relay",
    [RELAY, backendUrl, ...flags],
    timeoutMs,
  );
}

/** Runs a fixture that prints {"url": "..."} once it listens, and waits for that line. */
async function startHttpFixture(name: string, args: readonly string[], timeoutMs: number) {
  const process = spawnProcess(name, Deno.execPath(), ["run", "-A", `--config=${CONFIG}`, ...args]);
  try {
    const line = await process.waitForLine(
      (line) => line.startsWith("{") && line.includes('"url"'),
      timeoutMs,
    );
    return { url: JSON.parse(line).url as string, process };
  } catch (error) {
    await process.stop();
    throw error;
  }
}

/** How many file descriptors a process has open (entries of /proc/PID/fd). */
export function openFileCount(pid: number): number {
  let count = 0;
  for (const _entry of Deno.readDirSync(`/proc/${pid}/fd`)) count++;
  return count;
}
