import assert from "node:assert/strict";
import { join } from "node:path";
import { createRegistryHolder, type SwapEvent } from "../../src/config/current.ts";
import { diffBackends } from "../../src/config/diff.ts";
import type { ConfigProblem } from "../../src/config/errors.ts";
import { type LoadOptions, loadRegistry, type LoadResult } from "../../src/config/load.ts";
import type { Registry } from "../../src/config/types.ts";
import { watchRegistry } from "../../src/config/watch.ts";
import { createLogger } from "../../src/log/logger.ts";
import { type Fixture, registryOf, withTempDir, writeFiles, yaml } from "./_helpers.ts";

const BASE = yaml(
  "backends:",
  "  keep:",
  "    stdio: { command: keep-mcp, args: [--quiet] }",
  "  edit:",
  "    http: { url: https://edit.example.test/mcp }",
  "  drop:",
  "    stdio: { command: drop-mcp }",
);

const failed = (message: string): LoadResult => ({
  ok: false,
  problems: [{ file: "registry.yaml", line: 3, col: 5, message }],
});

/** Loads the same registry.yaml with different secrets, as a reload after a secret was rotated would. */
function withSecret(registryYaml: string, secret: string): Fixture {
  return { files: { "registry.yaml": registryYaml, "data/secrets/token": secret + "\n" } };
}

// diffBackends()

Deno.test("diffBackends() sorts backends into added, removed, changed and unchanged", async () => {
  const previous = await registryOf({ files: { "registry.yaml": BASE } });
  const next = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  keep:",
        "    stdio: { command: keep-mcp, args: [--quiet] }",
        "  edit:",
        "    http: { url: https://edit.example.test/v2/mcp }",
        "  add:",
        "    sse: { url: http://127.0.0.1:9000/sse }",
      ),
    },
  });
  assert.deepEqual(diffBackends(previous, next), {
    added: ["add"],
    removed: ["drop"],
    changed: ["edit"],
    unchanged: ["keep"],
  });
});

Deno.test("diffBackends() counts every backend as added when there is no previous registry", async () => {
  const next = await registryOf({ files: { "registry.yaml": BASE } });
  assert.deepEqual(diffBackends(undefined, next), {
    added: ["keep", "edit", "drop"],
    removed: [],
    changed: [],
    unchanged: [],
  });
});

Deno.test("diffBackends() counts a change of a secret's value alone as a change", async () => {
  const registryYaml = yaml(
    "backends:",
    "  search:",
    '    http: { url: https://search.example.test/mcp, headers: { Authorization: "Bearer ${secret:token}" } }',
  );
  const previous = await registryOf(withSecret(registryYaml, "FAKE-token-1"));
  const same = await registryOf(withSecret(registryYaml, "FAKE-token-1"));
  const rotated = await registryOf(withSecret(registryYaml, "FAKE-token-2"));
  assert.deepEqual(diffBackends(previous, same).unchanged, ["search"]);
  assert.deepEqual(diffBackends(previous, rotated).changed, ["search"]);
});

Deno.test("diffBackends() counts a change of an env template alone as a change", async () => {
  const previous = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  notes:",
        '    stdio: { command: notes-mcp, env: { WHO: "${user:id}" } }',
      ),
    },
  });
  const next = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  notes:",
        '    stdio: { command: notes-mcp, env: { WHO: "${user:name}" } }',
      ),
    },
  });
  assert.deepEqual(diffBackends(previous, next), {
    added: [],
    removed: [],
    changed: ["notes"],
    unchanged: [],
  });
});

Deno.test("diffBackends() counts a reordering of keys, or a respelling of a value, as no change", async () => {
  const previous = await registryOf({
    ...withSecret(
      yaml(
        "backends:",
        "  files:",
        '    stdio: { command: files-mcp, args: [--root, /srv], env: { A: "1", B: "${secret:token}" } }',
        "    prefix: files",
        "    idle_timeout: 5m",
      ),
      "FAKE-token",
    ),
  });
  const next = await registryOf({
    ...withSecret(
      yaml(
        "backends:",
        "  files:",
        "    idle_timeout: 300s",
        "    prefix: files",
        '    stdio: { env: { B: "${secret:token}", A: 1 }, args: [--root, /srv], command: files-mcp }',
      ),
      "FAKE-token",
    ),
  });
  assert.deepEqual(diffBackends(previous, next), {
    added: [],
    removed: [],
    changed: [],
    unchanged: ["files"],
  });
});

