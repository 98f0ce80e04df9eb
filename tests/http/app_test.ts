import assert from "node:assert/strict";
import { createRegistryHolder } from "../../src/config/current.ts";
import { loadRegistry } from "../../src/config/load.ts";
import { createApp } from "../../src/http/app.ts";
import { createLogger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/store.ts";

async function setup(yaml = "gateway: { max_body_size: 64 }\n") {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-app-" });
  await Deno.writeTextFile(`${dir}/registry.yaml`, yaml);
  const loaded = await loadRegistry(`${dir}/registry.yaml`);
  assert.ok(loaded.ok);
  const holder = createRegistryHolder(loaded.registry, { now: () => 1_000 });
  const store = openStore(":memory:");
  const lines: string[] = [];
  const app = createApp({
    holder,
    store,
    log: createLogger({ write: (line) => lines.push(line) }),
    now: () => 2_000,
  });
  return {
    dir,
    holder,
    store,
    app,
    lines,
    async [Symbol.asyncDispose]() {
      store.close();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("GET /healthz answers while the process is alive", async () => {
  await using env = await setup();
  const response = await env.app.request("/healthz");
  assert.equal(response.status, 200);
  assert.deepEqual(await response.json(), { status: "ok" });
});

Deno.test("GET /readyz reports the registry generation and no error", async () => {
  await using env = await setup();
  const response = await env.app.request("/readyz");
  assert.equal(response.status, 200);
  const body = await response.json();
  assert.equal(body.status, "ready");
  assert.equal(body.registry.generation, 1);
  assert.equal(body.registry.loaded_at, new Date(1_000).toISOString());
  assert.equal(body.registry.last_error, null);
  assert.equal(body.store.open, true);
});

Deno.test("GET /readyz shows the last reload error with file:line:col while the old generation serves", async () => {
  await using env = await setup();
  await Deno.writeTextFile(`${env.dir}/registry.yaml`, "gateway:\n  listen: nowhere\n");
  const outcome = await env.holder.apply(await loadRegistry(`${env.dir}/registry.yaml`));
  assert.equal(outcome.ok, false);
  const body = await (await env.app.request("/readyz")).json();
  assert.equal(body.registry.generation, 1);
  assert.equal(body.registry.last_error.problems.length, 1);
  assert.match(
    body.registry.last_error.problems[0],
    /registry\.yaml:2:11: gateway\.listen: expected HOST:PORT/,
  );
});

Deno.test("GET /readyz is 503 once the store is closed", async () => {
  await using env = await setup();
  env.store.close();
  const response = await env.app.request("/readyz");
  assert.equal(response.status, 503);
  assert.equal((await response.json()).status, "not_ready");
});

Deno.test("createApp() answers unknown paths with a JSON 404", async () => {
  await using env = await setup();
  const response = await env.app.request("/nope");
  assert.equal(response.status, 404);
  assert.deepEqual(await response.json(), { error: "not_found", error_description: "No such endpoint" });
});

Deno.test("createApp() refuses bodies over gateway.max_body_size with 413", async () => {
  await using env = await setup();
  env.app.post("/echo", async (c) => c.text(await c.req.text()));
  const small = await env.app.request("/echo", { method: "POST", body: "x".repeat(64) });
  assert.equal(small.status, 200);
  assert.equal(await small.text(), "x".repeat(64), "the body read for the check is handed on");
  const large = await env.app.request("/echo", { method: "POST", body: "x".repeat(65) });
  assert.equal(large.status, 413);
  assert.equal((await large.json()).error, "payload_too_large");
  // A declared length over the limit is refused before the body is read.
  const declared = await env.app.request("/echo", {
    method: "POST",
    headers: { "content-length": "65" },
    body: "x".repeat(65),
  });
  assert.equal(declared.status, 413);
  assert.equal((await declared.json()).error, "payload_too_large");
});

Deno.test("createApp() hides an internal error's message from the client and logs it", async () => {
  await using env = await setup();
  env.app.get("/boom", () => {
    throw new Error("database path /secret/place exploded");
  });
  const response = await env.app.request("/boom");
  assert.equal(response.status, 500);
  const text = await response.text();
  assert.equal(text.includes("exploded"), false);
  assert.deepEqual(JSON.parse(text), { error: "server_error", error_description: "Internal error" });
  assert.ok(env.lines.some((line) => line.includes("exploded") && line.includes('"level":"error"')));
});

Deno.test("createApp() logs each request with method, path, status and duration, never the query", async () => {
  await using env = await setup();
  await env.app.request("/nope?ticket=abc123");
  const entry = env.lines.map((line) => JSON.parse(line)).find((line) => line.msg === "request");
  assert.equal(entry.path, "/nope");
  assert.equal(entry.status, 404);
  assert.equal(typeof entry.duration_ms, "number");
  assert.equal(env.lines.join("").includes("abc123"), false);
});
