import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../helpers/gatehouse_process.ts";

/** Every number a complete run must have: the section, then the path into that section's `data`. */
const MEASUREMENTS = [
  ["http_overhead", "concurrency_1", "direct", "p50_ms"],
  ["http_overhead", "concurrency_16", "direct", "throughput_per_second"],
  ["http_overhead", "concurrency_1", "gatehouse /mcp/{backend}", "added", "p50_ms"],
  ["http_overhead", "concurrency_1", "gatehouse /mcp", "added", "p99_ms"],
  ["http_overhead", "concurrency_16", "gatehouse /mcp/{backend}", "added", "throughput_ratio"],
  ["http_overhead", "concurrency_16", "gatehouse /mcp", "added", "p50_ms"],
  ["http_overhead", "concurrency_1", "gatehouse /mcp", "cpu_ms_per_call"],
  ["http_overhead", "concurrency_16", "bare relay", "throughput_per_second"],
  ["http_overhead", "concurrency_16", "relay verifying the JWT", "throughput_per_second"],
  ["stdio_bridges", "concurrency_1", "direct stdio (a process per worker)", "p50_ms"],
  ["stdio_bridges", "concurrency_1", "gatehouse (stdio backend)", "p50_ms"],
  ["stdio_bridges", "concurrency_16", "gatehouse (stdio backend)", "throughput_per_second"],
  ["memory", "idle_rss_bytes"],
  ["memory", "sessions_rss_bytes"],
  ["memory", "sessions"],
  ["memory", "after_load_rss_bytes"],
  ["memory", "load_calls"],
  ["startup", "first_start_ms"],
  ["startup", "restart_median_ms"],
  ["reload", "applied_ms", 0],
  ["reload", "new_backend_answering_ms", 0],
  ["reload", "failed_calls"],
] as const;

const SECTION_TITLES = [
  "== HTTP overhead",
  "== stdio: Gatehouse and the npm bridges side by side",
  "== Memory",
  "== Start-up",
  "== Reload",
  "== Summary ==",
];

function at(value: unknown, path: readonly (string | number)[]): unknown {
  return path.reduce<unknown>(
    (current, key) => (current as Record<string | number, unknown> | undefined)?.[key],
    value,
  );
}

Deno.test({
  name: "deno task bench --quick runs every benchmark and writes a number for each measurement",
  // The run starts the gateway, backends and bridges as subprocesses; speed is never asserted here.
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "gatehouse-bench-test-" });
    try {
      const jsonPath = join(dir, "results.json");
      const output = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", `${ROOT}bench/main.ts`, "--quick", "--json", jsonPath],
        cwd: ROOT,
        env: { NO_COLOR: "1" },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        signal: AbortSignal.timeout(120_000),
      }).output();
      const stdout = new TextDecoder().decode(output.stdout);
      const stderr = new TextDecoder().decode(output.stderr);
      assert.equal(output.code, 0, `bench failed:\n${stdout}\n${stderr}`);
      for (const title of SECTION_TITLES) assert.ok(stdout.includes(title), `no "${title}" in:\n${stdout}`);
      assert.match(stdout, /memory idle [\d.]+ MB \(target < 80 MB\): (met|NOT MET)/);
      assert.doesNotMatch(stdout, /did not complete/);

      const results = JSON.parse(await Deno.readTextFile(jsonPath));
      assert.equal(results.quick, true);
      for (const [section, ...path] of MEASUREMENTS) {
        const value = at(results.sections[section]?.data, path);
        const where = [section, ...path].join(".");
        assert.equal(typeof value, "number", `${where} is ${JSON.stringify(value)}`);
        assert.ok(Number.isFinite(value), `${where} is ${value}`);
      }
      // A bridge that cannot be fetched is reported, not a failure: either numbers or the reason.
      for (const bridge of ["supergateway 4.0.0 (--stateful)", "mcp-proxy 6.7.19"]) {
        const row = results.sections.stdio_bridges.data.concurrency_1[bridge];
        assert.ok(
          typeof row?.p50_ms === "number" || String(row?.error).startsWith("unavailable: "),
          `${bridge}: ${JSON.stringify(row)}`,
        );
      }
      for (const section of Object.values(results.sections) as { targets: unknown[] }[]) {
        assert.ok(section.targets.length > 0);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
