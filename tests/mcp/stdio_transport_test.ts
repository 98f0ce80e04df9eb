/**
 * Unit tests of the stdio transport: line framing, the id scan of oversized lines, the stderr rate
 * limit, and the transport itself against tests/fixtures/stdio_faults_server.ts (no gateway).
 */
import assert from "node:assert/strict";
import type { JSONRPCMessage } from "@modelcontextprotocol/client";
import { join } from "node:path";
import {
  findTopLevelId,
  findTopLevelMember,
  findTrailingId,
  formatBytes,
  LineFramer,
} from "../../src/mcp/backends/stdio_framing.ts";
import { StderrRateLimit } from "../../src/mcp/backends/stderr_rate_limit.ts";
import { StdioTransport } from "../../src/mcp/backends/stdio_transport.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";

const FIXTURE = join(ROOT, "tests", "fixtures", "stdio_faults_server.ts");
const MiB = 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function framer(maxLineBytes: number) {
  const lines: string[] = [];
  const oversized: { head: string; tail?: string; bytes?: number }[] = [];
  const framer = new LineFramer(maxLineBytes, {
    line: (line) => lines.push(decoder.decode(line)),
    oversized: (head) => {
      oversized.push({ head: decoder.decode(head) });
      return undefined;
    },
    oversizedEnd: (tail, bytes) => Object.assign(oversized.at(-1)!, { tail: decoder.decode(tail), bytes }),
  });
  return { framer, lines, oversized };
}

Deno.test("LineFramer splits lines across and within chunks", () => {
  const { framer: lineFramer, lines } = framer(1024);
  for (const chunk of ['{"a":', '1}\n{"b":2}\n\n{"c"', ":3}\n"]) lineFramer.push(encoder.encode(chunk));
  assert.deepEqual(lines, ['{"a":1}', '{"b":2}', '{"c":3}']);
});

Deno.test("LineFramer frames a 9 MiB line in small chunks in linear time", () => {
  const { framer: lineFramer, lines } = framer(16 * MiB);
  const chunk = encoder.encode("x".repeat(16 * 1024));
  const started = performance.now();
  for (let sent = 0; sent < 9 * MiB; sent += chunk.length) lineFramer.push(chunk);
  lineFramer.push(encoder.encode("\n"));
  const elapsedMs = performance.now() - started;
  assert.equal(lines[0]?.length, 9 * MiB);
  assert.ok(elapsedMs < 250, `took ${Math.round(elapsedMs)} ms`);
});

Deno.test("LineFramer drops a line over the limit, keeping its ends, and goes on", () => {
  const { framer: lineFramer, lines, oversized } = framer(64 * 1024);
  lineFramer.push(encoder.encode('{"id":1,"x":"'));
  for (let index = 0; index < 100; index++) lineFramer.push(encoder.encode("y".repeat(4096)));
  lineFramer.push(encoder.encode('","id2":9}\n{"ok":true}\n'));
  assert.deepEqual(lines, ['{"ok":true}']);
  assert.equal(oversized.length, 1);
  assert.ok(oversized[0]!.head.startsWith('{"id":1,'));
  assert.ok(oversized[0]!.head.length <= 8 * 1024);
  assert.ok(oversized[0]!.tail!.endsWith('","id2":9}'));
  assert.ok(oversized[0]!.tail!.length <= 8 * 1024);
  assert.equal(oversized[0]!.bytes, 13 + 100 * 4096 + 10);
});

Deno.test("findTopLevelId() reads the object's own id, not one nested or inside a string", () => {
  assert.equal(findTopLevelId('{"jsonrpc":"2.0","id":42,"result":{"id":1}}'), 42);
  assert.equal(findTopLevelId('{"result":{"id":1,"s":"\\"id\\":2"},"id":"abc","x'), "abc");
  assert.equal(findTopLevelId('{"result":{"id":1,"text":"xxxxxxxx'), undefined);
  assert.equal(findTopLevelId('{"jsonrpc":"2.0","id":12'), undefined, "an id cut off is not guessed");
});

Deno.test("findTrailingId() reads an id written last", () => {
  assert.equal(findTrailingId('xxx"}]},"id":7}'), 7);
  assert.equal(findTrailingId('xxx"}]},"id":"a-1","jsonrpc":"2.0"}'), "a-1");
  assert.equal(findTrailingId('xxx","id":7}}'), undefined, "a nested id is not the message's");
});

Deno.test("formatBytes() writes sizes as a registry would", () => {
  assert.equal(formatBytes(16 * MiB), "16 MiB");
  assert.equal(formatBytes(512 * 1024), "512 KiB");
  assert.equal(formatBytes(1000), "1000 bytes");
});

