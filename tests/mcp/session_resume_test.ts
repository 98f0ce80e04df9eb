/**
 * 2025-era sessions across replicas, end to end: two gateway processes share one data directory (SQLite,
 * the same code path as replicas on one PostgreSQL store). A session opened on the first continues on the
 * second once the first is killed, without a new `initialize`; another user's token, or an id no process
 * opened, gets 404 there; DELETE ends the session for every process.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { type GatehouseProcess, startGatehouse } from "../helpers/gatehouse_process.ts";
import {
  ALLOW_EVERYONE,
  freePort,
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";
import { basic } from "../oauth/_flow.ts";

const BOUND_MS = 15_000;
const AGENTS = {
  alice: { id: "alice-agent", secret: "alice-agent-secret-for-resume-tests", user: "alice" },
  bob: { id: "bob-agent", secret: "bob-agent-secret-for-resume-tests", user: "bob" },
} as const;
const TOOLS_LIST = { jsonrpc: "2.0", id: 9, method: "tools/list" };

/** Two processes on one data directory, both saying they are `publicUrl` (the issuer replicas share). */
interface Replicas {
  readonly a: GatehouseProcess;
  readonly b: GatehouseProcess;
  readonly publicUrl: string;
  stop(): Promise<void>;
}

async function startReplicas(): Promise<Replicas> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-resume-" });
  const data = join(dir, "data");
  await Deno.mkdir(data, { mode: 0o700 });
  const [portA, portB] = [freePort(), freePort()];
  const publicUrl = `http://127.0.0.1:${portA}`;
  const registry = join(dir, "registry.yaml");
  // JSON is YAML.
  await Deno.writeTextFile(
    registry,
    JSON.stringify({
      gateway: { auth: "oauth", public_url: publicUrl, shutdown_timeout: "1s" },
      clients: Object.fromEntries(
        Object.values(AGENTS).map((agent) => [agent.id, {
          secret: agent.secret,
          grant_types: ["client_credentials"],
          user: agent.user,
        }]),
      ),
      backends: { mis: misbehaving("mis") },
      policies: [ALLOW_EVERYONE],
    }),
  );
  const start = (port: number) =>
    startGatehouse(["--registry", registry, "--listen", `127.0.0.1:${port}`, "--data", data]);
  const started: GatehouseProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((process) => process.stop("SIGKILL")));
    await Deno.remove(dir, { recursive: true });
  };
  try {
    // One after the other: the first start makes the signing key both use.
    started.push(await start(portA));
    started.push(await start(portB));
  } catch (error) {
    await stop();
    throw error;
  }
  return { a: started[0]!, b: started[1]!, publicUrl, stop };
}

async function tokenOf(base: string, agent: { id: string; secret: string }): Promise<string> {
  const response = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...basic(agent.id, agent.secret) },
    body: new URLSearchParams({ grant_type: "client_credentials" }).toString(),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token;
}

/** POSTs one message in session `sessionId` with `token`, to `url`. */
function post(url: string, token: string, sessionId: string, message: unknown): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify(message),
  });
}

Deno.test("a 2025-era session opened on one replica continues on another after the first is killed", async () => {
  const replicas = await startReplicas();
  const { a, b } = replicas;
  // The load balancer: the client's requests go to whichever replica `target` names.
  let target = a.url;
  const balanced = (input: string | URL | Request, init?: RequestInit) =>
    fetch(String(input instanceof Request ? input.url : input).replace(a.url, target), init);
  let client: Client | undefined;
  await withCleanup(async () => {
    const [aliceToken, bobToken] = await Promise.all([
      tokenOf(a.url, AGENTS.alice),
      tokenOf(a.url, AGENTS.bob),
    ]);
    const transport = new StreamableHTTPClientTransport(new URL(`${a.url}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${aliceToken}` } },
      fetch: balanced,
    });
    client = new Client({ name: "resume-test", version: "1.0.0" }, { capabilities: { roots: {} } });
    await within(BOUND_MS, client.connect(transport), "connect to A");
    const sessionId = transport.sessionId!;
    assert.ok(sessionId);
    const first = await within(
      BOUND_MS,
      client.callTool({ name: "mis__echo", arguments: { message: "on A" } }),
      "a call on A",
    );
    assert.equal(textOf(first), "mis: on A");

    target = b.url;
    await a.stop("SIGKILL");

    // Another user's token with that id: as unknown on B as on A, and B does not take the session up.
    const stranger = await post(`${b.url}/mcp`, bobToken, sessionId, TOOLS_LIST);
    assert.equal(stranger.status, 404);
    assert.equal((await messagesOf(stranger))[0]?.error !== undefined, true);

    // The same client, same session, on B: no new initialize.
    const second = await within(
      BOUND_MS,
      client.callTool({ name: "mis__echo", arguments: { message: "on B" } }),
      "a call on B",
    );
    assert.equal(textOf(second), "mis: on B");
    assert.equal(transport.sessionId, sessionId);
    const { tools } = await within(BOUND_MS, client.listTools(), "tools/list on B");
    assert.ok(tools.some((tool) => tool.name === "mis__echo"), JSON.stringify(tools));
    await b.waitForLine((line) => line.includes('"MCP session resumed"'));
    assert.equal(b.lines.filter((line) => line.includes('"MCP session resumed"')).length, 1);
    assert.equal(b.lines.some((line) => line.includes('"MCP session opened"')), false);

    // An id no process opened.
    const unknown = await post(`${b.url}/mcp`, aliceToken, crypto.randomUUID(), TOOLS_LIST);
    assert.equal(unknown.status, 404);
    await unknown.body?.cancel();

    // DELETE ends it everywhere: the store holds it no more.
    await within(BOUND_MS, transport.terminateSession(), "DELETE on B");
    const ended = await post(`${b.url}/mcp`, aliceToken, sessionId, TOOLS_LIST);
    assert.equal(ended.status, 404);
    await ended.body?.cancel();
  }, async () => {
    await client?.close().catch(() => {});
    await replicas.stop();
  });
});
