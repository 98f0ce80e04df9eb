import assert from "node:assert/strict";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { formatProblem } from "../../src/config/errors.ts";
import { loadRegistry } from "../../src/config/load.ts";
import { Template } from "../../src/config/template.ts";
import type { Registry } from "../../src/config/types.ts";

/**
 * Golden tests: each directory under golden/ holds a registry.yaml (with its policy files and a
 * data/secrets/ directory of obviously fake secrets), the environment it is loaded with (env.json), and
 * the resolved registry it must produce (resolved.json). Run with UPDATE_GOLDEN=1 to rewrite the
 * snapshots, then read the diff.
 */
const GOLDEN_DIR = fileURLToPath(new URL("./golden/", import.meta.url));
const UPDATE = Deno.env.get("UPDATE_GOLDEN") === "1";

function caseNames(): string[] {
  return [...Deno.readDirSync(GOLDEN_DIR)].filter((entry) => entry.isDirectory).map((entry) => entry.name)
    .sort();
}

async function loadCase(name: string): Promise<{ dir: string; registry: Registry }> {
  const dir = join(GOLDEN_DIR, name);
  const env: Record<string, string> = JSON.parse(await Deno.readTextFile(join(dir, "env.json")));
  const result = await loadRegistry(join(dir, "registry.yaml"), {
    env: (variable) => env[variable],
    cwd: dir,
  });
  if (!result.ok) {
    assert.fail(`golden case "${name}" does not load:\n${result.problems.map(formatProblem).join("\n")}`);
  }
  return { dir, registry: result.registry };
}

function snapshotOf(dir: string, registry: Registry): string {
  return JSON.stringify(registry, null, 2).replaceAll(dir, "<dir>") + "\n";
}

/** The values of `${secret:...}` references inside backend env and headers, which must never be serialised. */
function templatedSecretValues(registry: Registry): string[] {
  const values: string[] = [];
  for (const backend of Object.values(registry.backends)) {
    const { transport } = backend;
    const templates = Object.values(transport.kind === "stdio" ? transport.env : transport.headers);
    for (const template of templates) {
      for (const part of template.parts) {
        if (part.kind === "text" && part.source.startsWith("${secret:")) values.push(part.text);
      }
    }
  }
  return values;
}

Deno.test("golden/ holds the expected cases", () => {
  assert.deepEqual(caseNames(), ["defaults", "full"]);
});

for (const name of caseNames()) {
  Deno.test(`loadRegistry() resolves golden case "${name}" to its snapshot`, async () => {
    const { dir, registry } = await loadCase(name);
    const actual = snapshotOf(dir, registry);
    const snapshotPath = join(dir, "resolved.json");
    if (UPDATE) await Deno.writeTextFile(snapshotPath, actual);
    const expected = await Deno.readTextFile(snapshotPath);
    // Compared through JSON.parse so formatting of the snapshot file (deno fmt) does not matter, but key
    // order still does.
    assert.equal(
      JSON.stringify(JSON.parse(actual), null, 2),
      JSON.stringify(JSON.parse(expected), null, 2),
    );
    assert.ok(expected.includes('"baseDir": "<dir>"'), "snapshots hold no machine-specific path");
  });

  Deno.test(`loadRegistry() keeps secrets of backend env and headers out of golden case "${name}"`, async () => {
    const { dir, registry } = await loadCase(name);
    const snapshot = snapshotOf(dir, registry);
    const values = templatedSecretValues(registry);
    assert.ok(values.length > 0, "each golden case uses at least one secret in a backend env or header");
    for (const value of values) {
      assert.ok(
        value.startsWith("FAKE-"),
        `golden secrets must be obviously fake, got one of ${value.length} chars`,
      );
      assert.ok(
        !snapshot.includes(value),
        "a secret used in a backend env or header leaked into the snapshot",
      );
    }
  });
}

Deno.test("loadRegistry() resolves templated secrets but serialises them in source form", async () => {
  const { dir, registry } = await loadCase("full");
  const everything = registry.backends.everything!.transport;
  const search = registry.backends.search!.transport;
  assert.equal(everything.kind, "stdio");
  assert.equal(search.kind, "http");
  if (everything.kind !== "stdio" || search.kind !== "http") return;

  const apiKey = everything.env.API_KEY!;
  assert.ok(apiKey instanceof Template);
  assert.equal(apiKey.render(), "FAKE-everything-key-MUST-NOT-LEAK");
  assert.equal(apiKey.toJSON(), "${secret:everything_key}");
  assert.equal(search.headers["X-Api-Key"]!.render(), "FAKE-search-key-MUST-NOT-LEAK");
  assert.equal(search.headers.Authorization!.toJSON(), "Bearer ${service:google}");

  const snapshot = JSON.parse(snapshotOf(dir, registry));
  assert.equal(snapshot.backends.everything.transport.env.API_KEY, "${secret:everything_key}");
  assert.equal(snapshot.backends.search.transport.headers["X-Api-Key"], "${secret:search_key}");
  assert.deepEqual(templatedSecretValues(registry).sort(), [
    "FAKE-everything-key-MUST-NOT-LEAK",
    "FAKE-search-key-MUST-NOT-LEAK",
  ]);
  assert.equal(templatedSecretValues(registry).length, 2);
});

Deno.test("loadRegistry() returns a deeply frozen registry", async () => {
  const { registry } = await loadCase("full");
  assert.ok(Object.isFrozen(registry));
  assert.ok(Object.isFrozen(registry.gateway.listen));
  assert.ok(Object.isFrozen(registry.backends.everything!.transport));
  assert.ok(Object.isFrozen(registry.policies[0]!.subjects));
  assert.ok(Object.isFrozen(registry.login.providers.corp));
  assert.throws(() => {
    (registry.gateway as { auth: string }).auth = "none";
  }, TypeError);
});
