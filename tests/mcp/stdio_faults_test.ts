/**
 * End-to-end: stdio backends at fault, through the gateway. An oversized answer fails only its call, a
 * large answer does not stall the gateway, a failed start is logged with its stderr and exit code,
 * stderr is rate-limited in the log, and a process that ignores SIGTERM is killed.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import { join } from "node:path";
import { JSONRPC } from "../../src/core/jsonrpc.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import {
  connectV2,
  eventually,
  registryWith,
  startTestGateway,
  type TestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 20_000;
const MiB = 1024 * 1024;
const FIXTURE = join(ROOT, "tests", "fixtures", "stdio_faults_server.ts");

/** A stdio backend running tests/fixtures/stdio_faults_server.ts with `flags`. */
function faults(flags: string[] = [], extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { stdio: { command: Deno.execPath(), args: ["run", "-A", FIXTURE, ...flags] }, ...extra };
}

async function withGateway(
  backends: Record<string, Record<string, unknown>>,
  test: (gateway: TestGateway, client: Client) => Promise<void>,
): Promise<void> {
  const gateway = await startTestGateway(registryWith(backends));
  let client: Client | undefined;
  await withCleanup(async () => {
    client = await within(BOUND_MS, connectV2(gateway.mcpUrl, "2025-11-25"), "connect to /mcp");
    await test(gateway, client);
  }, async () => {
    await client?.close();
    await gateway.close();
  });
}

function call(client: Client, name: string, args: Record<string, unknown> = {}) {
  return within(BOUND_MS, client.callTool({ name, arguments: args }), name);
}

function processGone(pid: number): boolean {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    return /^\d+ \(.*\) Z /.test(stat); // a zombie has exited
  } catch {
    return true;
  }
}

/** The longest the event loop went without running a 5 ms timer while `work` ran. */
async function longestStallMs(work: () => Promise<unknown>): Promise<number> {
  let last = performance.now();
  let longest = 0;
  const timer = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
  }, 5);
  try {
    await work();
  } finally {
    clearInterval(timer);
  }
  return longest;
}

Deno.test("StdioTransport fails only the call whose answer is over max_response_size", async () => {
  await withGateway({ faults: faults() }, async (_gateway, client) => {
    const pid = textOf(await call(client, "faults__pid"));
    const [slow, big] = await Promise.allSettled([
      call(client, "faults__slow", { ms: 1500 }),
      call(client, "faults__big", { bytes: 17 * MiB }),
    ]);
    assert.equal(big.status, "rejected");
    const error = big.reason as Error & { code?: unknown };
    assert.equal(error.code, JSONRPC.internalError, String(error));
    assert.match(error.message, /larger than max_response_size \(16 MiB\)/);
    assert.equal(slow.status, "fulfilled", String((slow as PromiseRejectedResult).reason));
    assert.equal(textOf(slow.value), "slept 1500 ms", "the other call in flight is answered");
    assert.equal(textOf(await call(client, "faults__pid")), pid, "by the same process");
  });
});

Deno.test("StdioTransport relays an 11 MiB answer while other calls are in flight", async () => {
  await withGateway({ faults: faults() }, async (_gateway, client) => {
    const pid = textOf(await call(client, "faults__pid"));
    const [slow, big] = await Promise.allSettled([
      call(client, "faults__slow", { ms: 1000 }),
      call(client, "faults__big", { bytes: 11 * MiB }),
    ]);
    assert.equal(big.status, "fulfilled", String((big as PromiseRejectedResult).reason));
    assert.equal(textOf(big.value).length, 11 * MiB);
    assert.equal(slow.status, "fulfilled", String((slow as PromiseRejectedResult).reason));
    assert.equal(textOf(await call(client, "faults__pid")), pid, "the process goes on");
  });
});

Deno.test("StdioTransport finds the id of an oversized answer that writes it last", async () => {
  await withGateway({ faults: faults([], { max_response_size: "1MiB" }) }, async (_gateway, client) => {
    await assert.rejects(
      call(client, "faults__big", { bytes: 2 * MiB, idLast: true }),
      /larger than max_response_size \(1 MiB\)/,
    );
    assert.equal(textOf(await call(client, "faults__echo", { message: "still here" })), "still here");
  });
});

