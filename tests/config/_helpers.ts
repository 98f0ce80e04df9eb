import assert from "node:assert/strict";
import { dirname, join } from "node:path";
import type { ConfigProblem } from "../../src/config/errors.ts";
import { type LoadOptions, loadRegistry } from "../../src/config/load.ts";
import type { Registry } from "../../src/config/types.ts";

/** Joins lines into a YAML file, so that a line's index in the call is its line number minus one. */
export function yaml(...lines: string[]): string {
  return lines.join("\n") + "\n";
}

/** Runs `fn` with a fresh temporary directory and removes it afterwards, whatever happens. */
export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-config-test-" });
  try {
    return await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Writes files (paths relative to `dir`), creating their directories. */
export async function writeFiles(dir: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await Deno.mkdir(dirname(join(dir, path)), { recursive: true });
    await Deno.writeTextFile(join(dir, path), text);
  }
}

export interface Fixture {
  /** Files to write, relative to the registry's directory; `registry.yaml` is the one loaded. */
  files: Record<string, string>;
  /** The whole environment the loader sees. */
  env?: Record<string, string>;
  options?: Omit<LoadOptions, "env" | "cwd">;
}

/** Writes a fixture into a temporary directory and loads its registry.yaml, with messages relative to it. */
export function loadFixture(fixture: Fixture): Promise<Awaited<ReturnType<typeof loadRegistry>>> {
  return withTempDir(async (dir) => {
    await writeFiles(dir, fixture.files);
    const env = fixture.env ?? {};
    return await loadRegistry(join(dir, "registry.yaml"), {
      ...fixture.options,
      env: (name) => env[name],
      cwd: dir,
    });
  });
}

/** Loads a fixture that must be rejected, and returns its problems. */
export async function problemsOf(fixture: Fixture): Promise<readonly ConfigProblem[]> {
  const result = await loadFixture(fixture);
  if (result.ok) assert.fail("expected the registry to be rejected, but it loaded");
  return result.problems;
}

/** Loads a fixture that must be accepted, and returns its registry. */
export async function registryOf(fixture: Fixture): Promise<Registry> {
  const result = await loadFixture(fixture);
  if (!result.ok) {
    assert.fail(`expected the registry to load, got:\n${JSON.stringify(result.problems, null, 2)}`);
  }
  return result.registry;
}

/** A problem in registry.yaml (or in `file`), for deepEqual against what the loader reports. */
export function problem(line: number, col: number, message: string, file = "registry.yaml"): ConfigProblem {
  return { file, line, col, message };
}
