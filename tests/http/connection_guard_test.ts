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

/** A handler that holds every request to `/busy` until `release` is called. */
function holding() {
  const release = Promise.withResolvers<void>();
  let held = 0;
  return {
    release: () => release.resolve(),
    get held() {
      return held;
    },
    handler: async (request: Request) => {
      if (new URL(request.url).pathname === "/busy") {
        held++;
        await release.promise;
      }
      return new Response("done");
    },
  };
}

async function waitFor(condition: () => boolean, ms = 3000): Promise<void> {
  for (const end = Date.now() + ms; !condition() && Date.now() < end;) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  assert.ok(condition(), "condition not reached in time");
}

Deno.test("guard: at max_connections_per_address an idle connection makes room, the one idle longest first", async () => {
  const { server } = serve({ maxConnectionsPerAddress: 5 });
  const clients: RawClient[] = [];
  try {
    // Five idle sockets; the first one sent a request, so the others (never served) go first.
    for (let index = 0; index < 5; index++) clients.push(await RawClient.connect(server.port, "127.0.0.2"));
    await clients[0]!.write(GET);
    assert.ok(await clients[0]!.receivedWithin(2000, (text) => text.includes("peer 127.0.0.2")));
    const newcomer = await RawClient.connect(server.port, "127.0.0.2");
    clients.push(newcomer);
    assert.ok(await clients[1]!.closedWithin(2000), "the oldest never-served socket was closed");
    await newcomer.write(GET);
    assert.ok(await newcomer.receivedWithin(2000, (text) => text.includes("peer 127.0.0.2")));
    assert.equal(await clients[0]!.closedWithin(100), false, "the served one was kept");
  } finally {
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("guard: past max_connections_per_address with every connection busy, the address gets 503", async () => {
  const hold = holding();
  const { server } = serve({ maxConnectionsPerAddress: 3 }, hold.handler);
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 3; index++) {
      const client = await RawClient.connect(server.port, "127.0.0.2");
      clients.push(client);
      await client.write("GET /busy HTTP/1.1\r\nhost: x\r\n\r\n");
    }
    await waitFor(() => hold.held === 3);
    const extra = await RawClient.connect(server.port, "127.0.0.2");
    clients.push(extra);
    assert.ok(await extra.closedWithin(2000));
    assert.equal(statusOf(extra.received), 503);
    assert.match(extra.received, /too many connections from this address/i);
    assert.match(extra.received, /retry-after: 5/i);
    // Another address is served meanwhile; and the busy ones finish.
    assert.equal(await (await fetch(`http://127.0.0.1:${server.port}/`)).text(), "done");
    hold.release();
    for (const client of clients.slice(0, 3)) {
      assert.ok(await client.receivedWithin(2000, (text) => text.endsWith("done")));
    }
  } finally {
    hold.release();
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("guard: trusted proxies are held to the total cap only", async () => {
  const hold = holding();
  const { server } = serve({ maxConnectionsPerAddress: 2, trustedProxies: ["127.0.0.3"] }, hold.handler);
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 6; index++) clients.push(await RawClient.connect(server.port, "127.0.0.3"));
    for (const client of clients) await client.write("GET /busy HTTP/1.1\r\nhost: x\r\n\r\n");
    await waitFor(() => hold.held === 6);
    hold.release();
    for (const client of clients) {
      assert.ok(await client.receivedWithin(2000, (text) => text.endsWith("done")));
    }
  } finally {
    hold.release();
    for (const client of clients) client.close();
    await server.shutdown(1000);
  }
});

Deno.test("guard: at max_connections an idle connection of any address makes room; all busy gets 503", async () => {
  const hold = holding();
  const { server } = serve({ maxConnections: 4 }, hold.handler);
  const clients: RawClient[] = [];
  try {
    for (let index = 0; index < 4; index++) {
      clients.push(await RawClient.connect(server.port, `127.0.1.${index + 1}`));
    }
    // A fifth client: the idle first one is closed for it.
    const fifth = await RawClient.connect(server.port, "127.0.2.1");
    clients.push(fifth);
    assert.ok(await clients[0]!.closedWithin(2000));
    // Now all four open connections get busy: the next newcomer is refused.
    for (const client of clients.slice(1)) await client.write("GET /busy HTTP/1.1\r\nhost: x\r\n\r\n");
    await waitFor(() => hold.held === 4);
    const sixth = await RawClient.connect(server.port, "127.0.2.2");
    clients.push(sixth);
    assert.ok(await sixth.closedWithin(2000));
    assert.equal(statusOf(sixth.received), 503);
    assert.match(sixth.received, /Too many connections; try again shortly/);
  } finally {
    hold.release();
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