Deno.test("diffBackends() counts a reordering of args as a change", async () => {
  const previous = await registryOf({
    files: {
      "registry.yaml": yaml("backends:", "  files:", "    stdio: { command: files-mcp, args: [-a, -b] }"),
    },
  });
  const next = await registryOf({
    files: {
      "registry.yaml": yaml("backends:", "  files:", "    stdio: { command: files-mcp, args: [-b, -a] }"),
    },
  });
  assert.deepEqual(diffBackends(previous, next).changed, ["files"]);
});

Deno.test("diffBackends() treats backend names as own keys, not as Object.prototype members", async () => {
  const previous = await registryOf({
    files: { "registry.yaml": yaml("backends:", "  toString:", "    stdio: { command: a }") },
  });
  const next = await registryOf({
    files: { "registry.yaml": yaml("backends:", "  constructor:", "    stdio: { command: b }") },
  });
  assert.deepEqual(diffBackends(previous, next), {
    added: ["constructor"],
    removed: ["toString"],
    changed: [],
    unchanged: [],
  });
});

// createRegistryHolder()

Deno.test("createRegistryHolder() starts at generation 1 with the initial registry", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const holder = createRegistryHolder(initial, { now: () => 1_000 });
  assert.deepEqual(holder.current(), { generation: 1, registry: initial, loadedAt: 1_000 });
  assert.ok(Object.isFrozen(holder.current()));
  assert.equal(holder.lastFailure(), undefined);
});

Deno.test("createRegistryHolder() apply() swaps in a good registry as the next generation", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const next = await registryOf({
    files: {
      "registry.yaml": yaml("backends:", "  keep:", "    stdio: { command: keep-mcp, args: [--quiet] }"),
    },
  });
  let clock = 1_000;
  const holder = createRegistryHolder(initial, { now: () => clock });
  clock = 2_000;
  const outcome = await holder.apply({ ok: true, registry: next });
  assert.ok(outcome.ok);
  assert.equal(outcome.event.previous.generation, 1);
  assert.equal(outcome.event.previous.registry, initial);
  assert.deepEqual(outcome.event.next, { generation: 2, registry: next, loadedAt: 2_000 });
  assert.deepEqual(outcome.event.diff, {
    added: [],
    removed: ["edit", "drop"],
    changed: [],
    unchanged: ["keep"],
  });
  assert.equal(holder.current(), outcome.event.next);

  const again = await holder.apply({ ok: true, registry: initial });
  assert.ok(again.ok);
  assert.equal(holder.current().generation, 3);
  assert.deepEqual(again.event.diff.added, ["edit", "drop"]);
});

Deno.test("createRegistryHolder() apply() records a rejected registry and keeps the current one", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  let clock = 1_000;
  const holder = createRegistryHolder(initial, { now: () => clock });
  const swaps: SwapEvent[] = [];
  holder.onSwap((event) => swaps.push(event));
  clock = 5_000;
  const outcome = await holder.apply(failed('gateway: unknown key "colour"'));
  assert.deepEqual(outcome, {
    ok: false,
    problems: [{ file: "registry.yaml", line: 3, col: 5, message: 'gateway: unknown key "colour"' }],
  });
  assert.equal(holder.current().generation, 1);
  assert.equal(holder.current().registry, initial);
  assert.deepEqual(holder.lastFailure(), { at: 5_000, problems: outcome.problems });
  assert.equal(swaps.length, 0);

  // The next good registry clears the failure.
  clock = 6_000;
  const good = await holder.apply({ ok: true, registry: initial });
  assert.ok(good.ok);
  assert.equal(holder.current().generation, 2);
  assert.equal(holder.lastFailure(), undefined);
});

