/**
 * Hostile connections against a real `gatehouse serve` under `ulimit -n 512`: hundreds of idle sockets
 * from one address and from many, slow heads. The gateway must stay up, keep answering, and serve a
 * signed-in user throughout or as soon as the idle sockets are cut.
 */
import assert from "node:assert/strict";
import { BACKEND, JSON_HEADERS, messagesOf, startHostileWorld, within } from "./_world.ts";
import { RawClient } from "../http/_connections.ts";

const FILE_LIMIT = 512;
const IDLE_SOCKETS = 700;

/** One signed-in echo call through a fresh 2025-11-25 session; returns the echoed text. */
async function echo(base: string, token: string, message: string): Promise<string> {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${token}` };
  const opened = await fetch(`${base}/mcp`, {
    method: "POST",
    headers,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "user", version: "1" } },
    }),
  });
  const sessionId = opened.headers.get("mcp-session-id");
  await opened.body?.cancel();
  assert.equal(opened.status, 200);
  const session = { ...headers, "mcp-session-id": sessionId!, "mcp-protocol-version": "2025-11-25" };
  const initialized = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: session,
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  const called = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: session,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: `${BACKEND}__echo`, arguments: { message } },
    }),
  });
  const [answer] = await messagesOf(called);
  return (answer?.result as { content?: { text?: string }[] } | undefined)?.content?.[0]?.text ?? "";
}

/** Opens `count` idle connections, from `addressOf(index)`; those refused at once are closed by the server. */
async function openIdle(
  port: number,
  count: number,
  addressOf: (index: number) => string,
): Promise<RawClient[]> {
  const clients: RawClient[] = [];
  for (let index = 0; index < count; index++) {
    clients.push(await RawClient.connect(port, addressOf(index)).catch(() => undefined as never));
  }
  return clients.filter(Boolean);
}

Deno.test({
  name: "connections: 700 idle sockets from one address under ulimit -n 512 leave a signed-in user served",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const world = await startHostileWorld({ fileLimit: FILE_LIMIT, gateway: { header_timeout: "3s" } });
    const port = Number(new URL(world.base).port);
    let idle: RawClient[] = [];
    try {
      assert.equal(await echo(world.base, world.bob.token, "before"), `${BACKEND}: before`);
      idle = await within(30_000, openIdle(port, IDLE_SOCKETS, () => "127.0.0.2"), "idle sockets");
      // The caps were fitted to the file limit (and said so); past the per-address cap the attacker's
      // sockets are answered 503 and closed at once.
      const fitted = JSON.parse(
        await world.process.waitForLine((line) => line.includes("connection caps lowered to fit")),
      );
      const perAddress: number = fitted.max_connections_per_address;
      assert.ok(perAddress * 3 < FILE_LIMIT);
      const refusedNow = () => idle.filter((client) => client.received.startsWith("HTTP/1.1 503")).length;
      for (let wait = 0; wait < 100 && refusedNow() < IDLE_SOCKETS - perAddress; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.equal(refusedNow(), IDLE_SOCKETS - perAddress);
      // Meanwhile the gateway answers, and bob (another address) is served at once.
      assert.equal((await fetch(`${world.base}/healthz`)).status, 200);
      assert.equal(await echo(world.base, world.bob.token, "during"), `${BACKEND}: during`);
      // The admitted idle sockets never send a request: they are cut at header_timeout.
      const admitted = idle.filter((client) => client.received === "");
      const cut = await Promise.all(admitted.map((client) => client.closedWithin(10_000)));
      assert.ok(cut.every(Boolean), `${cut.filter((closed) => !closed).length} idle sockets still open`);
      const metrics = await (await fetch(`${world.base}/metrics`)).text();
      assert.match(metrics, /gatehouse_connections_cut_total\{reason="per_address"\} \d+/);
      assert.match(metrics, /gatehouse_connections_cut_total\{reason="header_timeout"\} \d+/);
    } finally {
      for (const client of idle) client.close();
      await world.close();
    }
  },
});

Deno.test({
  name: "connections: 700 idle sockets from 700 addresses fill the total cap, are cut, and service resumes",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const world = await startHostileWorld({ fileLimit: FILE_LIMIT, gateway: { header_timeout: "2s" } });
    const port = Number(new URL(world.base).port);
    let idle: RawClient[] = [];
    try {
      idle = await within(
        30_000,
        openIdle(port, IDLE_SOCKETS, (index) => `127.0.${Math.floor(index / 250) + 20}.${(index % 250) + 1}`),
        "idle sockets",
      );
      await new Promise((resolve) => setTimeout(resolve, 300));
      const refused = idle.filter((client) => client.received.startsWith("HTTP/1.1 503"));
      assert.ok(refused.length > 0, "past the total cap new connections get 503");
      assert.match(refused[0]!.received, /Too many connections; try again shortly/);
      // The process is alive all along; once the idle ones are cut, a signed-in user is served.
      let answered = "";
      for (let attempt = 0; attempt < 40 && answered === ""; attempt++) {
        answered = await echo(world.base, world.bob.token, "after").catch(() => "");
        if (answered === "") await new Promise((resolve) => setTimeout(resolve, 250));
      }
      assert.equal(answered, `${BACKEND}: after`);
      const status = await Promise.race([
        world.process.child.status.then(() => "exited"),
        Promise.resolve("up"),
      ]);
      assert.equal(status, "up");
    } finally {
      for (const client of idle) client.close();
      await world.close();
    }
  },
});