Deno.test("StderrRateLimit admits 20 lines per window, then counts the rest", () => {
  let now = 0;
  const limit = new StderrRateLimit({ limit: 20, windowMs: 10_000, now: () => now });
  const admitted = Array.from({ length: 25 }, () => limit.admit().log);
  assert.equal(admitted.filter(Boolean).length, 20);
  now = 10_000;
  assert.deepEqual(limit.admit(), { log: true, suppressed: 5 });
  assert.equal(limit.flush(), 0);
});

/** A started transport on the fixture, with what it received. */
async function startFixture(flags: string[], maxResponseBytes = 16 * MiB) {
  const transport = new StdioTransport({
    command: Deno.execPath(),
    args: ["run", "-A", FIXTURE, ...flags],
    env: { PATH: Deno.env.get("PATH") ?? "", HOME: Deno.env.get("HOME") ?? "" },
    maxResponseBytes,
    stopStepMs: 300,
  });
  const messages: JSONRPCMessage[] = [];
  const waiting = new Map<unknown, (message: JSONRPCMessage) => void>();
  const closed = Promise.withResolvers<void>();
  const stderr: string[] = [];
  transport.onmessage = (message) => {
    messages.push(message);
    if ("id" in message) waiting.get(message.id)?.(message);
  };
  transport.onclose = () => closed.resolve();
  transport.onstderr = (line) => stderr.push(line);
  await transport.start();
  const request = (id: number, method: string, params: Record<string, unknown> = {}) => {
    const answered = new Promise<JSONRPCMessage>((resolve) => waiting.set(id, resolve));
    return transport.send({ jsonrpc: "2.0", id, method, params }).then(() => answered);
  };
  return { transport, messages, stderr, closed: closed.promise, request };
}

Deno.test("StdioTransport answers an oversized answer's call with an error and serves the next", async () => {
  const { transport, request } = await startFixture([], MiB);
  try {
    const dropped: unknown[] = [];
    transport.ondropped = (line) => dropped.push(line);
    const big = await request(1, "tools/call", { name: "big", arguments: { bytes: 2 * MiB } });
    assert.deepEqual(big, {
      jsonrpc: "2.0",
      id: 1,
      error: { code: -32603, message: "The backend's answer is larger than max_response_size (1 MiB)" },
    });
    const echo = await request(2, "tools/call", { name: "echo", arguments: { message: "next" } });
    assert.deepEqual((echo as { result?: unknown }).result, { content: [{ type: "text", text: "next" }] });
    assert.equal(dropped.length, 1);
  } finally {
    await transport.close();
  }
});

Deno.test("StdioTransport delivers many calls sent at once whole and in order, whatever the writes carry", async () => {
  const { transport, request } = await startFixture([]);
  try {
    // Sent in one go: while the first write is in flight the others gather into the next ones.
    const answers = await Promise.all(
      Array.from(
        { length: 200 },
        (_, index) =>
          request(100 + index, "tools/call", { name: "echo", arguments: { message: `m${index}` } }),
      ),
    );
    answers.forEach((answer, index) => {
      assert.equal((answer as { id?: unknown }).id, 100 + index);
      assert.deepEqual((answer as { result?: unknown }).result, {
        content: [{ type: "text", text: `m${index}` }],
      });
    });
  } finally {
    await transport.close();
  }
});

Deno.test("StdioTransport.close() kills a process that ignores SIGTERM and stdin EOF", async () => {
  const { transport, closed, request, stderr } = await startFixture(["--stubborn"]);
  await request(1, "ping");
  const pid = transport.pid!;
  await transport.close();
  await closed;
  assert.equal(transport.exit?.signal, "SIGKILL");
  assert.ok(stderr.includes("ignoring SIGTERM"), JSON.stringify(stderr));
  assert.throws(() => Deno.kill(pid, "SIGCONT"), "the process is gone");
});

Deno.test("StdioTransport reports how a process that fails its handshake ended", async () => {
  const { transport, closed, stderr } = await startFixture(["--fail-start"]);
  await transport.send({ jsonrpc: "2.0", id: 1, method: "initialize", params: {} });
  await closed;
  assert.deepEqual(transport.exit, { code: 7, signal: null });
  assert.ok(transport.recentStderr.includes("fatal: STUB_API_KEY is not set"));
  assert.deepEqual(stderr, transport.recentStderr);
  await transport.close();
});

Deno.test("StdioTransport.start() rejects a command that does not exist", async () => {
  const transport = new StdioTransport({
    command: "/nonexistent/gatehouse-no-such-command",
    args: [],
    env: {},
    maxResponseBytes: MiB,
  });
  await assert.rejects(transport.start(), /Cannot start "\/nonexistent\/gatehouse-no-such-command"/);
  await transport.close();
});

Deno.test("findTopLevelMember() tells a backend's own request by its method", () => {
  assert.equal(
    findTopLevelMember('{"jsonrpc":"2.0","id":0,"method":"sampling/createMessage","params":{"x', "method"),
    "sampling/createMessage",
  );
  assert.equal(findTopLevelMember('{"jsonrpc":"2.0","id":0,"result":{"method":"x"', "method"), undefined);
});