Deno.test("createRegistryHolder() rejects a registry whose preparer throws, and keeps the current one", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const next = await registryOf({ files: { "registry.yaml": yaml("backends: {}") } });
  const holder = createRegistryHolder(initial, { now: () => 7_000 });
  const prepared: { registry: Registry; removed: readonly string[] }[] = [];
  holder.onPrepare((registry, diff) => {
    prepared.push({ registry, removed: diff.removed });
  });
  holder.onPrepare(() => Promise.reject(new Error("Cannot start backend: keep-mcp exited with code 1")));
  let laterPreparerRan = false;
  holder.onPrepare(() => {
    laterPreparerRan = true;
  });
  const swaps: SwapEvent[] = [];
  holder.onSwap((event) => swaps.push(event));

  const outcome = await holder.apply({ ok: true, registry: next });
  const expected: ConfigProblem[] = [
    { file: next.files[0]!, line: 0, col: 0, message: "Cannot start backend: keep-mcp exited with code 1" },
  ];
  assert.deepEqual(outcome, { ok: false, problems: expected });
  assert.deepEqual(prepared, [{ registry: next, removed: ["keep", "edit", "drop"] }]);
  assert.equal(laterPreparerRan, false);
  assert.equal(swaps.length, 0);
  assert.equal(holder.current().generation, 1);
  assert.equal(holder.current().registry, initial);
  assert.deepEqual(holder.lastFailure(), { at: 7_000, problems: expected });
});

Deno.test("createRegistryHolder() onPrepare() and onSwap() return functions that unsubscribe", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const holder = createRegistryHolder(initial);
  const calls: string[] = [];
  const stopPreparing = holder.onPrepare(() => {
    throw new Error("Cannot prepare: unsubscribed preparer ran");
  });
  const stopListening = holder.onSwap(() => calls.push("removed listener"));
  holder.onSwap((event) => calls.push(`swap to ${event.next.generation}`));
  stopPreparing();
  stopListening();
  const outcome = await holder.apply({ ok: true, registry: initial });
  assert.ok(outcome.ok);
  assert.deepEqual(calls, ["swap to 2"]);
});

Deno.test("createRegistryHolder() tells every swap listener, even after one throws", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const listenerErrors: unknown[] = [];
  const holder = createRegistryHolder(initial, { onListenerError: (error) => listenerErrors.push(error) });
  const seen: number[] = [];
  holder.onSwap(() => {
    throw new Error("listener failed");
  });
  holder.onSwap((event) => seen.push(event.next.generation));
  const outcome = await holder.apply({ ok: true, registry: initial });
  assert.ok(outcome.ok);
  assert.deepEqual(seen, [2]);
  assert.equal(listenerErrors.length, 1);
  assert.equal((listenerErrors[0] as Error).message, "listener failed");
  assert.equal(holder.current().generation, 2);
});

Deno.test("createRegistryHolder() applies registries one at a time, in the order given", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const first = await registryOf({
    files: { "registry.yaml": yaml("backends:", "  first:", "    stdio: { command: a }") },
  });
  const second = await registryOf({
    files: { "registry.yaml": yaml("backends:", "  second:", "    stdio: { command: b }") },
  });
  const holder = createRegistryHolder(initial);

  let release!: () => void;
  const slow = new Promise<void>((resolve) => release = resolve);
  const prepared: string[] = [];
  holder.onPrepare(async (registry) => {
    const name = Object.keys(registry.backends)[0]!;
    prepared.push(`start ${name}`);
    if (name === "first") await slow;
    prepared.push(`end ${name}`);
  });
  const swapped: string[] = [];
  holder.onSwap((event) =>
    swapped.push(`${event.next.generation}:${Object.keys(event.next.registry.backends)}`)
  );

  const applyFirst = holder.apply({ ok: true, registry: first });
  const applySecond = holder.apply({ ok: true, registry: second });
  // The second waits for the first, whose preparer is still running.
  await Promise.resolve();
  assert.deepEqual(prepared, ["start first"]);
  assert.equal(holder.current().generation, 1);
  release();

  const [outcomeFirst, outcomeSecond] = await Promise.all([applyFirst, applySecond]);
  assert.ok(outcomeFirst.ok && outcomeSecond.ok);
  assert.deepEqual(prepared, ["start first", "end first", "start second", "end second"]);
  assert.deepEqual(swapped, ["2:first", "3:second"]);
  assert.equal(holder.current().registry, second);
  // The second's diff is against the first, not against the registry current when it was queued.
  assert.deepEqual(outcomeSecond.event.diff, {
    added: ["second"],
    removed: ["first"],
    changed: [],
    unchanged: [],
  });
});

