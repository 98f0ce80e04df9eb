/**
 * Product §9, third point: a registry reload while clients call in a loop. Each reload rewrites
 * registry.yaml with one more backend; measured is the time from the write until `/readyz` shows the
 * next generation, and until the new backend answers; every failed call during the reloads is counted.
 */
import { closeWorkers, connectWorkers, httpWorker, postInitialize, type Worker } from "../clients.ts";
import { benchRegistry, type GatewayUnderTest, readyz, startGatewayProcess } from "../gateway.ts";
import { HTTP_TIMEOUT_MS, median, percentile, pollUntil, sleep } from "../measure.ts";
import { type HttpFixture, startEchoHttp } from "../processes.ts";
import { ms, newSection, type SectionResult } from "../report.ts";
import type { BenchSettings } from "../settings.ts";

const TARGET_APPLIED_MS = 1_000;
const POLL_INTERVAL_MS = 5;
/** Calls keep going this long after the last reload, to catch late failures. */
const TAIL_MS = 300;

export async function reload(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("reload", "Reload: add a backend while clients call");
  let backend: HttpFixture | undefined;
  let gateway: GatewayUnderTest | undefined;
  let workers: Worker[] = [];
  try {
    backend = await startEchoHttp(settings.startTimeoutMs);
    const backendUrl = backend.url;
    const registryWith = (extra: number) => {
      const backends: Record<string, Record<string, unknown>> = { echo: { http: { url: backendUrl } } };
      for (let i = 1; i <= extra; i++) backends[`echo${i}`] = { http: { url: backendUrl } };
      return benchRegistry(backends);
    };
    gateway = await startGatewayProcess(registryWith(0), settings.startTimeoutMs);
    const gatewayUrl = gateway.url;
    // Half the workers on the backend's own endpoint, half on the aggregate, which is told list_changed.
    const half = Math.ceil(settings.reload.workers / 2);
    workers = await connectWorkers(half, () => httpWorker(`${gatewayUrl}/mcp/echo`, "echo"));
    workers.push(
      ...await connectWorkers(
        settings.reload.workers - half,
        () => httpWorker(`${gatewayUrl}/mcp`, "echo__echo"),
      ),
    );

    let running = true;
    let calls = 0;
    let failures = 0;
    let firstFailure: string | undefined;
    const latenciesMs: number[] = [];
    const loops = workers.map(async (worker) => {
      while (running) {
        const before = performance.now();
        try {
          await worker.call();
          calls++;
          latenciesMs.push(performance.now() - before);
        } catch (error) {
          failures++;
          firstFailure ??= error instanceof Error ? error.message : String(error);
        }
      }
    });

    const appliedMs: number[] = [];
    const servingMs: number[] = [];
    try {
      for (let i = 1; i <= settings.reload.reloads; i++) {
        const { generation } = await readyz(gatewayUrl);
        const written = performance.now();
        await gateway.writeRegistry(registryWith(i));
        await pollUntil(async () => (await readyz(gatewayUrl)).generation > generation || undefined, {
          intervalMs: POLL_INTERVAL_MS,
          timeoutMs: settings.reload.timeoutMs,
          what: `reload ${i} (generation ${generation + 1} on /readyz)`,
        });
        appliedMs.push(performance.now() - written);
        await pollUntil(async () => (await answersInitialize(`${gatewayUrl}/mcp/echo${i}`)) || undefined, {
          intervalMs: POLL_INTERVAL_MS,
          timeoutMs: settings.reload.timeoutMs,
          what: `backend echo${i} answering after reload ${i}`,
        });
        servingMs.push(performance.now() - written);
        await sleep(TAIL_MS);
      }
    } finally {
      running = false;
      await Promise.all(loops);
    }

    const sorted = [...latenciesMs].sort((a, b) => a - b);
    section.tables.push({
      title: `${appliedMs.length} reloads, ${workers.length} clients calling throughout`,
      columns: ["measure", "median ms", "max ms"],
      rows: [
        ["write to next generation on /readyz", ms(median(appliedMs)), ms(Math.max(...appliedMs))],
        ["write to new backend answering", ms(median(servingMs)), ms(Math.max(...servingMs))],
      ],
    });
    section.tables.push({
      title: "calls during the reloads",
      columns: ["calls", "failed", "p50 ms", "p99 ms", "max ms"],
      rows: [[
        String(calls),
        String(failures),
        ms(percentile(sorted, 50)),
        ms(percentile(sorted, 99)),
        ms(sorted.at(-1) ?? Number.NaN),
      ]],
    });
    if (firstFailure) section.notes.push(`first failed call: ${firstFailure}`);
    section.notes.push(
      "the time includes the watcher's quiet period (150 ms after the last file event), which lets " +
        "editors finish writing; the registry is replaced as editors do (a new file renamed over it).",
    );
    Object.assign(section.data, {
      reloads: appliedMs.length,
      applied_ms: appliedMs,
      new_backend_answering_ms: servingMs,
      calls,
      failed_calls: failures,
      call_p50_ms: percentile(sorted, 50),
      call_p99_ms: percentile(sorted, 99),
      call_max_ms: sorted.at(-1) ?? null,
    });
    const worst = Math.max(...servingMs);
    section.targets.push(
      {
        name: "reload applied (worst of the reloads, new backend answering)",
        measured: `${ms(worst)} ms`,
        target: `≤ ${TARGET_APPLIED_MS} ms`,
        met: worst <= TARGET_APPLIED_MS,
      },
      {
        name: "requests dropped during reloads",
        measured: `${failures} of ${calls + failures}`,
        target: "0",
        met: failures === 0 && calls > 0,
      },
    );
  } finally {
    await closeWorkers(workers);
    await gateway?.stop();
    await backend?.process.stop();
  }
  return section;
}

/** Whether an `initialize` on `url` succeeds (the session is closed again right away). */
async function answersInitialize(url: string): Promise<boolean> {
  const { response, body, sessionId } = await postInitialize(url);
  if (sessionId) {
    const closed = await fetch(url, {
      signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
      method: "DELETE",
      headers: { "mcp-session-id": sessionId },
    });
    await closed.body?.cancel();
  }
  return response.status === 200 && body.includes('"result"');
}
