/**
 * Hostile connections against a real `gatehouse serve` under `ulimit -n 512`: hundreds of idle sockets
 * from one address and from many, slow heads. The gateway must stay up, keep answering, and serve a
 * signed-in user throughout or as soon as the idle sockets are cut.
 */
import assert from "node:assert/strict";
import { BACKEND, messagesOf, startHostileWorld, within } from "./_world.ts";
import { openRawSession, postRaw } from "../helpers/mcp_clients.ts";
import { RawClient, statusOf } from "../http/_connections.ts";

const FILE_LIMIT = 512;
const IDLE_SOCKETS = 700;

/** One signed-in echo call through a fresh 2025-11-25 session; returns the echoed text. */
async function echo(base: string, token: string, message: string): Promise<string> {
  const authorization = { authorization: `Bearer ${token}` };
  const sessionId = await openRawSession(`${base}/mcp`, authorization);
  const called = await postRaw(`${base}/mcp`, sessionId, {
    jsonrpc: "2.0",
    id: 2,
    method: "tools/call",
    params: { name: `${BACKEND}__echo`, arguments: { message } },
  }, authorization);
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

/** A signed-in `initialize` sent raw from `localAddress`; answers the status code. */
async function initializeFrom(port: number, localAddress: string, token: string): Promise<number> {
  const client = await RawClient.connect(port, localAddress);
  try {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    });
    await client.write(
      `POST /mcp HTTP/1.1\r\nhost: 127.0.0.1:${port}\r\nauthorization: Bearer ${token}\r\n` +
        `content-type: application/json\r\naccept: application/json, text/event-stream\r\n` +
        `content-length: ${body.length}\r\n\r\n${body}`,
    );
    await client.receivedWithin(10_000, (text) => statusOf(text) !== 0);
    return statusOf(client.received);
  } finally {
    client.close();
  }
}

Deno.test({
  name:
    "connections: 700 idle sockets from one address under ulimit -n 512 keep nobody out, that address included",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const world = await startHostileWorld({ fileLimit: FILE_LIMIT });
    const port = Number(new URL(world.base).port);
    let idle: RawClient[] = [];
    try {
      assert.equal(await echo(world.base, world.bob.token, "before"), `${BACKEND}: before`);
      idle = await within(30_000, openIdle(port, IDLE_SOCKETS, () => "127.0.0.2"), "idle sockets");
      // The caps were fitted to the file limit (and said so); the attacker's address holds at most its cap.
      const fitted = JSON.parse(
        await world.process.waitForLine((line) => line.includes("connection caps lowered to fit")),
      );
      const perAddress: number = fitted.max_connections_per_address;
      assert.ok(perAddress * 3 < FILE_LIMIT);
      const stillOpen = async () =>
        (await Promise.all(idle.map((client) => client.closedWithin(0)))).filter((closed) => !closed).length;
      for (let wait = 0; wait < 100 && await stillOpen() > perAddress; wait++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      assert.ok(await stillOpen() <= perAddress, `${await stillOpen()} idle sockets open, cap ${perAddress}`);
      // The gateway answers; bob (another address) is served; and a signed-in client on the attacker's own
      // address gets in too, its connection taking the place of an idle one.
      assert.equal((await fetch(`${world.base}/healthz`)).status, 200);
      assert.equal(await echo(world.base, world.bob.token, "during"), `${BACKEND}: during`);
      assert.equal(await initializeFrom(port, "127.0.0.2", world.alice.token), 200);
      const metrics = await (await fetch(`${world.base}/metrics`)).text();
      assert.match(metrics, /gatehouse_connections_cut_total\{reason="evicted"\} \d+/);
    } finally {
      for (const client of idle) client.close();
      await world.close();
    }
  },
});

Deno.test({
  name: "connections: 700 idle sockets from 700 addresses under ulimit -n 512 leave a signed-in user served",
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
      assert.equal((await fetch(`${world.base}/healthz`)).status, 200);
      assert.equal(await echo(world.base, world.bob.token, "during"), `${BACKEND}: during`);
      // The idle ones still open are cut at header_timeout.
      const cut = await Promise.all(idle.map((client) => client.closedWithin(10_000)));
      assert.ok(cut.every(Boolean), `${cut.filter((closed) => !closed).length} idle sockets still open`);
      const metrics = await (await fetch(`${world.base}/metrics`)).text();
      assert.match(metrics, /gatehouse_connections_cut_total\{reason="header_timeout"\} \d+/);
      assert.equal(await echo(world.base, world.bob.token, "after"), `${BACKEND}: after`);
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
