/**
 * Product §9, second point: the same stdio server behind Gatehouse and behind the npm bridges people use
 * today, side by side, with the server called directly over stdio as the reference.
 */
import { BRIDGES, type RunningBridge, startBridge } from "../bridges.ts";
import { httpWorker, stdioWorker } from "../clients.ts";
import { benchRegistry, type GatewayUnderTest, startGatewayProcess } from "../gateway.ts";
import { echoStdioCommand } from "../processes.ts";
import { ms, newSection, perSecond, type SectionResult } from "../report.ts";
import type { BenchSettings } from "../settings.ts";
import { type LoadTarget, messageOf, resultOf, runSideBySide } from "../side_by_side.ts";
import { addedOver, LOAD_COLUMNS, loadJson, loadRow } from "./http_overhead.ts";

/** Product §9: stdio at concurrency 16 keeps at least this multiple of mcp-proxy's throughput. */
const MCP_PROXY_FACTOR = 1.3;

const DIRECT = "direct stdio (a process per worker)";
const GATEHOUSE = "gatehouse (stdio backend)";

export async function stdioBridges(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("stdio_bridges", "stdio: Gatehouse and the npm bridges side by side");
  const { command, args } = echoStdioCommand();
  let gateway: GatewayUnderTest | undefined;
  const bridges: RunningBridge[] = [];
  const unavailable = new Map<string, string>();
  try {
    gateway = await startGatewayProcess(
      benchRegistry({ echo: { stdio: { command, args } } }),
      settings.startTimeoutMs,
    );
    const gatewayUrl = gateway.url;
    const targets: LoadTarget[] = [
      { label: DIRECT, connect: () => stdioWorker(command, args, "echo") },
      {
        label: GATEHOUSE,
        connect: () => httpWorker(`${gatewayUrl}/mcp/echo`, "echo"),
        cpuPid: gateway.process!.pid,
      },
    ];
    // One at a time: the first run of npx downloads the package.
    for (const bridge of BRIDGES) {
      try {
        const running = await startBridge(bridge, [command, ...args], settings.bridgeStartTimeoutMs);
        bridges.push(running);
        targets.push({
          label: bridge.label,
          connect: () => httpWorker(running.url, "echo"),
          ...(running.bridgePid !== undefined ? { cpuPid: running.bridgePid } : {}),
        });
      } catch (error) {
        unavailable.set(bridge.label, `unavailable: ${firstLine(messageOf(error))}`);
      }
    }
    const outcomes = await runSideBySide(targets, settings);
    const data: Record<string, unknown> = {};
    for (const concurrency of settings.concurrency) {
      const reference = resultOf(outcomes, concurrency, DIRECT);
      const rows: string[][] = [];
      const byLabel: Record<string, unknown> = {};
      for (const label of [DIRECT, GATEHOUSE, ...BRIDGES.map((bridge) => bridge.label)]) {
        const outcome = outcomes.get(concurrency)?.get(label);
        const problem = unavailable.get(label) ??
          (outcome && "error" in outcome ? `unavailable: ${firstLine(outcome.error)}` : undefined);
        if (problem || !outcome || !("result" in outcome)) {
          rows.push([label, problem ?? "not run"]);
          byLabel[label] = { error: problem ?? "not run" };
          continue;
        }
        const added = label === DIRECT || !reference ? undefined : addedOver(reference, outcome.result);
        rows.push(loadRow(label, outcome.result, added));
        byLabel[label] = loadJson(outcome.result, added);
      }
      section.tables.push({
        title: `concurrency ${concurrency} (added and kept: over the direct stdio reference)`,
        columns: LOAD_COLUMNS,
        rows,
      });
      data[`concurrency_${concurrency}`] = byLabel;
    }
    Object.assign(section.data, data);

    for (const bridge of BRIDGES) {
      for (const concurrency of settings.concurrency) {
        const ours = resultOf(outcomes, concurrency, GATEHOUSE);
        const theirs = resultOf(outcomes, concurrency, bridge.label);
        const name = `stdio c=${concurrency}: gatehouse vs ${bridge.label}`;
        const problem = unavailable.get(bridge.label);
        // Product §9: at concurrency 16, 1.3× mcp-proxy's throughput with a lower p50; else ahead.
        const factor = concurrency > 1 && bridge.label.startsWith("mcp-proxy") ? MCP_PROXY_FACTOR : 1;
        const target = factor > 1
          ? `≥ ${factor.toFixed(1)}× the calls/s, lower p50`
          : "faster: lower p50 and more calls/s";
        if (!ours || !theirs) {
          section.targets.push({ name, measured: problem ?? "not measured", target, met: null });
          continue;
        }
        const ratio = ours.throughputPerSecond / theirs.throughputPerSecond;
        section.targets.push({
          name,
          measured: `p50 ${ms(ours.p50Ms)} vs ${ms(theirs.p50Ms)} ms, ` +
            `${perSecond(ours.throughputPerSecond)} vs ${perSecond(theirs.throughputPerSecond)} calls/s ` +
            `(${ratio.toFixed(2)}×)`,
          target,
          met: ours.p50Ms < theirs.p50Ms && (factor > 1 ? ratio >= factor : ratio > 1),
        });
      }
    }
    section.notes.push(
      "Gatehouse shares one server process among its sessions (isolation: shared, the default), and so " +
        "does mcp-proxy; supergateway (--stateful) starts one per session. Every target gets one SDK v2 " +
        "client per worker (protocol 2025-11-25). CPU ms/call: user and system time per call of the " +
        "gateway's or the bridge's own process (not of the server behind it).",
    );
  } finally {
    await Promise.all(bridges.map((bridge) => bridge.process.stop()));
    await gateway?.stop();
  }
  return section;
}

function firstLine(text: string): string {
  return text.split("\n")[0]!.slice(0, 200);
}
