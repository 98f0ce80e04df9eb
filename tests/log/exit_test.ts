/** The process's buffered log lines reach stdout however the process ends: normally, exit, uncaught error. */
import assert from "node:assert/strict";
import { fileURLToPath } from "node:url";

const FIXTURE = fileURLToPath(new URL("./_log_then_exit.ts", import.meta.url));

async function runFixture(how: "exit" | "uncaught" | "end", lines: number) {
  const output = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", FIXTURE, how, String(lines)],
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  const stdout = decoder.decode(output.stdout);
  return { code: output.code, stdout, stderr: decoder.decode(output.stderr) };
}

/** Asserts that stdout is whole JSON lines, the numbered ones 0..count-1 in order; returns the others. */
function assertNumberedLines(stdout: string, count: number): Record<string, unknown>[] {
  assert.ok(stdout.endsWith("\n"), "stdout ends with a whole line");
  const entries = stdout.slice(0, -1).split("\n").map((line) => JSON.parse(line));
  const seqs = entries.filter((entry) => entry.msg === "line").map((entry) => entry.seq);
  assert.equal(seqs.length, count, `${count} numbered lines, got ${seqs.length}`);
  seqs.forEach((seq, index) => assert.equal(seq, index));
  return entries.filter((entry) => entry.msg !== "line");
}

Deno.test("createLogger() lines all reach stdout when the process calls Deno.exit(0) right after logging", async () => {
  const { code, stdout, stderr } = await runFixture("exit", 5000);
  assert.equal(code, 0, stderr);
  assert.deepEqual(assertNumberedLines(stdout, 5000), []);
});

Deno.test("createLogger() lines all reach stdout in order when the process ends by itself", async () => {
  const { code, stdout, stderr } = await runFixture("end", 10_000);
  assert.equal(code, 0, stderr);
  assert.deepEqual(assertNumberedLines(stdout, 10_000), []);
});

Deno.test("exitOnUncaughtErrors() logs the error, lets every buffered line out, then exits 1", async () => {
  const { code, stdout, stderr } = await runFixture("uncaught", 5000);
  assert.equal(code, 1, stderr);
  const others = assertNumberedLines(stdout, 5000);
  assert.equal(others.length, 1, JSON.stringify(others));
  assert.equal(others[0]!.msg, "uncaught error; exiting");
  assert.deepEqual(others[0]!.error, { name: "Error", message: "boom" });
  assert.match(stderr, /error: Uncaught Error: boom/);
});
