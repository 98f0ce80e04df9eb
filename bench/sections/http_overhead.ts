/**
 * Product §9, first point: what Gatehouse adds to a `tools/call` on a Streamable HTTP backend, at p50 and
 * p99, and how much of the direct throughput it keeps, at each concurrency level.
 */
import { httpWorker } from "../clients.ts";
import {
  benchRegistry,
  type GatewayUnderTest,
  startGatewayInProcess,
  startGatewayProcess,
} from "../gateway.ts";
import type { LoadResult } from "../measure.ts";
import { type EchoHttpBackend, startEchoHttp } from "../processes.ts";
import { ms, newSection, percent, perSecond, type SectionResult, signedMs } from "../report.ts";
import type { BenchSettings } from "../settings.ts";
import { type LoadTarget, resultOf, runSideBySide, type SideBySide } from "../side_by_side.ts";

const DIRECT = "direct";
/** The gateway paths whose overhead the targets apply to (the gateway in its own process). */
const GATEWAY_PATHS = [
  { label: "gatehouse /mcp/{backend}", path: "/mcp/echo", tool: "echo" },
  { label: "gatehouse /mcp", path: "/mcp", tool: "echo__echo" },
] as const;
const IN_PROCESS = "gatehouse /mcp/{backend}, in-process";

const TARGET_ADDED_P50_MS = 1;
const TARGET_ADDED_P99_MS = 3;
const TARGET_THROUGHPUT_RATIO = 0.7;

export async function httpOverhead(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("http_overhead", "HTTP overhead: tools/call on a Streamable HTTP backend");
  let backend: EchoHttpBackend | undefined;
  let gateway: GatewayUnderTest | undefined;
  let inProcess: GatewayUnderTest | undefined;
  try {
    backend = await startEchoHttp(settings.startTimeoutMs);
    const registry = benchRegistry({ echo: { http: { url: backend.url } } });
    gateway = await startGatewayProcess(registry, settings.startTimeoutMs);
    inProcess = await startGatewayInProcess(registry);
    const backendUrl = backend.url;
    const gatewayUrl = gateway.url;
    const inProcessUrl = inProcess.url;
    const targets: LoadTarget[] = [
      { label: DIRECT, connect: () => httpWorker(backendUrl, "echo"), cpuPid: backend.process.pid },
      ...GATEWAY_PATHS.map(({ label, path, tool }) => ({
        label,
        connect: () => httpWorker(`${gatewayUrl}${path}`, tool),
        cpuPid: gateway!.process!.pid,
      })),
      { label: IN_PROCESS, connect: () => httpWorker(`${inProcessUrl}/mcp/echo`, "echo") },
    ];
    const outcomes = await runSideBySide(targets, settings);
    report(section, outcomes, targets.map((target) => target.label), settings);
  } finally {
    await inProcess?.stop();
    await gateway?.stop();
    await backend?.process.stop();
  }
  return section;
}

function report(
  section: SectionResult,
  outcomes: SideBySide,
  labels: readonly string[],
  settings: BenchSettings,
): void {
  const data: Record<string, unknown> = {};
  for (const concurrency of settings.concurrency) {
    const direct = resultOf(outcomes, concurrency, DIRECT);
    const rows: string[][] = [];
    const byLabel: Record<string, unknown> = {};
    for (const label of labels) {
      const outcome = outcomes.get(concurrency)?.get(label);
      if (!outcome || "error" in outcome) {
        rows.push([label, outcome?.error ?? "not run"]);
        byLabel[label] = { error: outcome?.error ?? "not run" };
        continue;
      }
      const result = outcome.result;
      const added = label === DIRECT || !direct ? undefined : addedOver(direct, result);
      rows.push(loadRow(label, result, added));
      byLabel[label] = loadJson(result, added);
    }
    section.tables.push({
      title: `concurrency ${concurrency}`,
      columns: LOAD_COLUMNS,
      rows,
    });
    data[`concurrency_${concurrency}`] = byLabel;
    for (const { label } of GATEWAY_PATHS) {
      const result = resultOf(outcomes, concurrency, label);
      const added = direct && result ? addedOver(direct, result) : undefined;
      const where = `(c=${concurrency}, ${label.replace("gatehouse ", "")})`;
      section.targets.push(
        {
          name: `HTTP overhead p50 ${where}`,
          measured: added ? `${signedMs(added.p50Ms)} ms` : "-",
          target: `≤ ${TARGET_ADDED_P50_MS} ms`,
          met: added ? added.p50Ms <= TARGET_ADDED_P50_MS : null,
        },
        {
          name: `HTTP overhead p99 ${where}`,
          measured: added ? `${signedMs(added.p99Ms)} ms` : "-",
          target: `≤ ${TARGET_ADDED_P99_MS} ms`,
          met: added ? added.p99Ms <= TARGET_ADDED_P99_MS : null,
        },
        {
          name: `HTTP throughput kept ${where}`,
          measured: added ? percent(added.throughputRatio) : "-",
          target: `≥ ${percent(TARGET_THROUGHPUT_RATIO)}`,
          met: added ? added.throughputRatio >= TARGET_THROUGHPUT_RATIO : null,
        },
      );
    }
  }
  Object.assign(section.data, data);
  section.notes.push(
    "each target has its own SDK v2 client per worker (protocol 2025-11-25); the runs alternate between " +
      `the targets ${settings.rounds} time(s) and are pooled. The targets are judged on the gateway in its ` +
      "own process; the in-process row shares this process's CPU with the load generator. CPU ms/call: " +
      "user and system time per call of the backend process (direct) or of the gateway process.",
  );
}

export interface Added {
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly throughputRatio: number;
}

export function addedOver(reference: LoadResult, result: LoadResult): Added {
  return {
    p50Ms: result.p50Ms - reference.p50Ms,
    p99Ms: result.p99Ms - reference.p99Ms,
    throughputRatio: result.throughputPerSecond / reference.throughputPerSecond,
  };
}

/** A load result as the JSON file has it (snake_case, like the rest of the file). */
export function loadJson(result: LoadResult, added: Added | undefined): Record<string, unknown> {
  return {
    calls: result.calls,
    errors: result.errors,
    concurrency: result.concurrency,
    p50_ms: result.p50Ms,
    p99_ms: result.p99Ms,
    mean_ms: result.meanMs,
    throughput_per_second: result.throughputPerSecond,
    wall_ms: result.wallMs,
    ...(result.cpuMsPerCall !== undefined ? { cpu_ms_per_call: result.cpuMsPerCall } : {}),
    ...(result.firstError !== undefined ? { first_error: result.firstError } : {}),
    ...(added
      ? {
        added: { p50_ms: added.p50Ms, p99_ms: added.p99Ms, throughput_ratio: added.throughputRatio },
      }
      : {}),
  };
}

/** The columns of a load table; `loadRow` fills one row of them. */
export const LOAD_COLUMNS = [
  "target",
  "calls",
  "errors",
  "p50 ms",
  "p99 ms",
  "calls/s",
  "added p50 ms",
  "added p99 ms",
  "throughput kept",
  "CPU ms/call",
];

export function loadRow(label: string, result: LoadResult, added: Added | undefined): string[] {
  return [
    label,
    String(result.calls),
    String(result.errors),
    ms(result.p50Ms),
    ms(result.p99Ms),
    perSecond(result.throughputPerSecond),
    added ? signedMs(added.p50Ms) : "-",
    added ? signedMs(added.p99Ms) : "-",
    added ? percent(added.throughputRatio) : "-",
    result.cpuMsPerCall !== undefined ? ms(result.cpuMsPerCall) : "-",
  ];
}
