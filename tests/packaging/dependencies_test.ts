/**
 * Serving fetches only what serving needs. Deno installs every npm package of deno.lock before it runs
 * anything, so deno.lock (used by `deno task start` and the Docker build) holds exactly what the gateway
 * reaches, and the packages of the tests and benchmarks are pinned in tests/deno.lock instead.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT } from "../helpers/gatehouse_process.ts";

/** Packages that only the tests and benchmarks use. */
const TEST_ONLY_PACKAGES = [
  "playwright-core",
  "oauth2-mock-server",
  "@modelcontextprotocol/sdk",
  "@modelcontextprotocol/server-everything",
  "@modelcontextprotocol/conformance",
];

/** The test-only packages that tests/deno.lock pins: the conformance suite runs unpinned, with `--no-lock`. */
const PINNED_TEST_PACKAGES = TEST_ONLY_PACKAGES.filter((name) =>
  name !== "@modelcontextprotocol/conformance"
);

/** What a gatehouse process runs: main.ts, and the password worker that it loads by URL. */
const SERVING_ENTRY_POINTS = ["main.ts", "src/login/password_worker.ts", "src/store/postgres/worker.ts"];

/** The parts of a deno.lock (version 5) read here; npm packages are keyed `name@version[_peer@version]`. */
interface Lockfile {
  specifiers: Record<string, string>;
  npm: Record<string, unknown>;
  workspace?: { dependencies?: string[] };
}

/** The parts of `deno info --json` read here. */
interface ModuleGraph {
  modules: { npmPackage?: string }[];
  npmPackages: Record<string, { dependencies: string[] }>;
}

async function readLockfile(path: string): Promise<Lockfile> {
  return JSON.parse(await Deno.readTextFile(join(ROOT, path)));
}

/** The name of a package key of deno.lock: `@scope/name@1.0.0_peer@2.0.0` is `@scope/name`. */
function packageName(key: string): string {
  return key.slice(0, key.indexOf("@", 1));
}

/** The npm packages (deno.lock keys) that `entryPoint` reaches, resolved as `deno run` does, with deno.lock. */
async function reachedPackages(entryPoint: string): Promise<Set<string>> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["info", "--json", "--frozen", entryPoint],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assert.equal(output.code, 0, `deno info ${entryPoint} failed:\n${new TextDecoder().decode(output.stderr)}`);
  const graph: ModuleGraph = JSON.parse(new TextDecoder().decode(output.stdout));
  const reached = new Set<string>();
  const pending = graph.modules.flatMap((module) =>
    module.npmPackage === undefined ? [] : [module.npmPackage]
  );
  for (let key = pending.pop(); key !== undefined; key = pending.pop()) {
    if (reached.has(key)) continue;
    reached.add(key);
    pending.push(...graph.npmPackages[key]?.dependencies ?? []);
  }
  return reached;
}

async function servingPackages(): Promise<string[]> {
  const reached = await Promise.all(SERVING_ENTRY_POINTS.map(reachedPackages));
  return [...new Set(reached.flatMap((packages) => [...packages]))].sort();
}

Deno.test("deno.lock holds exactly the npm packages that main.ts and its workers reach", async () => {
  const serving = await servingPackages();
  assert.ok(serving.some((key) => packageName(key) === "hono"), `reached: ${serving.join(", ")}`);
  const locked = Object.keys((await readLockfile("deno.lock")).npm).sort();
  assert.deepEqual(locked, serving);
});

Deno.test("the serving module graph and deno.json reach none of the test-only packages", async () => {
  const serving = await servingPackages();
  assert.deepEqual(serving.filter((key) => TEST_ONLY_PACKAGES.includes(packageName(key))), []);
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const imported = Object.values<string>(config.imports);
  assert.deepEqual(imported.filter((target) => TEST_ONLY_PACKAGES.some((name) => target.includes(name))), []);
});

Deno.test("tests/deno.lock pins every package of deno.lock as deno.lock does, and the test-only ones", async () => {
  const serving = await readLockfile("deno.lock");
  const tests = await readLockfile("tests/deno.lock");
  for (const [key, entry] of Object.entries(serving.npm)) {
    assert.deepEqual(tests.npm[key], entry, `tests/deno.lock pins ${key} differently`);
  }
  for (const [specifier, resolved] of Object.entries(serving.specifiers)) {
    assert.equal(tests.specifiers[specifier], resolved, `tests/deno.lock resolves ${specifier} differently`);
  }
  assert.deepEqual(tests.workspace, serving.workspace);
  const testNames = new Set(Object.keys(tests.npm).map(packageName));
  assert.deepEqual(PINNED_TEST_PACKAGES.filter((name) => !testNames.has(name)), []);
});
