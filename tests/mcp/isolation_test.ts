/**
 * End-to-end: `isolation: session` gives each client session its own stdio process, while a shared
 * backend serves every session from one process. (Per-user isolation needs several signed-in users;
 * with `gateway.auth: none` everyone is the same anonymous user.)
 */
import assert from "node:assert/strict";
import type { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import {
  connectV2,
  eventually,
  misbehaving,
  registryWith,
  startTestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 10_000;

async function pidOf(client: Client, tool: string): Promise<number> {
  return Number(textOf(await within(BOUND_MS, client.callTool({ name: tool, arguments: {} }), tool)));
}

async function processesOf(gateway: Awaited<ReturnType<typeof startTestGateway>>, backend: string) {
  return (await gateway.gateway.pool.status()).find((entry) => entry.name === backend)?.processes;
}

Deno.test("gateway gives each 2025-11-25 session its own process of an isolation: session backend", async () => {
  const gateway = await startTestGateway(registryWith({
    private: misbehaving("private", { isolation: "session" }),
    shared: misbehaving("shared"),
  }));
  const clients: Client[] = [];
  await withCleanup(async () => {
    for (let index = 0; index < 2; index++) clients.push(await connectV2(gateway.mcpUrl, "2025-11-25"));
    const [first, second] = clients as [Client, Client];

    const firstPrivate = await pidOf(first, "private__pid");
    const secondPrivate = await pidOf(second, "private__pid");
    assert.notEqual(firstPrivate, secondPrivate, "each session has its own process");
    assert.equal(await pidOf(first, "private__pid"), firstPrivate, "and keeps it");
    assert.equal(
      await pidOf(first, "shared__pid"),
      await pidOf(second, "shared__pid"),
      "a shared backend is shared",
    );
    assert.equal(await processesOf(gateway, "private"), 2);

    // Ending a session stops its own process only.
    await within(BOUND_MS, (first.transport as StreamableHTTPClientTransport).terminateSession(), "DELETE");
    await eventually(async () => (await processesOf(gateway, "private")) === 1, BOUND_MS);
    assert.equal(await pidOf(second, "private__pid"), secondPrivate);
  }, async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gateway.close();
  });
});
