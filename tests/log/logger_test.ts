import assert from "node:assert/strict";
import { createLogger, redact, REDACTED } from "../../src/log/logger.ts";

function capture(level?: "debug" | "info" | "warn" | "error") {
  const lines: string[] = [];
  const log = createLogger({ level, write: (line) => lines.push(line), now: () => new Date(0) });
  return { log, lines, entries: () => lines.map((line) => JSON.parse(line)) };
}

Deno.test("createLogger() writes one JSON object per line with time, level and message", () => {
  const { log, lines, entries } = capture();
  log.info("hello", { backend: "everything", count: 2 });
  assert.equal(lines.length, 1);
  assert.ok(lines[0]!.endsWith("\n"));
  assert.equal(lines[0]!.trimEnd().includes("\n"), false);
  assert.deepEqual(entries()[0], {
    time: "1970-01-01T00:00:00.000Z",
    level: "info",
    msg: "hello",
    backend: "everything",
    count: 2,
  });
});

Deno.test("createLogger() redacts secret-named fields at any depth", () => {
  const { log, lines, entries } = capture();
  log.info("sign-in", {
    user: "alice",
    password: "hunter2",
    headers: { Authorization: "Bearer abc.def", "content-type": "text/plain" },
    client: { client_secret: "s3cret", id: "ci" },
    list: [{ refresh_token: "rt-1" }],
    cookie: "sid=1",
    code_verifier: "v",
  });
  const text = lines.join("");
  for (const secret of ["hunter2", "abc.def", "s3cret", "rt-1", "sid=1"]) {
    assert.equal(text.includes(secret), false, secret);
  }
  const [entry] = entries();
  assert.equal(entry.password, REDACTED);
  assert.equal(entry.headers.Authorization, REDACTED);
  assert.equal(entry.headers["content-type"], "text/plain");
  assert.equal(entry.client.client_secret, REDACTED);
  assert.equal(entry.client.id, "ci");
  assert.equal(entry.list[0].refresh_token, REDACTED);
  assert.equal(entry.code_verifier, REDACTED);
});

Deno.test("createLogger() reduces errors to name and message and drops levels below the minimum", () => {
  const { log, entries } = capture("warn");
  log.info("ignored");
  log.debug("ignored");
  log.error("failed", { error: new TypeError("bad thing") });
  assert.deepEqual(entries().map((entry) => entry.msg), ["failed"]);
  assert.deepEqual(entries()[0].error, { name: "TypeError", message: "bad thing" });
  assert.equal(JSON.stringify(entries()[0]).includes("stack"), false);
});

Deno.test("createLogger().child() adds its fields to every line", () => {
  const { log, entries } = capture();
  log.child({ backend: "github" }).warn("stderr", { line: "x" });
  assert.equal(entries()[0].backend, "github");
  assert.equal(entries()[0].level, "warn");
});

Deno.test("redact() leaves values without secret keys as they are", () => {
  assert.deepEqual(redact({ a: [1, "two", { b: null }] }), { a: [1, "two", { b: null }] });
});
