/**
 * Product §9, third point: the gateway process's resident memory idle after start, with many open
 * 2025-11-25 sessions (opened with raw `initialize` POSTs; nothing else is sent on them), and after a
 * load of calls has run (the sessions still open).
 */
import { benchRegistry, type GatewayUnderTest, startGatewayProcess } from "../gateway.ts";
import { closeWorkers, connectWorkers, httpWorker, JSON_HEADERS, postInitialize } from "../clients.ts";
import { HTTP_TIMEOUT_MS, sleep } from "../measure.ts";
import { type HttpFixture, residentMemory, spawnProcess, startEchoHttp } from "../processes.ts";
import { megabytes, newSection, type SectionResult } from "../report.ts";
import type { BenchSettings } from "../settings.ts";

const TARGET_IDLE_MB = 80;
/** With the sessions open, and again after the load. */
const TARGET_LOADED_MB = 150;
/** The load run before the last reading: echo calls on `/mcp/echo`, this many workers at once. */
const LOAD_WORKERS = 16;
const MB = 1024 * 1024;

export async function memory(settings: BenchSettings): Promise<SectionResult> {
  const { sessions, openConcurrency, settleMs, idleSettleMs, loadCalls, afterLoadIdleMs } = settings.memory;
  const section = newSection("memory", "Memory: resident set of the gateway process");
  let backend: HttpFixture | undefined;
  let gateway: GatewayUnderTest | undefined;
  try {
    backend = await startEchoHttp(settings.startTimeoutMs);
    gateway = await startGatewayProcess(
      benchRegistry({ echo: { http: { url: backend.url } } }),
      settings.startTimeoutMs,
    );
    const pid = gateway.process!.pid;
    // Past the first start's password work: its worker ends after a second of idleness.
    await sleep(idleSettleMs);
    const idle = await residentMemory(pid);

    const mcpUrl = `${gateway.url}/mcp`;
    const started = performance.now();
    let next = 0;
    let opened = 0;
    await Promise.all(Array.from({ length: openConcurrency }, async () => {
      while (next < sessions) {
        next++;
        await openLegacySession(mcpUrl);
        opened++;
      }
    }));
    const openMs = performance.now() - started;
    await sleep(settleMs);
    const withSessions = await residentMemory(pid);
    const reported = await legacySessionsGauge(gateway.url);

    const workers = await connectWorkers(LOAD_WORKERS, () => httpWorker(`${gateway!.url}/mcp/echo`, "echo"));
    let called = 0;
    try {
      await Promise.all(workers.map(async (worker) => {
        while (called < loadCalls) {
          called++;
          await worker.call();
        }
      }));
    } finally {
      await closeWorkers(workers);
    }
    await sleep(settleMs);
    const rightAfterLoad = await residentMemory(pid);
    // V8 gives back the heap the load grew once the process has been idle a while (its memory reducer,
    // after some 10 to 30 s): the reading that counts is the one once that happened, or at the bound.
    const idleSince = performance.now();
    let afterLoad = rightAfterLoad;
    while (afterLoad.rssBytes >= TARGET_LOADED_MB * MB && performance.now() - idleSince < afterLoadIdleMs) {
      await sleep(1_000);
      afterLoad = await residentMemory(pid);
    }
    const afterLoadIdleS = (performance.now() - idleSince) / 1000;

    const bare = await bareDenoMemory(settleMs, settings.startTimeoutMs);

    const perSessionKb = (withSessions.rssBytes - idle.rssBytes) / 1024 / opened;
    section.tables.push({
      title: "resident memory (VmRSS; peak is VmHWM)",
      columns: ["state", "RSS MB", "peak MB", "sessions open"],
      rows: [
        ["idle after start", megabytes(idle.rssBytes), megabytes(idle.peakBytes), "0"],
        [
          `${opened} legacy sessions`,
          megabytes(withSessions.rssBytes),
          megabytes(withSessions.peakBytes),
          String(reported ?? opened),
        ],
        [
          `right after ${called} calls (${LOAD_WORKERS} at a time)`,
          megabytes(rightAfterLoad.rssBytes),
          megabytes(rightAfterLoad.peakBytes),
          String(opened),
        ],
        [
          `then idle ${afterLoadIdleS.toFixed(0)} s`,
          megabytes(afterLoad.rssBytes),
          megabytes(afterLoad.peakBytes),
          String(opened),
        ],
        ["reference: a Deno process doing nothing", megabytes(bare.rssBytes), megabytes(bare.peakBytes), "-"],
      ],
    });
    section.notes.push(
      `${opened} sessions opened in ${(openMs / 1000).toFixed(2)} s (${openConcurrency} at a time), ` +
        `about ${perSessionKb.toFixed(0)} KB each`,
    );
    Object.assign(section.data, {
      idle_rss_bytes: idle.rssBytes,
      idle_peak_bytes: idle.peakBytes,
      sessions: opened,
      sessions_reported_by_gateway: reported,
      sessions_rss_bytes: withSessions.rssBytes,
      sessions_peak_bytes: withSessions.peakBytes,
      per_session_bytes: (withSessions.rssBytes - idle.rssBytes) / opened,
      load_calls: called,
      right_after_load_rss_bytes: rightAfterLoad.rssBytes,
      after_load_rss_bytes: afterLoad.rssBytes,
      after_load_idle_seconds: afterLoadIdleS,
      after_load_peak_bytes: afterLoad.peakBytes,
      open_ms: openMs,
      bare_deno_rss_bytes: bare.rssBytes,
    });
    section.targets.push(
      {
        name: "memory idle",
        measured: `${megabytes(idle.rssBytes)} MB`,
        target: `< ${TARGET_IDLE_MB} MB`,
        met: idle.rssBytes < TARGET_IDLE_MB * MB,
      },
      {
        name: `memory with ${opened} sessions`,
        measured: `${megabytes(withSessions.rssBytes)} MB`,
        target: `< ${TARGET_LOADED_MB} MB`,
        met: withSessions.rssBytes < TARGET_LOADED_MB * MB,
      },
      {
        name: `memory after ${called} calls, once idle`,
        measured: `${megabytes(afterLoad.rssBytes)} MB after ${afterLoadIdleS.toFixed(0)} s idle ` +
          `(${megabytes(rightAfterLoad.rssBytes)} MB right after)`,
        target: `< ${TARGET_LOADED_MB} MB`,
        met: afterLoad.rssBytes < TARGET_LOADED_MB * MB,
      },
    );
  } finally {
    await gateway?.stop();
    await backend?.process.stop();
  }
  return section;
}