Deno.test("createRegistryHolder() keeps applying after a failure in the queue", async () => {
  const initial = await registryOf({ files: { "registry.yaml": BASE } });
  const holder = createRegistryHolder(initial);
  const results = await Promise.all([
    holder.apply(failed("first is broken")),
    holder.apply({ ok: true, registry: initial }),
    holder.apply(failed("third is broken")),
  ]);
  assert.deepEqual(results.map((result) => result.ok), [false, true, false]);
  assert.equal(holder.current().generation, 2);
  assert.equal(holder.lastFailure()?.problems[0]?.message, "third is broken");
});

// watchRegistry()

interface LogLine {
  level: string;
  msg: string;
  generation?: number;
  problems?: string[];
  warnings?: string[];
  added?: string[];
  removed?: string[];
  changed?: string[];
  unchanged?: string[];
}

/** Polls until `condition` holds, every 20 ms for at most 5 s; no fixed sleeps. */
async function waitFor(condition: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!condition()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A watched registry in a temporary directory, with its holder and the log lines written so far. */
async function withWatchedRegistry(
  files: Record<string, string>,
  fn: (context: {
    dir: string;
    holder: ReturnType<typeof createRegistryHolder>;
    watcher: ReturnType<typeof watchRegistry>;
    logs: LogLine[];
    /** Waits until the watcher has logged `count` reload outcomes in all. */
    outcomes(count: number): Promise<LogLine[]>;
  }) => Promise<void>,
  debounceMs = 30,
): Promise<void> {
  await withTempDir(async (dir) => {
    await writeFiles(dir, files);
    const registryPath = join(dir, "registry.yaml");
    const loadOptions: LoadOptions = { env: () => undefined, cwd: dir };
    const initial = await loadRegistry(registryPath, loadOptions);
    if (!initial.ok) assert.fail(`the initial registry does not load: ${JSON.stringify(initial.problems)}`);
    const holder = createRegistryHolder(initial.registry);
    const logs: LogLine[] = [];
    const log = createLogger({ write: (line) => logs.push(JSON.parse(line)) });
    const watcher = watchRegistry({ registryPath, loadOptions, holder, log, debounceMs });
    const isOutcome = (line: LogLine) => line.msg.startsWith("registry re");
    try {
      await fn({
        dir,
        holder,
        watcher,
        logs,
        async outcomes(count) {
          await waitFor(
            () => logs.filter(isOutcome).length >= count,
            `${count} reload outcome(s) in the log`,
          );
          return logs.filter(isOutcome);
        },
      });
    } finally {
      watcher.close();
    }
  });
}

const WATCHED = yaml("backends:", "  files:", "    stdio: { command: files-mcp }");

Deno.test("watchRegistry() swaps in a new generation when registry.yaml is edited", async () => {
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder, outcomes }) => {
    const swapped = new Promise<SwapEvent>((resolve) => holder.onSwap(resolve));
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      WATCHED + yaml("  search:", "    http: { url: https://search.example.test/mcp }"),
    );
    const event = await swapped;
    assert.equal(event.next.generation, 2);
    assert.deepEqual(event.diff, { added: ["search"], removed: [], changed: [], unchanged: ["files"] });
    assert.deepEqual(Object.keys(holder.current().registry.backends), ["files", "search"]);

    const [line] = await outcomes(1);
    assert.equal(line?.level, "info");
    assert.equal(line?.msg, "registry reloaded");
    assert.equal(line?.generation, 2);
    assert.deepEqual(line?.added, ["search"]);
    assert.deepEqual(line?.unchanged, ["files"]);
  });
});

