/**
 * `deno task bench`: measures what product §9 promises, as ratios within one run on this machine, and
 * prints a table per benchmark and a summary saying which targets are met.
 *
 *     deno task bench [--quick] [--json FILE] [--only SECTION,...] [--soak-minutes N]
 *
 * Sections: http (overhead over a Streamable HTTP backend), stdio (Gatehouse and the npm bridges side by
 * side), memory, startup, reload, replicas (two on one PostgreSQL store against one); and soak (30 minutes
 * of mixed traffic), which runs only when named in `--only`. Everything runs on 127.0.0.1 on free ports;
 * every process started is stopped at the end, on failure and on SIGINT or SIGTERM too.
 */
import { parseArgs } from "node:util";
import { removeTempDirs } from "./gateway.ts";
import { stopAllProcesses } from "./processes.ts";
import { renderSection, renderSummary, type SectionResult } from "./report.ts";
import { type BenchSettings, benchSettings } from "./settings.ts";
import { httpOverhead } from "./sections/http_overhead.ts";
import { memory } from "./sections/memory.ts";
import { reload } from "./sections/reload.ts";
import { replicas } from "./sections/replicas.ts";
import { soak } from "./sections/soak.ts";
import { startup } from "./sections/startup.ts";
import { stdioBridges } from "./sections/stdio_bridges.ts";
import { messageOf } from "./side_by_side.ts";

interface Section {
  readonly title: string;
  readonly run: (settings: BenchSettings) => Promise<SectionResult>;
  /** Runs without `--only` naming it. */
  readonly byDefault: boolean;
}

const SECTIONS: Record<string, Section> = {
  http: { title: "HTTP overhead", run: httpOverhead, byDefault: true },
  stdio: { title: "stdio and the npm bridges", run: stdioBridges, byDefault: true },
  memory: { title: "Memory", run: memory, byDefault: true },
  startup: { title: "Start-up", run: startup, byDefault: true },
  reload: { title: "Reload", run: reload, byDefault: true },
  replicas: { title: "Replicas", run: replicas, byDefault: true },
  // Half an hour by default: only when asked for.
  soak: { title: "Soak", run: soak, byDefault: false },
};

const HELP = `Usage: deno task bench [--quick] [--json FILE] [--only SECTION,...] [--soak-minutes N]

Measures product section 9 (speed and size) on this machine and says which targets are met.

Options:
  --quick                  a short run with fewer calls (same shape; for tests)
  --json FILE              also write the results as JSON to FILE
  --only SECTIONS          run only these, comma-separated: ${Object.keys(SECTIONS).join(", ")}
                           (soak runs only when named here)
  --soak-minutes N         how long the soak runs (default 30; 1 with --quick)
  --soak-sample-seconds N  how often the soak samples and prints a line (default 30)
  -h, --help               show this help`;

const encoder = new TextEncoder();

function print(text: string): void {
  let bytes = encoder.encode(`${text}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

function printError(text: string): void {
  Deno.stderr.writeSync(encoder.encode(`${text}\n`));
}

/** Deno reads another process's /proc entries only with every permission. */
function canReadProc(): boolean {
  try {
    Deno.readTextFileSync(`/proc/${Deno.pid}/status`);
    return true;
  } catch {
    return false;
  }
}

/** A flag's value as a positive number, undefined when absent, or the error message. */
function positiveNumber(value: string | undefined, flag: string): number | undefined | string {
  if (value === undefined) return undefined;
  const number = Number(value);
  return Number.isFinite(number) && number > 0
    ? number
    : `Cannot run: ${flag} must be a positive number, not "${value}"`;
}

async function main(args: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args,
      strict: true,
      allowPositionals: false,
      options: {
        quick: { type: "boolean", default: false },
        json: { type: "string" },
        only: { type: "string" },
        "soak-minutes": { type: "string" },
        "soak-sample-seconds": { type: "string" },
        help: { type: "boolean", short: "h", default: false },
      },
    }));
  } catch (error) {
    printError(`${messageOf(error)}\n\n${HELP}`);
    return 1;
  }
  if (values.help) {
    print(HELP);
    return 0;
  }
  const chosen = values.only
    ? values.only.split(",").map((name) => name.trim())
    : Object.keys(SECTIONS).filter((name) => SECTIONS[name]!.byDefault);
  const unknown = chosen.filter((name) => !(name in SECTIONS));
  if (unknown.length > 0) {
    printError(`Cannot run: unknown section(s) ${unknown.map((name) => `"${name}"`).join(", ")}\n\n${HELP}`);
    return 1;
  }

  if ((await Deno.permissions.query({ name: "run" })).state !== "granted" || !canReadProc()) {
    printError("Cannot run: the benchmarks start processes and read /proc of them: run with -A");
    return 1;
  }
  const soakMinutes = positiveNumber(values["soak-minutes"], "--soak-minutes");
  const soakSampleSeconds = positiveNumber(values["soak-sample-seconds"], "--soak-sample-seconds");
  if (typeof soakMinutes === "string" || typeof soakSampleSeconds === "string") {
    printError(`${typeof soakMinutes === "string" ? soakMinutes : soakSampleSeconds}\n\n${HELP}`);
    return 1;
  }
  const settings = benchSettings(values.quick, { minutes: soakMinutes, sampleSeconds: soakSampleSeconds });
  const startedAt = new Date();
  const machine = {
    os: Deno.build.os,
    arch: Deno.build.arch,
    cpus: navigator.hardwareConcurrency,
    deno: Deno.version.deno,
  };
  print(
    `Gatehouse benchmarks${settings.quick ? " (--quick)" : ""}: ${machine.cpus} CPUs, ${machine.os} ` +
      `${machine.arch}, Deno ${machine.deno}\n`,
  );

  const results: SectionResult[] = [];
  for (const name of chosen) {
    const { title, run } = SECTIONS[name]!;
    const started = performance.now();
    let result: SectionResult;
    try {
      result = await run(settings);
    } catch (error) {
      result = {
        key: name,
        title,
        tables: [],
        notes: [],
        targets: [],
        data: {},
        error: error instanceof Error ? error.stack ?? error.message : String(error),
      };
    }
    result.notes.push(`took ${((performance.now() - started) / 1000).toFixed(1)} s`);
    results.push(result);
    print(`${renderSection(result)}\n`);
  }
  print(renderSummary(results));

  if (values.json) {
    const json = {
      started_at: startedAt.toISOString(),
      quick: settings.quick,
      machine,
      sections: Object.fromEntries(results.map((result) => [result.key, {
        title: result.title,
        ...(result.error ? { error: result.error } : {}),
        data: result.data,
        targets: result.targets,
        notes: result.notes,
      }])),
    };
    await Deno.writeTextFile(values.json, `${JSON.stringify(json, null, 2)}\n`);
  }
  return results.some((result) => result.error) ? 1 : 0;
}

if (import.meta.main) {
  // An interrupted run still stops what it started (the sections then fail fast and main() ends too).
  let interrupted = false;
  const interrupt = async () => {
    interrupted = true;
    printError("interrupted: stopping every process started");
    await stopAllProcesses();
    await removeTempDirs();
    Deno.exit(130);
  };
  Deno.addSignalListener("SIGINT", interrupt);
  Deno.addSignalListener("SIGTERM", interrupt);
  let code: number;
  try {
    code = await main(Deno.args);
  } finally {
    await stopAllProcesses();
    await removeTempDirs();
  }
  Deno.exit(interrupted ? 130 : code);
}
