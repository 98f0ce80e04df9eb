import assert from "node:assert/strict";
import { fittedCaps, startServer } from "../../src/http/server.ts";
import { createLogger } from "../../src/log/logger.ts";
import { DEFAULT_CONNECTION_SETTINGS, RawClient, statusOf } from "./_connections.ts";
import type { ConnectionSettings } from "../../src/http/server.ts";

/** A server behind the guard whose handler answers with the peer address it was told. */
function serve(settings: Partial<ConnectionSettings>, handler?: (request: Request) => Promise<Response>) {
  const lines: string[] = [];
  const seen: string[] = [];
  const server = startServer({
    hostname: "127.0.0.1",
    port: 0,
    log: createLogger({ write: (line) => lines.push(line) }),
    settings: () => ({ ...DEFAULT_CONNECTION_SETTINGS, ...settings }),
    handler: async (request, info) => {
      seen.push(info.remoteAddr.hostname);
      if (handler) return await handler(request);
      await request.arrayBuffer();
      return new Response(`peer ${info.remoteAddr.hostname}`);
    },
  });
  return { server, lines, seen };
}

const GET = "GET / HTTP/1.1\r\nhost: x\r\n\r\n";

Deno.test("guard: a client dripping its headers is cut at header_timeout and never reaches the handler", async () => {
  const { server, seen } = serve({ headerTimeoutSeconds: 0.6 });
  try {
    const client = await RawClient.connect(server.port);
    await client.write("GET / HTTP/1.1\r\n");
    let cut = false;
    for (let line = 0; line < 20 && !cut; line++) {
      await client.write(`x-drip-${line}: ${line}\r\n`);
      cut = await client.closedWithin(150);
    }
    assert.ok(cut, "the dripping connection was closed");
    assert.deepEqual(seen, []);
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: a connection that never sends a request is closed at header_timeout", async () => {
  const { server } = serve({ headerTimeoutSeconds: 0.3 });
  try {
    const client = await RawClient.connect(server.port);
    assert.ok(await client.closedWithin(3000));
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: a second request dripping its head on a kept-alive connection is cut too", async () => {
  const { server, seen } = serve({ headerTimeoutSeconds: 0.5 });
  try {
    const client = await RawClient.connect(server.port);
    await client.write(GET);
    assert.ok(await client.receivedWithin(2000, (text) => text.includes("peer 127.0.0.1")));
    await client.write("GET /second HTTP/1.1\r\n");
    let cut = false;
    for (let line = 0; line < 20 && !cut; line++) {
      await client.write(`x-drip-${line}: ${line}\r\n`);
      cut = await client.closedWithin(150);
    }
    assert.ok(cut);
    assert.equal(seen.length, 1);
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: a body sent too slowly is cut at body_timeout", async () => {
  const { server } = serve({ bodyTimeoutSeconds: 0.5 });
  try {
    const client = await RawClient.connect(server.port);
    await client.write("POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 1000\r\n\r\n");
    let cut = false;
    for (let part = 0; part < 20 && !cut; part++) {
      await client.write("0123456789");
      cut = await client.closedWithin(150);
    }
    assert.ok(cut);
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: an idle kept-alive connection is closed at keepalive_timeout, a long answer is not cut", async () => {
  const { server } = serve({ keepaliveTimeoutSeconds: 0.4 }, async (request) => {
    if (new URL(request.url).pathname === "/slow") await new Promise((resolve) => setTimeout(resolve, 1200));
    return new Response("done");
  });
  try {
    const slow = await RawClient.connect(server.port);
    await slow.write("GET /slow HTTP/1.1\r\nhost: x\r\n\r\n");
    assert.ok(await slow.receivedWithin(4000, (text) => text.endsWith("done")), "the long answer arrived");
    assert.ok(await slow.closedWithin(3000), "then the idle connection was closed");
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: the handler is told the real client address, and a well-behaved client keeps its connection", async () => {
  const { server } = serve({});
  try {
    const client = await RawClient.connect(server.port, "127.0.0.7");
    for (let request = 0; request < 3; request++) await client.write(GET);
    assert.ok(await client.receivedWithin(2000, (text) => text.split("peer 127.0.0.7").length === 4));
    assert.equal(await client.closedWithin(200), false);
    client.close();
  } finally {
    await server.shutdown(1000);
  }
});

Deno.test("guard: past max_connections_per_address an address gets 503, other addresses are served", async () => {
  const { server } = serve({ maxConnectionsPerAddress: 5 });
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 5; index++) clients.push(await RawClient.connect(server.port, "127.0.0.2"));
    const extra = await RawClient.connect(server.port, "127.0.0.2");
    clients.push(extra);
    assert.ok(await extra.closedWithin(2000));
    assert.equal(statusOf(extra.received), 503);
    assert.match(extra.received, /too many connections from this address/i);
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(await response.text(), "peer 127.0.0.1");
    // One of the five leaves: the address may connect again.
    clients[0]!.close();
    await clients[0]!.closed;
    await new Promise((resolve) => setTimeout(resolve, 100));
    const again = await RawClient.connect(server.port, "127.0.0.2");
    clients.push(again);
    await again.write(GET);
    assert.ok(await again.receivedWithin(2000, (text) => text.includes("peer 127.0.0.2")));
  } finally {
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("guard: trusted proxies are held to the total cap only", async () => {
  const { server } = serve({ maxConnectionsPerAddress: 2, trustedProxies: ["127.0.0.3"] });
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 6; index++) clients.push(await RawClient.connect(server.port, "127.0.0.3"));
    for (const client of clients) await client.write(GET);
    for (const client of clients) {
      assert.ok(await client.receivedWithin(2000, (text) => text.includes("peer 127.0.0.3")));
    }
  } finally {
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("guard: past max_connections new connections get 503 until one closes", async () => {
  const { server } = serve({ maxConnections: 4 });
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 4; index++) {
      clients.push(await RawClient.connect(server.port, `127.0.1.${index + 1}`));
    }
    const extra = await RawClient.connect(server.port, "127.0.2.1");
    assert.ok(await extra.closedWithin(2000));
    assert.equal(statusOf(extra.received), 503);
    clients[0]!.close();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const response = await fetch(`http://127.0.0.1:${server.port}/`);
    assert.equal(await response.text(), "peer 127.0.0.1");
  } finally {
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("fittedCaps() lowers the caps to what the open-file limit can hold, and only then", () => {
  const settings = { maxConnections: 4096, maxConnectionsPerAddress: 256 };
  assert.deepEqual(fittedCaps(settings, 65536), { ...settings, lowered: false });
  assert.deepEqual(fittedCaps(settings, undefined), { ...settings, lowered: false });
  const fitted = fittedCaps(settings, 512);
  assert.equal(fitted.lowered, true);
  assert.ok(fitted.maxConnections * 3 <= 512 - 64, `${fitted.maxConnections} connections fit in 512 files`);
  assert.ok(fitted.maxConnectionsPerAddress <= fitted.maxConnections / 2);
});