Deno.test("watchRegistry() keeps the last good generation when the new file is broken", async () => {
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder, outcomes }) => {
    const good = holder.current();
    await Deno.writeTextFile(join(dir, "registry.yaml"), WATCHED + yaml("    restart: always"));
    const [line] = await outcomes(1);
    assert.equal(holder.current(), good);
    assert.deepEqual(holder.lastFailure()?.problems, [
      { file: "registry.yaml", line: 4, col: 5, message: 'backends.files: unknown key "restart"' },
    ]);
    assert.equal(line?.level, "error");
    assert.equal(line?.msg, "registry rejected; the last good registry keeps serving");
    assert.equal(line?.generation, 1);
    assert.deepEqual(line?.problems, ['registry.yaml:4:5: backends.files: unknown key "restart"']);

    // Fixing the file swaps in generation 2 and clears the failure.
    await Deno.writeTextFile(join(dir, "registry.yaml"), WATCHED + yaml("    timeout: 2m"));
    const lines = await outcomes(2);
    assert.equal(lines[1]?.msg, "registry reloaded");
    assert.equal(holder.current().generation, 2);
    assert.equal(holder.current().registry.backends.files?.callTimeoutSeconds, 120);
    assert.equal(holder.lastFailure(), undefined);
  });
});

Deno.test("watchRegistry() reloads when an editor replaces registry.yaml by renaming over it", async () => {
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder, outcomes }) => {
    await Deno.writeTextFile(join(dir, ".registry.yaml.swp"), WATCHED + yaml("    timeout: 5s"));
    await Deno.rename(join(dir, ".registry.yaml.swp"), join(dir, "registry.yaml"));
    const [line] = await outcomes(1);
    assert.equal(line?.msg, "registry reloaded");
    assert.deepEqual(line?.changed, ["files"]);
    assert.equal(holder.current().registry.backends.files?.callTimeoutSeconds, 5);
  });
});

Deno.test("watchRegistry() reloads when a file is added to policies/", async () => {
  await withWatchedRegistry(
    {
      "registry.yaml": WATCHED,
      "policies/base.yaml": yaml('- { id: base, effect: allow, subjects: ["*"], backends: [files] }'),
    },
    async ({ dir, holder, outcomes }) => {
      assert.deepEqual(holder.current().registry.policies.map((rule) => rule.id), ["base"]);
      await Deno.writeTextFile(
        join(dir, "policies/extra.yaml"),
        yaml('- { id: extra, effect: deny, subjects: ["group:interns"], backends: ["*"] }'),
      );
      const [line] = await outcomes(1);
      assert.equal(line?.msg, "registry reloaded");
      assert.equal(holder.current().generation, 2);
      assert.deepEqual(holder.current().registry.policies.map((rule) => rule.id), ["base", "extra"]);
      assert.deepEqual(holder.current().registry.files, [
        join(dir, "registry.yaml"),
        join(dir, "policies/base.yaml"),
        join(dir, "policies/extra.yaml"),
      ]);
    },
  );
});

Deno.test("watchRegistry() rejects a broken policy file with its position", async () => {
  await withWatchedRegistry(
    { "registry.yaml": WATCHED, "policies/base.yaml": "" },
    async ({ dir, holder, outcomes }) => {
      await Deno.writeTextFile(
        join(dir, "policies/base.yaml"),
        yaml('- { id: base, effect: allow, subjects: ["provider:corp"], backends: [files] }'),
      );
      const [line] = await outcomes(1);
      assert.equal(holder.current().generation, 1);
      assert.deepEqual(line?.problems, ['policies/base.yaml:1:41: unknown provider "corp" in subject']);
    },
  );
});

