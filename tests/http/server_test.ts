import assert from "node:assert/strict";
import { startServer, urlOf } from "../../src/http/server.ts";
import { createLogger } from "../../src/log/logger.ts";
import { DEFAULT_CONNECTION_SETTINGS } from "./_connections.ts";

const quiet = createLogger({ write: () => {} });
const settings = () => ({ ...DEFAULT_CONNECTION_SETTINGS });

Deno.test("startServer().shutdown() lets an in-flight request finish, then stops accepting", async () => {
  const release = Promise.withResolvers<void>();
  const entered = Promise.withResolvers<void>();
  const server = startServer({
    hostname: "127.0.0.1",
    port: 0,
    log: quiet,
    settings,
    handler: async () => {
      entered.resolve();
      await release.promise;
      return new Response("finished");
    },
  });
  const url = urlOf(server.hostname, server.port);
  const inFlight = fetch(url);
  await entered.promise;
  const drained = server.shutdown(5_000);
  release.resolve();
  const response = await inFlight;
  assert.equal(await response.text(), "finished");
  assert.equal(await drained, true);
  await server.finished;
  await assert.rejects(fetch(url));
});

Deno.test("startServer().shutdown() gives up at its bound when a request never ends", async () => {
  const entered = Promise.withResolvers<void>();
  const controller = new AbortController();
  const server = startServer({
    hostname: "127.0.0.1",
    port: 0,
    log: quiet,
    settings,
    handler: () => {
      entered.resolve();
      const body = new ReadableStream({ start: (stream) => stream.enqueue(new TextEncoder().encode(":\n")) });
      return new Response(body, { headers: { "content-type": "text/event-stream" } });
    },
  });
  const response = await fetch(urlOf(server.hostname, server.port), { signal: controller.signal });
  await entered.promise;
  assert.equal(await server.shutdown(100), false);
  controller.abort();
  await response.body?.cancel().catch(() => {});
  await server.finished;
});

Deno.test("urlOf() brackets IPv6 and names wildcard listeners by loopback", () => {
  assert.equal(urlOf("127.0.0.1", 8740), "http://127.0.0.1:8740");
  assert.equal(urlOf("::1", 80), "http://[::1]:80");
  assert.equal(urlOf("0.0.0.0", 1), "http://127.0.0.1:1");
  assert.equal(urlOf("::", 1), "http://[::1]:1");
});
