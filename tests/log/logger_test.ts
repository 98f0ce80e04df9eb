/** The logger: JSON lines, levels, child fields, and redaction of secret-named fields (its fast path too). */
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

Deno.test("createLogger() redacts flat secret-named fields on its fast path, on every line and from child fields", () => {
  const { log, lines, entries } = capture();
  const child = log.child({ session_token: "child-secret", backend: "github" });
  for (let round = 0; round < 2; round++) {
    child.info("request", {
      method: "POST",
      status: 200,
      ok: true,
      access_token: "at-secret",
      Authorization: "Bearer flat-secret",
      api_key: "key-secret",
      code: 12345,
      client_secret: false,
      big: 10n,
    });
  }
  const text = lines.join("");
  for (const secret of ["child-secret", "at-secret", "flat-secret", "key-secret", "12345"]) {
    assert.equal(text.includes(secret), false, secret);
  }
  for (const entry of entries()) {
    assert.deepEqual(entry, {
      time: "1970-01-01T00:00:00.000Z",
      level: "info",
      msg: "request",
      session_token: REDACTED,
      backend: "github",
      method: "POST",
      status: 200,
      ok: true,
      access_token: REDACTED,
      Authorization: REDACTED,
      api_key: REDACTED,
      code: REDACTED,
      client_secret: REDACTED,
      big: "10",
    });
  }
});

Deno.test("createLogger() keeps redacting once its memory of field names is full", () => {
  const { log, entries } = capture();
  for (let n = 0; n < 1100; n++) log.info("many", { [`field_${n}`]: n, [`refresh_token_${n}`]: `rt-${n}` });
  for (const [n, entry] of entries().entries()) {
    assert.equal(entry[`field_${n}`], n);
    assert.equal(entry[`refresh_token_${n}`], REDACTED);
  }
});

Deno.test("createLogger() writes fields as a spread would: later keys win, __proto__ is data", () => {
  const { log, entries } = capture();
  log.child({ backend: "a", nested: { password: "p" } }).warn("m", {
    backend: "b",
    msg: "overridden",
    ["__proto__"]: { polluted: true },
  } as Record<string, unknown>);
  const [entry] = entries();
  assert.deepEqual(Object.keys(entry), ["time", "level", "msg", "backend", "nested", "__proto__"]);
  assert.equal(entry.backend, "b");
  assert.equal(entry.msg, "overridden");
  assert.deepEqual(entry.nested, { password: REDACTED });
  assert.equal(({} as Record<string, unknown>).polluted, undefined);
});
