/**
 * End-to-end: backends that crash, hang, cannot start, or go idle. Every wait is bounded: a failing
 * backend must produce an error, never a hung client. Each case has its own gateway, so that one
 * case's broken backend cannot disturb another.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import { JSONRPC } from "../../src/core/jsonrpc.ts";
import {
  connectV2,
  eventually,
  misbehaving,
  registryWith,
  startTestGateway,
  type TestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 10_000;

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

async function pidOf(client: Client, tool: string): Promise<number> {
  const result = await within(BOUND_MS, client.callTool({ name: tool, arguments: {} }), `${tool} call`);
  return Number(textOf(result));
}

async function statusOf(gateway: TestGateway, backend: string) {
  const status = (await gateway.gateway.pool.status()).find((entry) => entry.name === backend);
  assert.ok(status, `no status for ${backend}`);
  return status;
}

Deno.test("gateway answers a call whose stdio backend dies with an error, and restarts the backend", async () => {
  await withGateway({ flaky: misbehaving("flaky") }, async (gateway, client) => {
    const before = await pidOf(client, "flaky__pid");
    await assert.rejects(
      within(BOUND_MS, client.callTool({ name: "flaky__crash", arguments: {} }), "the crashing call"),
      (error: Error & { code?: unknown }) => {
        assert.equal(error.code, JSONRPC.backendUnavailable, String(error));
        assert.match(error.message, /flaky/);
        return true;
      },
    );
    // The very next call, at once: it may wait out the restart backoff, but it must get an answer.
    const after = await pidOf(client, "flaky__pid");
    assert.notEqual(after, before, "a new process answers");
    const status = await statusOf(gateway, "flaky");
    assert.equal(status.state, "up");
    assert.equal(status.restarts, 1);
  });
});

Deno.test("gateway times out a call to a hung backend while other backends keep answering", async () => {
  await withGateway({
    stuck: misbehaving("stuck", { timeout: "1s" }),
    steady: misbehaving("steady"),
  }, async (gateway, client) => {
    const started = performance.now();
    let hungSettled = false;
    const hung = client.callTool({ name: "stuck__hang", arguments: {} }).finally(() => hungSettled = true);
    const failed = assert.rejects(
      within(BOUND_MS, hung, "the hung call"),
      (error: Error & { code?: unknown }) => {
        assert.equal(
          error.code,
          JSONRPC.backendTimeout,
          `a timeout error, got ${error.code}: ${error.message}`,
        );
        assert.match(error.message, /stuck.*did not answer tools\/call within 1 s/);
        return true;
      },
    );
    // Meanwhile, the other backend answers, several times, before the hung call has given up.
    for (let round = 0; round < 3; round++) {
      const echoed = await within(
        BOUND_MS,
        client.callTool({ name: "steady__echo", arguments: { message: `round ${round}` } }),
        "a call to a healthy backend while another hangs",
      );
      assert.equal(textOf(echoed), `steady: round ${round}`);
    }
    assert.equal(hungSettled, false, "the healthy backend answered while the other one hung");
    await failed;
    const elapsedMs = performance.now() - started;
    assert.ok(elapsedMs >= 900 && elapsedMs < 5000, `timed out after ${Math.round(elapsedMs)} ms`);
    // The operator hears of it at warn, with the backend, the method and the bound.
    const logged = gateway.logs.filter((line) => line.msg === "backend call timed out");
    assert.deepEqual(
      logged.map(({ level, backend, method, timeout_seconds }) => ({
        level,
        backend,
        method,
        timeout_seconds,
      })),
      [{ level: "warn", backend: "stuck", method: "tools/call", timeout_seconds: 1 }],
    );
    // The hung backend's process is still usable for other calls.
    const echoed = await within(
      BOUND_MS,
      client.callTool({ name: "stuck__echo", arguments: { message: "later" } }),
    );
    assert.equal(textOf(echoed), "stuck: later");
  });
});

Deno.test("gateway leaves a backend that cannot start out of /mcp and fails its calls clearly", async () => {
  await withGateway({
    missing: { stdio: { command: "/nonexistent/gatehouse-test-no-such-command" } },
    steady: misbehaving("steady"),
  }, async (gateway, client) => {
    const names = (await within(5000, client.listTools(), "tools/list with a backend down")).tools.map((
      tool,
    ) => tool.name);
    assert.ok(names.includes("steady__echo"), names.join());
    assert.ok(!names.some((name) => name.startsWith("missing__")), names.join());
    await assert.rejects(
      within(
        BOUND_MS,
        client.callTool({ name: "missing__echo", arguments: { message: "x" } }),
        "a call to it",
      ),
      (error: Error & { code?: unknown }) => {
        assert.equal(error.code, JSONRPC.backendUnavailable, String(error));
        assert.match(error.message, /Backend "missing"/);
        return true;
      },
    );
    // A second list is as quick, and the healthy backend answers throughout.
    const again = await within(5000, client.listTools(), "tools/list again");
    assert.ok(again.tools.some((tool) => tool.name === "steady__echo"));
    const echoed = await within(
      BOUND_MS,
      client.callTool({ name: "steady__echo", arguments: { message: "ok" } }),
    );
    assert.equal(textOf(echoed), "steady: ok");
    const status = await statusOf(gateway, "missing");
    assert.equal(status.state, "down");
    assert.match(status.lastError ?? "", /ENOENT|not found|No such file/i);
    assert.equal(status.restarts, 0, "a process that never started has not been restarted");
    // A session opened now is not held up by the backend that is down.
    const late = await within(
      5000,
      connectV2(gateway.mcpUrl, "2025-11-25"),
      "connect while a backend is down",
    );
    await late.close();
  });
});

Deno.test("gateway stops a stdio backend after idle_timeout and starts it again on the next call", async () => {
  await withGateway({ idler: misbehaving("idler", { idle_timeout: "1s" }) }, async (gateway, client) => {
    const first = await pidOf(client, "idler__pid");
    assert.equal((await statusOf(gateway, "idler")).processes, 1);
    await eventually(async () => {
      const status = await statusOf(gateway, "idler");
      return status.processes === 0 && status.state === "idle";
    }, BOUND_MS);
    const second = await pidOf(client, "idler__pid");
    assert.notEqual(second, first, "a new process answers");
    const status = await statusOf(gateway, "idler");
    assert.equal(status.state, "up");
    assert.equal(status.processes, 1);
    assert.equal(status.restarts, 0, "an idle stop is not a failure");
  });
});
