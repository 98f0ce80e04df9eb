/**
 * Product §9, first point: what Gatehouse adds to a `tools/call` on a Streamable HTTP backend, with a real
 * access token on every request, beside the backend direct and two yardsticks in the same run: a minimal
 * relay that forwards the bytes, and the same relay verifying the same token.
 */
import { clientCredentialsToken, httpWorker } from "../clients.ts";
import { type GatewayUnderTest, startGatewayProcess } from "../gateway.ts";
import type { LoadResult } from "../measure.ts";
import { type HttpFixture, startEchoHttp, startRelay } from "../processes.ts";
import { ms, newSection, percent, perSecond, type SectionResult, signedMs } from "../report.ts";
import type { BenchSettings } from "../settings.ts";
import { type LoadTarget, resultOf, runSideBySide, type SideBySide } from "../side_by_side.ts";

const DIRECT = "direct";
const RELAY = "bare relay";
const VERIFYING_RELAY = "relay verifying the JWT";
/** The gateway paths whose overhead the targets apply to. */
const GATEWAY_PATHS = [
  { label: "gatehouse /mcp/{backend}", path: "/mcp/echo", tool: "echo" },
  { label: "gatehouse /mcp", path: "/mcp", tool: "echo__echo" },
] as const;

const TARGET_ADDED_P50_MS = 0.5;
/** Gatehouse's throughput against the verifying relay's, and against the bare relay's. */
const TARGET_VS_VERIFYING_RELAY = 1.0;
const TARGET_VS_RELAY = 0.8;

/** The one registry client the load generator's tokens are granted to. */
const BENCH_CLIENT = { id: "bench", secret: "bench-client-secret-0123456789abcdef" };

/** Gatehouse with sign-in on: every request carries an access token, as a user runs it. */
function tokenRegistry(backendUrl: string): Record<string, unknown> {
  return {
    gateway: { auth: "oauth", listen: "127.0.0.1:0", shutdown_timeout: "1s", registration: "off" },
    clients: { [BENCH_CLIENT.id]: { secret: BENCH_CLIENT.secret, grant_types: ["client_credentials"] } },
    backends: { echo: { http: { url: backendUrl } } },
    policies: [{ id: "bench-allow-everyone", effect: "allow", subjects: ["*"], backends: ["*"] }],
  };
}

export async function httpOverhead(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("http_overhead", "HTTP overhead: tools/call on a Streamable HTTP backend");
  let backend: HttpFixture | undefined;
  let gateway: GatewayUnderTest | undefined;
  const relays: HttpFixture[] = [];
  try {
    backend = await startEchoHttp(settings.startTimeoutMs);
    gateway = await startGatewayProcess(tokenRegistry(backend.url), settings.startTimeoutMs);
    const gatewayUrl = gateway.url;
    const pid = gateway.process!.pid;
    const tokens = new Map<string, string>();
    for (const { path } of GATEWAY_PATHS) {
      const resource = `${gatewayUrl}${path}`;
      tokens.set(path, await clientCredentialsToken(gatewayUrl, BENCH_CLIENT, resource));
    }
    const bearer = (path: string) => ({ authorization: `Bearer ${tokens.get(path)}` });
    const relay = await startRelay(backend.url, settings.startTimeoutMs);
    relays.push(relay);
    // The verifying relay checks the very token the gateway's /mcp/{backend} row sends.
    const verifying = await startRelay(backend.url, settings.startTimeoutMs, {
      jwks: `${gatewayUrl}/jwks.json`,
      issuer: gatewayUrl,
      audience: `${gatewayUrl}${GATEWAY_PATHS[0].path}`,
    });
    relays.push(verifying);
    const token = bearer(GATEWAY_PATHS[0].path);
    const backendUrl = backend.url;
    const backendPath = new URL(backendUrl).pathname;
    const targets: LoadTarget[] = [
      { label: DIRECT, connect: () => httpWorker(backendUrl, "echo", token), cpuPid: backend.process.pid },
      {
        label: RELAY,
        connect: () => httpWorker(`${relay.url}${backendPath}`, "echo", token),
        cpuPid: relay.process.pid,
      },
      {
        label: VERIFYING_RELAY,
        connect: () => httpWorker(`${verifying.url}${backendPath}`, "echo", token),
        cpuPid: verifying.process.pid,
      },
      ...GATEWAY_PATHS.map(({ label, path, tool }) => ({
        label,
        connect: () => httpWorker(`${gatewayUrl}${path}`, tool, bearer(path)),
        cpuPid: pid,
      })),
    ];
    const outcomes = await runSideBySide(targets, settings);
    report(section, outcomes, targets.map((target) => target.label), settings);
  } finally {
    await Promise.all(relays.map((relay) => relay.process.stop()));
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
    const relay = resultOf(outcomes, concurrency, RELAY);
    const verifying = resultOf(outcomes, concurrency, VERIFYING_RELAY);
    for (const { label } of GATEWAY_PATHS) {
      const result = resultOf(outcomes, concurrency, label);
      const added = direct && result ? addedOver(direct, result) : undefined;
      const where = `(c=${concurrency}, ${label.replace("gatehouse ", "")})`;
      if (concurrency === 1) {
        section.targets.push({
          name: `HTTP added p50 over direct ${where}`,
          measured: added ? `${signedMs(added.p50Ms)} ms` : "-",
          target: `≤ ${TARGET_ADDED_P50_MS} ms`,
          met: added ? added.p50Ms <= TARGET_ADDED_P50_MS : null,
        });
        continue;
      }
      const vsVerifying = result && verifying
        ? result.throughputPerSecond / verifying.throughputPerSecond
        : undefined;
      const vsRelay = result && relay ? result.throughputPerSecond / relay.throughputPerSecond : undefined;
      section.targets.push(
        {
          name: `HTTP throughput vs the verifying relay ${where}`,
          measured: vsVerifying !== undefined ? `${vsVerifying.toFixed(2)}×` : "-",
          target: `≥ ${TARGET_VS_VERIFYING_RELAY.toFixed(1)}×`,
          met: vsVerifying !== undefined ? vsVerifying >= TARGET_VS_VERIFYING_RELAY : null,
        },
        {
          name: `HTTP throughput vs the bare relay ${where}`,
          measured: vsRelay !== undefined ? `${vsRelay.toFixed(2)}×` : "-",
          target: `≥ ${TARGET_VS_RELAY.toFixed(1)}×`,
          met: vsRelay !== undefined ? vsRelay >= TARGET_VS_RELAY : null,
        },
      );
    }
  }
  Object.assign(section.data, data);
  section.notes.push(
    "each target has its own SDK v2 client per worker (protocol 2025-11-25), and every request carries " +
      "an access token Gatehouse issued (client_credentials, audience the endpoint); the relays forward " +
      "the bytes of each request with fetch, and the verifying one first checks the token's ES256 " +
      `signature, issuer and audience with jose. The runs alternate between the targets ${settings.rounds} ` +
      "time(s) and are pooled. CPU ms/call: user and system time per call of the process in front (the " +
      "backend's own for direct).",
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