Deno.test("StdioTransport drops an oversized message of no call and logs it", async () => {
  await withGateway({ faults: faults([], { max_response_size: "1MiB" }) }, async (gateway, client) => {
    assert.equal(textOf(await call(client, "faults__big_log", { bytes: 2 * MiB })), "ok");
    const dropped = gateway.logs.find((entry) => entry.msg === "backend message dropped");
    assert.ok(dropped, "logged");
    assert.equal(dropped.backend, "faults");
    assert.ok(Number(dropped.bytes) > 2 * MiB);
  });
});

Deno.test("StdioTransport reads a 9 MiB answer without stalling the gateway", async () => {
  await withGateway({ faults: faults() }, async (_gateway, client) => {
    await call(client, "faults__pid");
    let length = 0;
    const stallMs = await longestStallMs(async () => {
      length = textOf(await call(client, "faults__big", { bytes: 9 * MiB })).length;
    });
    assert.equal(length, 9 * MiB);
    // JSON.parse and stringify of 9 MiB on the way (backend, front, this client) take tens of ms each.
    assert.ok(stallMs < 400, `the event loop stalled for ${Math.round(stallMs)} ms`);
  });
});

Deno.test("Upstream.start() logs a failed handshake's stderr and exit code", async () => {
  await withGateway({ broken: faults(["--fail-start"]) }, async (gateway, client) => {
    await assert.rejects(call(client, "broken__pid"), (error: Error & { code?: unknown }) => {
      assert.equal(error.code, JSONRPC.backendUnavailable, String(error));
      assert.match(error.message, /exited with code 7/);
      return true;
    });
    const failed = gateway.logs.find((entry) => entry.msg === "backend failed to start");
    assert.ok(failed, JSON.stringify(gateway.logs.filter((entry) => entry.backend === "broken")));
    assert.equal(failed.exit_code, 7);
    assert.ok(
      (failed.stderr as string[]).includes("fatal: STUB_API_KEY is not set"),
      JSON.stringify(failed.stderr),
    );
  });
});

Deno.test("Upstream logs at most 20 stderr lines per 10 s of a backend, then how many it left out", async () => {
  const gateway = await startTestGateway(registryWith({ chatty: faults(["--stderr-lines", "100"]) }));
  await withCleanup(async () => {
    const client = await within(BOUND_MS, connectV2(gateway.mcpUrl, "2025-11-25"), "connect to /mcp");
    try {
      await call(client, "chatty__pid");
    } finally {
      await client.close();
    }
  }, () => gateway.close());
  const lines = gateway.logs.filter((entry) => entry.msg === "backend stderr" && entry.backend === "chatty");
  assert.equal(lines.length, 20, JSON.stringify(lines.slice(0, 3)));
  const suppressed = gateway.logs.find((entry) => entry.msg === "backend stderr suppressed");
  assert.ok(suppressed, "the rest is counted");
  assert.equal(suppressed.backend, "chatty");
  assert.equal(suppressed.lines, 81); // "starting" and 100 numbered lines, less the 20 logged
});

Deno.test("StdioTransport.close() kills a backend that ignores SIGTERM and the end of stdin", async () => {
  const gateway = await startTestGateway(registryWith({ stubborn: faults(["--stubborn"]) }));
  let pid = 0;
  try {
    await withCleanup(async () => {
      const client = await within(BOUND_MS, connectV2(gateway.mcpUrl, "2025-11-25"), "connect to /mcp");
      try {
        pid = Number(textOf(await call(client, "stubborn__pid")));
      } finally {
        await client.close();
      }
    }, () => gateway.close());
    assert.ok(pid > 0);
    // Gateway shutdown awaits each process's end, so it is gone already; the wait only bounds a failure.
    await eventually(() => Promise.resolve(processGone(pid)), 2000).catch(() => {});
    assert.ok(processGone(pid), `process ${pid} still runs after the gateway stopped`);
  } finally {
    if (pid > 0 && !processGone(pid)) Deno.kill(pid, "SIGKILL");
  }
});
