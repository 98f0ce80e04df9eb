import assert from "node:assert/strict";
import { join } from "node:path";
import { eventually, runGatehouse, startGatehouse } from "../helpers/gatehouse_process.ts";

const SECRET_VALUE = "do-not-log-this-secret-9f2c";

async function tempRegistry(yaml: string): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-serve-" });
  await Deno.mkdir(join(dir, "data", "secrets"), { recursive: true, mode: 0o700 });
  await Deno.writeTextFile(join(dir, "data", "secrets", "api"), `${SECRET_VALUE}\n`);
  await Deno.writeTextFile(join(dir, "registry.yaml"), yaml);
  return dir;
}

const BASE = `gateway:
  auth: none
backends:
  one:
    http: { url: "http://127.0.0.1:9/mcp", headers: { Authorization: "Bearer \${secret:api}" } }
`;

async function readyz(url: string) {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: await response.json() };
}

Deno.test("gatehouse serve answers health checks, keeps its data dir private and stops cleanly on SIGTERM", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-serve-" });
  await Deno.writeTextFile(join(dir, "registry.yaml"), "gateway: { auth: none, data_dir: ./state }\n");
  const gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
  try {
    assert.match(gatehouse.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${gatehouse.url}/healthz`);
    assert.deepEqual(await health.json(), { status: "ok" });
    const ready = await readyz(gatehouse.url);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.registry.generation, 1);
    assert.equal(Deno.statSync(join(dir, "state")).mode! & 0o777, 0o700);
  } finally {
    const status = await gatehouse.stop("SIGTERM");
    assert.equal(status.code, 0);
    assert.ok(
      gatehouse.lines.some((line) => line.includes('"gatehouse stopped"') && line.includes('"drained":true')),
    );
    for (const line of gatehouse.lines) JSON.parse(line);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse serve swaps in an edited registry and keeps the last good one on a broken edit", async () => {
  const dir = await tempRegistry(BASE);
  const gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
  try {
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      BASE + `  two:\n    stdio: { command: "true" }\n`,
    );
    const reloaded = JSON.parse(await gatehouse.waitForLine((line) => line.includes('"registry reloaded"')));
    assert.equal(reloaded.generation, 2);
    assert.deepEqual(reloaded.added, ["two"]);
    assert.deepEqual(reloaded.unchanged, ["one"]);
    assert.deepEqual(reloaded.removed, []);
    assert.equal((await readyz(gatehouse.url)).body.registry.generation, 2);

    await Deno.writeTextFile(join(dir, "registry.yaml"), BASE + "  three:\n    stdio: { command: [oops }\n");
    const rejected = JSON.parse(await gatehouse.waitForLine((line) => line.includes('"registry rejected')));
    assert.match(rejected.problems[0], /^registry\.yaml:\d+:\d+: /);
    const ready = await readyz(gatehouse.url);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.registry.generation, 2);
    assert.match(ready.body.registry.last_error.problems[0], /^registry\.yaml:\d+:\d+: /);

    await Deno.mkdir(join(dir, "policies"));
    await Deno.writeTextFile(join(dir, "registry.yaml"), BASE);
    await eventually(async () => (await readyz(gatehouse.url)).body.registry.generation === 3);
    await Deno.writeTextFile(
      join(dir, "policies", "team.yaml"),
      "- { id: team, effect: allow, subjects: ['group:team'], backends: [one] }\n",
    );
    await eventually(async () => (await readyz(gatehouse.url)).body.registry.generation === 4);
    assert.equal((await readyz(gatehouse.url)).body.registry.last_error, null);
  } finally {
    assert.equal((await gatehouse.stop()).code, 0);
    const output = gatehouse.lines.join("\n") + gatehouse.stderr();
    assert.equal(output.includes(SECRET_VALUE), false, "no secret in the log");
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse serve reloads on SIGHUP and counts a changed secret as a changed backend", async () => {
  const dir = await tempRegistry(BASE);
  const gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
  try {
    await Deno.writeTextFile(join(dir, "data", "secrets", "api"), "rotated-value\n");
    gatehouse.child.kill("SIGHUP");
    const reloaded = JSON.parse(await gatehouse.waitForLine((line) => line.includes('"registry reloaded"')));
    assert.deepEqual(reloaded.changed, ["one"]);
    assert.equal((await readyz(gatehouse.url)).body.registry.generation, 2);
  } finally {
    assert.equal((await gatehouse.stop("SIGINT")).code, 0);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse serve refuses an invalid registry with every problem and exit 1", async () => {
  const dir = await tempRegistry("gateway:\n  auth: maybe\n  listen: 0.0.0.0:1\nbackends:\n  x: {}\n");
  try {
    const { code, stderr } = await runGatehouse(["serve"], { cwd: dir });
    assert.equal(code, 1);
    assert.deepEqual(stderr.trim().split("\n"), [
      'registry.yaml:2:9: gateway.auth: must be "oauth" or "none"',
      "registry.yaml:5:6: backends.x: give exactly one of stdio, http or sse",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse serve exits 1 when its port is taken", async () => {
  const dir = await tempRegistry(BASE);
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const { code, stderr } = await runGatehouse(["serve", "--listen", `127.0.0.1:${listener.addr.port}`], {
      cwd: dir,
    });
    assert.equal(code, 1);
    assert.match(stderr, /gatehouse serve: .*(in use|Address)/i);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
