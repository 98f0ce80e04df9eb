/**
 * Runs the official MCP conformance suite's server scenarios against an endpoint and reports which
 * scenarios passed. Used against the fixture server directly (tests/fixtures/conformance_test.ts) and,
 * to compare, through the gateway.
 */

/** The suite, pinned: its scenario list and fixture names change between releases. */
export const CONFORMANCE_PACKAGE = "npm:@modelcontextprotocol/conformance@0.2.0-alpha.12";

/** Options for {@linkcode runConformance}. */
export interface ConformanceOptions {
  /**
   * Run every scenario at this protocol revision (`--spec-version`), skipping those it does not
   * define. Default: the suite picks per scenario, 2026-07-28 for scenarios introduced there and for
   * extensions, 2025-11-25 for the rest.
   */
  specVersion?: string;
  /** Which scenarios to run (`--suite`). Default `all`, which includes pending and extension scenarios. */
  suite?: "all" | "active" | "pending" | "draft";
  /** Kill the suite if it has not finished after this long. Default 5 minutes. */
  timeoutMs?: number;
}

/** What {@linkcode runConformance} found, scenario names sorted. */
export interface ConformanceResult {
  /** Scenarios with no failed check. */
  passed: string[];
  /** Scenarios with at least one failed check, or that did not finish. */
  failed: string[];
  /** For each failed scenario, its failed checks as `check-id: message`. */
  failures: Record<string, string[]>;
  /** SHOULD-level findings (`WARNING` checks), which do not fail a scenario. */
  warnings: Record<string, string[]>;
  /** Wall-clock time the suite took. */
  durationMs: number;
}

interface Check {
  id: string;
  status: "SUCCESS" | "FAILURE" | "WARNING" | "SKIPPED" | "INFO";
  errorMessage?: string;
}

const DEFAULT_TIMEOUT_MS = 5 * 60_000;
/** `-o DIR` gets one `server-<scenario>-<ISO timestamp with ':' and '.' as '-'>` folder per scenario. */
const RESULT_DIR = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;
/** The summary the CLI prints last: `✓ name: 3 passed, 0 failed` (✗ when anything failed). */
const SUMMARY_LINE = /^([✓✗]) (\S+): \d+ passed, \d+ failed$/;

/**
 * Runs the suite's server scenarios against `url` (which must be on 127.0.0.1) in a child process,
 * bounded by `timeoutMs`, and parses the per-scenario results it writes.
 *
 * The child runs with `--no-config --no-lock` in a temporary directory, so it never touches the
 * project's deno.json or deno.lock; the directory is removed afterwards.
 */
export async function runConformance(
  url: string,
  options: ConformanceOptions = {},
): Promise<ConformanceResult> {
  if (new URL(url).hostname !== "127.0.0.1") {
    throw new TypeError(`Cannot run conformance: url must be on 127.0.0.1, got "${url}"`);
  }
  const outputDir = await Deno.makeTempDir({ prefix: "gatehouse-conformance-" });
  try {
    const args = [
      "run",
      "-A",
      "--no-config",
      "--no-lock",
      CONFORMANCE_PACKAGE,
      "server",
      "--url",
      url,
      "--suite",
      options.suite ?? "all",
      "-o",
      outputDir,
      ...(options.specVersion ? ["--spec-version", options.specVersion] : []),
    ];
    const started = performance.now();
    const child = new Deno.Command(Deno.execPath(), {
      args,
      cwd: outputDir,
      env: { NO_COLOR: "1" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
    const output = await child.output().finally(() => clearTimeout(timer));
    const durationMs = Math.round(performance.now() - started);
    const stdout = new TextDecoder().decode(output.stdout);
    const tail = () => `${stdout.slice(-2000)}${new TextDecoder().decode(output.stderr).slice(-2000)}`;
    if (timedOut) {
      throw new Error(`Cannot run conformance: suite still running after ${options.timeoutMs}ms\n${tail()}`);
    }
    // The CLI exits 1 when a scenario failed; anything else (or no summary) means it did not run.
    const summary = parseSummary(stdout);
    if ((output.code !== 0 && output.code !== 1) || summary.size === 0) {
      throw new Error(`Cannot run conformance: suite exited with code ${output.code}\n${tail()}`);
    }
    return { ...await readResults(outputDir, summary), durationMs };
  } finally {
    await Deno.remove(outputDir, { recursive: true });
  }
}

/** Scenario name -> whether the CLI's summary marks it passed. */
function parseSummary(stdout: string): Map<string, boolean> {
  const summary = new Map<string, boolean>();
  const start = stdout.lastIndexOf("=== SUMMARY ===");
  if (start < 0) return summary;
  for (const line of stdout.slice(start).split("\n")) {
    const match = SUMMARY_LINE.exec(line.trim());
    if (match) summary.set(match[2]!, match[1] === "✓");
  }
  return summary;
}

/** Combines the summary with each scenario's `checks.json`; either one reporting a failure fails it. */
async function readResults(
  outputDir: string,
  summary: Map<string, boolean>,
): Promise<Omit<ConformanceResult, "durationMs">> {
  const checksByScenario = new Map<string, Check[] | undefined>();
  for await (const entry of Deno.readDir(outputDir)) {
    const scenario = RESULT_DIR.exec(entry.name)?.[1];
    if (!entry.isDirectory || scenario === undefined) continue;
    const text = await Deno.readTextFile(`${outputDir}/${entry.name}/checks.json`).catch(() => undefined);
    checksByScenario.set(scenario, text === undefined ? undefined : JSON.parse(text) as Check[]);
  }
  const passed: string[] = [];
  const failed: string[] = [];
  const failures: Record<string, string[]> = {};
  const warnings: Record<string, string[]> = {};
  for (const scenario of new Set([...summary.keys(), ...checksByScenario.keys()])) {
    const checks = checksByScenario.get(scenario);
    const describe = (check: Check) => `${check.id}: ${check.errorMessage ?? check.status}`;
    const failedChecks = checks?.filter((check) => check.status === "FAILURE").map(describe) ?? [];
    if (checks === undefined) failedChecks.push("no checks.json: the scenario did not finish");
    else if (summary.get(scenario) === false && failedChecks.length === 0) {
      failedChecks.push("the suite's summary reports a failure");
    }
    const warned = checks?.filter((check) => check.status === "WARNING").map(describe) ?? [];
    if (warned.length > 0) warnings[scenario] = warned;
    if (failedChecks.length > 0) {
      failed.push(scenario);
      failures[scenario] = failedChecks;
    } else {
      passed.push(scenario);
    }
  }
  return { passed: passed.sort(), failed: failed.sort(), failures, warnings };
}
