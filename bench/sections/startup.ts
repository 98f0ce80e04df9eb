/**
 * Product §9, third point: how long from spawning `main.ts serve` until `/readyz` answers 200. The first
 * start makes a new data directory (store, signing key); the others restart on it, as a service does.
 */
import {
  benchRegistry,
  listeningUrl,
  prepareGatewayDir,
  readyz,
  removeTempDir,
  spawnGateway,
} from "../gateway.ts";
import { median, pollUntil } from "../measure.ts";
import { type RunningProcess, startTaskFlags } from "../processes.ts";
import { ms, newSection, type SectionResult } from "../report.ts";
import type { BenchSettings } from "../settings.ts";

const TARGET_READY_MS = 300;
const POLL_INTERVAL_MS = 2;

export async function startup(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("startup", "Start-up: from spawn to /readyz 200");
  // A backend that is never called: backends start lazily, so it must not slow the start.
  const { dir, registryPath, dataDir } = await prepareGatewayDir(
    benchRegistry({ echo: { http: { url: "http://127.0.0.1:9/mcp" } } }),
  );
  try {
    const flags = await startTaskFlags();
    const readyMs: number[] = [];
    for (let run = 0; run < settings.startupRuns; run++) {
      readyMs.push(await timeToReady(flags, registryPath, dataDir, settings.startTimeoutMs));
    }
    const [first, ...restarts] = readyMs;
    const restartMedian = restarts.length > 0 ? median(restarts) : Number.NaN;
    section.tables.push({
      title: "time to ready",
      columns: ["start", "runs", "median ms", "min ms", "max ms"],
      rows: [
        ["first (new data directory)", "1", ms(first!), ms(first!), ms(first!)],
        [
          "restart (existing data directory)",
          String(restarts.length),
          ms(restartMedian),
          ms(Math.min(...restarts)),
          ms(Math.max(...restarts)),
        ],
      ],
    });
    section.notes.push(
      "measured from spawning `deno run <start flags> main.ts serve` (the flags of `deno task start`), so " +
        "it includes starting Deno and loading the modules, which a compiled binary does as well.",
    );
    Object.assign(section.data, {
      first_start_ms: first,
      restart_ms: restarts,
      restart_median_ms: restartMedian,
    });
    const worst = Math.max(first!, Number.isFinite(restartMedian) ? restartMedian : 0);
    section.targets.push({
      name: "start-up to ready (first start; median restart)",
      measured: `${ms(first!)} ms; ${ms(restartMedian)} ms`,
      target: `≤ ${TARGET_READY_MS} ms`,
      met: worst <= TARGET_READY_MS,
    });
  } finally {
    await removeTempDir(dir);
  }
  return section;
}

async function timeToReady(
  flags: readonly string[],
  registryPath: string,
  dataDir: string,
  timeoutMs: number,
): Promise<number> {
  let process: RunningProcess | undefined;
  try {
    const spawnedAt = performance.now();
    process = spawnGateway(flags, registryPath, dataDir);
    const url = await listeningUrl(process, timeoutMs);
    await pollUntil(async () => (await readyz(url)).status === 200 || undefined, {
      intervalMs: POLL_INTERVAL_MS,
      timeoutMs,
      what: "gatehouse /readyz 200",
    });
    return performance.now() - spawnedAt;
  } finally {
    await process?.stop();
  }
}