/** The resident memory of `deno` running nothing but a timer, for scale: the runtime's own share. */
async function bareDenoMemory(settleMs: number, timeoutMs: number) {
  const process = spawnProcess("bare deno", Deno.execPath(), [
    "eval",
    "console.log('ready'); setTimeout(() => {}, 60_000);",
  ]);
  try {
    await process.waitForLine((line) => line === "ready", timeoutMs);
    await sleep(settleMs);
    return await residentMemory(process.pid);
  } finally {
    await process.stop();
  }
}

/** initialize, then notifications/initialized: a 2025-11-25 session the gateway keeps open. */
async function openLegacySession(url: string): Promise<string> {
  const { response, body, sessionId } = await postInitialize(url);
  if (response.status !== 200 || !sessionId || !body.includes('"result"')) {
    throw new Error(`Cannot open a session: initialize answered ${response.status}: ${body.slice(0, 200)}`);
  }
  const initialized = await fetch(url, {
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    method: "POST",
    headers: { ...JSON_HEADERS, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  if (initialized.status !== 202) {
    throw new Error(`Cannot open a session: notifications/initialized answered ${initialized.status}`);
  }
  return sessionId;
}

/** The gateway's own count of open 2025-era sessions, from /metrics (served to loopback). */
async function legacySessionsGauge(baseUrl: string): Promise<number | undefined> {
  const text = await (await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) }))
    .text();
  const match = /^gatehouse_sessions\{era="legacy"\} (\d+)/m.exec(text);
  return match ? Number(match[1]) : undefined;
}
