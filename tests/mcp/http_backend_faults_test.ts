/**
 * An HTTP backend's faults, end to end: a backend that restarts and forgets its sessions, one that dies
 * and comes back (status and gauges follow its health), and what /metrics counts of restarts and timeouts.
 */
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { join } from "node:path";
import { ROOT } from "../helpers/gatehouse_process.ts";
import {
  eventually,
  freePort,
  misbehaving,
  registryWith,
  startTestGateway,
  type TestGateway,
  textOf,
  within,
} from "../helpers/mcp_clients.ts";

const FIXTURE = join(ROOT, "tests", "fixtures", "restartable_http_server.ts");
const CONFIG = join(ROOT, "deno.json");

interface RestartableBackend {
  readonly url: string;
  /** Kills the process (SIGKILL: it forgets every session) and waits for it to exit. */
  kill(): Promise<void>;
  /** Starts a new process on the same port. */
  start(): Promise<void>;
}

/** The fixture on a fixed free port of 127.0.0.1, started once; `kill` and `start` restart it. */
async function restartableBackend(): Promise<RestartableBackend> {
  const port = freePort();
  let child: Deno.ChildProcess | undefined;
  const kill = async () => {
    if (!child) return;
    const running = child;
    child = undefined;
    try {
      running.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await running.status;
    await running.stdout.cancel().catch(() => {});
  };
  const start = async () => {
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--config=${CONFIG}`, FIXTURE, "--port", String(port)],
      stdin: "null",
      stdout: "piped",
      stderr: "null",
    }).spawn();
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    try {
      await within(
        20_000,
        (async () => {
          while (!text.includes("\n")) {
            const { value, done } = await reader.read();
            if (done) throw new Error("the fixture exited before listening");
            text += value;
          }
        })(),
        "restartable backend start",
      );
    } catch (error) {
      await kill();
      throw error;
    } finally {
      reader.releaseLock();
    }
  };
  await start();
  return { url: `http://127.0.0.1:${port}/mcp`, kill, start };
}

async function connect(gateway: TestGateway): Promise<Client> {
  const client = new Client({ name: "faults-test", version: "1.0.0" });
  await client.connect(new StreamableHTTPClientTransport(new URL(gateway.mcpUrl)));
  return client;
}

async function whoami(client: Client): Promise<number> {
  const result = await client.callTool({ name: "r__whoami", arguments: {} });
  assert.ok(!result.isError, `whoami failed: ${JSON.stringify(result)}`);
  return JSON.parse(textOf(result)).pid;
}

interface BackendRow {
  name: string;
  state: string;
  last_error?: string | null;
}

async function backendRow(gateway: TestGateway, name: string): Promise<BackendRow> {
  const response = await fetch(`${gateway.gateway.url}/status.json`);
  assert.equal(response.status, 200);
  const body = await response.json() as { backends: BackendRow[] };
  const row = body.backends.find((backend) => backend.name === name);
  assert.ok(row, `backend ${name} in /status.json`);
  return row;
}

/** One sample of /metrics (summed over series matching `labels`). */
async function metric(gateway: TestGateway, name: string, labels: Record<string, string>): Promise<number> {
  const text = await (await fetch(`${gateway.gateway.url}/metrics`)).text();
  let sum = 0;
  for (const line of text.split("\n")) {
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const sampleLabels = Object.fromEntries(
      [...(match[2] ?? "").matchAll(/([a-zA-Z_]\w*)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1]!, m[2]!]),
    );
    if (Object.entries(labels).every(([key, value]) => sampleLabels[key] === value)) sum += Number(match[3]);
  }
  return sum;
}

Deno.test("Upstream.request() starts a new backend session when a restarted backend answers 404", async () => {
  const backend = await restartableBackend();
  const gateway = await startTestGateway(registryWith({ r: { http: { url: backend.url } } }));
  const client = await connect(gateway);
  try {
    const before = await whoami(client);
    await backend.kill();
    await backend.start();
    // MCP 2025-11-25 transports §Session Management: a 404 for the session means start a new one.
    const after = await within(10_000, whoami(client), "the call after the restart");
    assert.notEqual(after, before, "answered by the new process");
    assert.equal(await whoami(client), after, "and the new session keeps serving");
    assert.equal(await metric(gateway, "gatehouse_backend_restarts_total", { backend: "r" }), 1);
  } finally {
    await client.close();
    await gateway.close();
    await backend.kill();
  }
});

Deno.test("BackendPool.checkHealth() reports a dead HTTP backend down, and up again with last_error cleared", async () => {
  const backend = await restartableBackend();
  const gateway = await startTestGateway(registryWith({ r: { http: { url: backend.url } } }));
  const client = await connect(gateway);
  try {
    await whoami(client);
    assert.equal((await backendRow(gateway, "r")).state, "up");
    assert.equal(await metric(gateway, "gatehouse_backend_up", { backend: "r" }), 1);

    await backend.kill();
    await gateway.gateway.pool.checkHealth();
    await eventually(async () => (await backendRow(gateway, "r")).state === "down", 10_000);
    const down = await backendRow(gateway, "r");
    assert.match(down.last_error ?? "", /health check failed/);
    assert.equal(await metric(gateway, "gatehouse_backend_up", { backend: "r" }), 0);

    await backend.start();
    await gateway.gateway.pool.checkHealth();
    await eventually(async () => (await backendRow(gateway, "r")).state === "up", 10_000);
    assert.equal((await backendRow(gateway, "r")).last_error, null, "a passing check clears the error");
    assert.equal(await metric(gateway, "gatehouse_backend_up", { backend: "r" }), 1);
    await whoami(client);
  } finally {
    await client.close();
    await gateway.close();
    await backend.kill();
  }
});

Deno.test("Upstream.request() marks its backend down when a call cannot reach it", async () => {
  const backend = await restartableBackend();
  const gateway = await startTestGateway(registryWith({ r: { http: { url: backend.url } } }));
  const client = await connect(gateway);
  try {
    await whoami(client);
    await backend.kill();
    const failed = await client.callTool({ name: "r__whoami", arguments: {} }).then(
      (result) => Boolean(result.isError),
      () => true,
    );
    assert.ok(failed, "the call fails while the backend is dead");
    const row = await backendRow(gateway, "r");
    assert.equal(row.state, "down");
    assert.ok(row.last_error, "with the reason");
  } finally {
    await client.close();
    await gateway.close();
    await backend.kill();
  }
});

Deno.test("metrics: a stdio process that died counts as a restart of its backend", async () => {
  const gateway = await startTestGateway(registryWith({ flaky: misbehaving("flaky") }));
  const client = await connect(gateway);
  try {
    await client.callTool({ name: "flaky__pid", arguments: {} });
    await client.callTool({ name: "flaky__crash", arguments: {} }).catch(() => {});
    await eventually(async () =>
      await metric(gateway, "gatehouse_backend_restarts_total", { backend: "flaky" }) === 1
    );
    const again = await client.callTool({ name: "flaky__pid", arguments: {} });
    assert.ok(!again.isError, "a new process answers");
  } finally {
    await client.close();
    await gateway.close();
  }
});

Deno.test("metrics: a call that times out is counted apart from other errors", async () => {
  const backend = await restartableBackend();
  const gateway = await startTestGateway(registryWith({ r: { http: { url: backend.url }, timeout: "1s" } }));
  const client = await connect(gateway);
  try {
    const result = await client.callTool({ name: "r__sleep", arguments: { ms: 3000 } }).then(
      (result) => JSON.stringify(result),
      (error) => String(error),
    );
    assert.match(result, /did not answer/);
    assert.equal(
      await metric(gateway, "gatehouse_backend_timeouts_total", { backend: "r", method: "tools/call" }),
      1,
    );
  } finally {
    await client.close();
    await gateway.close();
    await backend.kill();
  }
});