Deno.test("watchRegistry() reloads a registry whose rules name a removed backend, and logs a warning", async () => {
  await withWatchedRegistry(
    {
      "registry.yaml": WATCHED,
      "policies/base.yaml": yaml('- { id: base, effect: allow, subjects: ["*"], backends: [files] }'),
    },
    async ({ dir, holder, logs, outcomes }) => {
      await Deno.writeTextFile(
        join(dir, "registry.yaml"),
        yaml("backends:", "  notes:", "    stdio: { command: notes-mcp }"),
      );
      const [line] = await outcomes(1);
      assert.equal(line?.msg, "registry reloaded");
      assert.equal(holder.current().generation, 2);
      assert.deepEqual(Object.keys(holder.current().registry.backends), ["notes"]);
      const warnings = logs.filter((entry) => entry.msg === "registry warnings");
      assert.equal(warnings.length, 1);
      assert.equal(warnings[0]?.level, "warn");
      assert.deepEqual(warnings[0]?.warnings, [
        'policies/base.yaml:1:58: warning: unknown backend "files": this entry matches nothing',
      ]);
    },
  );
});

Deno.test("watchRegistry() starts watching policies/ once it is created", async () => {
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder }) => {
    await Deno.mkdir(join(dir, "policies"));
    await Deno.writeTextFile(
      join(dir, "policies/late.yaml"),
      yaml('- { id: late, effect: allow, subjects: ["*"], backends: ["*"] }'),
    );
    await waitFor(
      () => holder.current().registry.policies.some((rule) => rule.id === "late"),
      "the rule of policies/late.yaml",
    );
    // The directory is watched now: a second file there is picked up too.
    await Deno.writeTextFile(
      join(dir, "policies/later.yaml"),
      yaml('- { id: later, effect: allow, subjects: ["*"], backends: ["*"] }'),
    );
    await waitFor(
      () => holder.current().registry.policies.some((rule) => rule.id === "later"),
      "the rule of policies/later.yaml",
    );
    assert.equal(holder.lastFailure(), undefined);
  });
});

Deno.test("watchRegistry() reload() loads and applies the files now", async () => {
  // A long debounce keeps the file watcher out of the way: only reload() acts within this test.
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder, watcher, logs }) => {
    assert.equal(await watcher.reload(), true);
    assert.equal(holder.current().generation, 2);
    assert.deepEqual(logs.at(-1)?.unchanged, ["files"]);

    await Deno.writeTextFile(join(dir, "registry.yaml"), yaml("gateway:", "  listen: nowhere"));
    assert.equal(await watcher.reload(), false);
    assert.equal(holder.current().generation, 2);
    assert.deepEqual(logs.at(-1)?.problems, [
      "registry.yaml:2:11: gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740",
    ]);

    await Deno.writeTextFile(join(dir, "registry.yaml"), yaml("backends: {}"));
    assert.equal(await watcher.reload(), true);
    assert.equal(holder.current().generation, 3);
    assert.deepEqual(logs.at(-1)?.removed, ["files"]);
  }, 60_000);
});

Deno.test("watchRegistry() close() stops reloading", async () => {
  await withWatchedRegistry({ "registry.yaml": WATCHED }, async ({ dir, holder: closedHolder, watcher }) => {
    watcher.close();
    watcher.close(); // Closing twice is harmless.
    // A second watcher on the same file, slower to react than the closed one would be, shows when the
    // change has been seen and acted on.
    const registryPath = join(dir, "registry.yaml");
    const loadOptions: LoadOptions = { env: () => undefined, cwd: dir };
    const initial = await loadRegistry(registryPath, loadOptions);
    assert.ok(initial.ok);
    const witness = createRegistryHolder(initial.registry);
    const witnessWatcher = watchRegistry({
      registryPath,
      loadOptions,
      holder: witness,
      log: createLogger({ write: () => {} }),
      debounceMs: 200,
    });
    try {
      await Deno.writeTextFile(registryPath, WATCHED + yaml("  more:", "    stdio: { command: more-mcp }"));
      await waitFor(() => witness.current().generation === 2, "the witness watcher to reload");
      assert.equal(closedHolder.current().generation, 1);
    } finally {
      witnessWatcher.close();
    }
  }, 10);
});
