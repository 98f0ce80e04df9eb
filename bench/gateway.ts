/**
 * Gatehouse as the benchmarks run it: `main.ts serve` in its own process with the permission flags of
 * `deno task start` (so the load generator's CPU is not charged to it), or in this process for
 * comparison. Both use `gateway.auth: none` on 127.0.0.1, a free port and a temporary registry.
 */
import { join } from "node:path";
import { startGateway } from "../src/gateway.ts";
import { createLogger } from "../src/log/logger.ts";
import { HTTP_TIMEOUT_MS, pollUntil } from "./measure.ts";
import { ROOT, type RunningProcess, spawnProcess, startTaskFlags } from "./processes.ts";

/** Everyone may use every backend (with nothing allowed nothing would be listed). */
const ALLOW_EVERYONE = { id: "bench-allow-everyone", effect: "allow", subjects: ["*"], backends: ["*"] };

/**
 * A registry serving `backends` without sign-in, with no rate limits. Every request is the one user
 * "anonymous": its session cap is raised so that the memory benchmark's sessions all stay open.
 */
export function benchRegistry(backends: Record<string, Record<string, unknown>>): Record<string, unknown> {
  return {
    gateway: { auth: "none", listen: "127.0.0.1:0", shutdown_timeout: "1s", max_sessions_per_user: 1000 },
    backends,
    policies: [ALLOW_EVERYONE],
  };
}

export interface ReadyState {
  readonly status: number;
  readonly generation: number;
}

/** `GET /readyz`: its status and the registry generation it reports. */
export async function readyz(baseUrl: string): Promise<ReadyState> {
  const response = await fetch(`${baseUrl}/readyz`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
  const body = await response.json() as { registry?: { generation?: number } };
  return { status: response.status, generation: body.registry?.generation ?? Number.NaN };
}

export interface GatewayUnderTest {
  /** `http://127.0.0.1:PORT` */
  readonly url: string;
  /** Set when the gateway runs as its own process. */
  readonly process?: RunningProcess;
  /** Replaces registry.yaml the way an editor does (write a new file, rename it over the old one). */
  writeRegistry(registry: Record<string, unknown>): Promise<void>;
  stop(): Promise<void>;
}

/** The temporary directories not yet removed, so an interrupted run can still remove them. */
const tempDirs = new Set<string>();

export async function removeTempDirs(): Promise<void> {
  await Promise.all([...tempDirs].map((dir) => removeTempDir(dir)));
}

/** Removes a directory made by `prepareGatewayDir()`. */
export async function removeTempDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
  tempDirs.delete(dir);
}

/** A temporary directory holding registry.yaml (JSON is YAML) and a data directory. */
export async function prepareGatewayDir(
  registry: Record<string, unknown>,
): Promise<{ dir: string; registryPath: string; dataDir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-bench-" });
  tempDirs.add(dir);
  const registryPath = join(dir, "registry.yaml");
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir, { mode: 0o700 });
  await Deno.writeTextFile(registryPath, JSON.stringify(registry, null, 2));
  return { dir, registryPath, dataDir };
}

async function replaceFile(path: string, text: string): Promise<void> {
  const next = `${path}.next`;
  await Deno.writeTextFile(next, text);
  await Deno.rename(next, path);
}

/** Spawns `main.ts serve` with `flags` on a prepared directory, without waiting for it. */
export function spawnGateway(
  flags: readonly string[],
  registryPath: string,
  dataDir: string,
): RunningProcess {
  return spawnProcess("gatehouse", Deno.execPath(), [
    "run",
    ...flags,
    `${ROOT}main.ts`,
    "serve",
    "--registry",
    registryPath,
    "--listen",
    "127.0.0.1:0",
    "--data",
    dataDir,
  ]);
}

/** The URL the gateway logs once it listens. */
export async function listeningUrl(process: RunningProcess, timeoutMs: number): Promise<string> {
  const line = await process.waitForLine((line) => line.includes('"gatehouse listening"'), timeoutMs);
  return JSON.parse(line).url;
}

/** Starts Gatehouse as its own process and waits until `/readyz` answers 200. */
export async function startGatewayProcess(
  registry: Record<string, unknown>,
  timeoutMs: number,
): Promise<GatewayUnderTest> {
  const { dir, registryPath, dataDir } = await prepareGatewayDir(registry);
  let process: RunningProcess | undefined;
  const stop = async () => {
    try {
      await process?.stop();
    } finally {
      await removeTempDir(dir);
    }
  };
  try {
    process = spawnGateway(await startTaskFlags(), registryPath, dataDir);
    const url = await listeningUrl(process, timeoutMs);
    await pollUntil(async () => (await readyz(url)).status === 200 || undefined, {
      intervalMs: 5,
      timeoutMs,
      what: "gatehouse /readyz 200",
    });
    return {
      url,
      process,
      writeRegistry: (next) => replaceFile(registryPath, JSON.stringify(next, null, 2)),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** Starts Gatehouse in this process; its log lines are formatted as usual and then dropped. */
export async function startGatewayInProcess(registry: Record<string, unknown>): Promise<GatewayUnderTest> {
  const { dir, registryPath, dataDir } = await prepareGatewayDir(registry);
  try {
    const gateway = await startGateway({
      registryPath,
      dataDir,
      listen: "127.0.0.1:0",
      log: createLogger({ level: "info", write: () => {} }),
    });
    return {
      url: gateway.url,
      writeRegistry: (next) => replaceFile(registryPath, JSON.stringify(next, null, 2)),
      async stop() {
        try {
          await gateway.shutdown();
        } finally {
          await removeTempDir(dir);
        }
      },
    };
  } catch (error) {
    await removeTempDir(dir);
    throw error;
  }
}
