/**
 * End-to-end: the HTTP checks in front of the MCP endpoints (DNS rebinding, sessions, content types),
 * with raw requests to 127.0.0.1.
 */
import assert from "node:assert/strict";
import {
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  registryWith,
  startTestGateway,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const INITIALIZE = {
  jsonrpc: "2.0",
  id: 1,
  method: "initialize",
  params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
};
const TOOLS_LIST = { jsonrpc: "2.0", id: 2, method: "tools/list" };

/**
 * Sends one HTTP/1.1 request over a plain TCP connection, so the Host header is exactly the one given
 * (fetch always sends the URL's). Returns the status code and the body.
 */
async function rawRequest(
  port: number,
  host: string,
  path: string,
  body: string,
): Promise<{ status: number; body: string }> {
  const connection = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    const request = [
      `POST ${path} HTTP/1.1`,
      `Host: ${host}`,
      "Content-Type: application/json",
      "Accept: application/json, text/event-stream",
      `Content-Length: ${new TextEncoder().encode(body).length}`,
      "Connection: close",
      "",
      body,
    ].join("\r\n");
    await connection.write(new TextEncoder().encode(request));
    let response = "";
    const decoder = new TextDecoder();
    const buffer = new Uint8Array(16 * 1024);
    await within(
      5000,
      (async () => {
        while (true) {
          const read = await connection.read(buffer);
          if (read === null) break;
          response += decoder.decode(buffer.subarray(0, read), { stream: true });
          // An SSE answer would stay open: the status line and headers are all that is needed then.
          if (/\r\n\r\n/.test(response) && /^HTTP\/1\.1 200/.test(response)) break;
        }
      })(),
      "a raw HTTP response",
    );
    const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(response)?.[1]);
    return { status, body: response.slice(response.indexOf("\r\n\r\n") + 4) };
  } finally {
    connection.close();
  }
}

function post(url: string, body: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, { method: "POST", headers: { ...JSON_HEADERS, ...headers }, body });
}

async function assertJsonRpcError(response: Response, status: number, pattern: RegExp): Promise<void> {
  const text = await response.text();
  assert.equal(response.status, status, text);
  const body = JSON.parse(text) as { error?: { code?: unknown; message?: string } };
  assert.equal(typeof body.error?.code, "number", text);
  assert.match(body.error?.message ?? "", pattern);
}

Deno.test("MCP front checks on /mcp", async (t) => {
  const gateway = await startTestGateway(
    registryWith({ only: misbehaving("only") }, { allowed_origins: ["https://app.example.test"] }),
  );
  const url = gateway.mcpUrl;
  const port = Number(new URL(url).port);
  await withCleanup(async () => {
    await t.step("gateway refuses a request whose Host is not one of its names with 403", async () => {
      const refused = await rawRequest(port, "rebound.example.test", "/mcp", JSON.stringify(INITIALIZE));
      assert.equal(refused.status, 403, refused.body);
      assert.match(refused.body, /Host not allowed/);
      const evil = await rawRequest(
        port,
        `rebound.example.test:${port}`,
        "/mcp/only",
        JSON.stringify(INITIALIZE),
      );
      assert.equal(evil.status, 403, evil.body);
      const local = await rawRequest(port, `localhost:${port}`, "/mcp", JSON.stringify(INITIALIZE));
      assert.equal(local.status, 200, local.body);
    });

    await t.step(
      "gateway refuses a browser Origin it does not allow with 403, and serves allowed ones",
      async () => {
        await assertJsonRpcError(
          await post(url, JSON.stringify(INITIALIZE), { origin: "https://evil.example.test" }),
          403,
          /Origin not allowed/,
        );
        const allowed = await post(url, JSON.stringify(INITIALIZE), { origin: "https://app.example.test" });
        assert.equal(allowed.status, 200);
        assert.ok(allowed.headers.get("mcp-session-id"));
        const [message] = await messagesOf(allowed);
        assert.ok(message?.result, JSON.stringify(message));
        const own = await post(url, JSON.stringify(INITIALIZE), { origin: new URL(url).origin });
        assert.equal(own.status, 200);
        await own.body?.cancel();
      },
    );

    await t.step("gateway answers 404 to an unknown Mcp-Session-Id", async () => {
      await assertJsonRpcError(
        await postRaw(url, crypto.randomUUID(), TOOLS_LIST),
        404,
        /Session not found/,
      );
    });

    await t.step(
      "gateway answers 400 to a request other than initialize without Mcp-Session-Id",
      async () => {
        await assertJsonRpcError(
          await post(url, JSON.stringify(TOOLS_LIST), { "mcp-protocol-version": "2025-11-25" }),
          400,
          /Mcp-Session-Id/,
        );
      },
    );

    await t.step("gateway answers 415 to a body that is not application/json", async () => {
      await assertJsonRpcError(
        await post(url, JSON.stringify(INITIALIZE), { "content-type": "text/plain" }),
        415,
        /Content-Type/,
      );
    });

    await t.step("gateway answers 400 to a body that is not JSON", async () => {
      await assertJsonRpcError(await post(url, '{"jsonrpc": "2.0", "id": 1, "method": '), 400, /Parse error/);
    });

    await t.step("gateway answers 404 on /mcp/{backend} for a backend it does not have", async () => {
      await assertJsonRpcError(
        await post(`${url}/nope`, JSON.stringify(INITIALIZE)),
        404,
        /Unknown backend "nope"/,
      );
    });

    await t.step(
      "gateway opens a GET stream for a 2025-11-25 session, and DELETE ends the session",
      async () => {
        const sessionId = await openRawSession(url);
        const headers = { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" };
        const stream = await fetch(url, { headers: { ...headers, accept: "text/event-stream" } });
        try {
          assert.equal(stream.status, 200);
          assert.match(stream.headers.get("content-type") ?? "", /^text\/event-stream/);
          const listed = await messagesOf(await postRaw(url, sessionId, TOOLS_LIST));
          assert.ok(listed.some((message) => message.id === 2 && message.result), JSON.stringify(listed));

          const deleted = await fetch(url, { method: "DELETE", headers });
          assert.equal(deleted.status, 200, await deleted.text());
          // The session's stream ends with it.
          await within(5000, stream.text(), "the GET stream to end after DELETE");
        } finally {
          await stream.body?.cancel().catch(() => {});
        }
        await assertJsonRpcError(await postRaw(url, sessionId, TOOLS_LIST), 404, /Session not found/);
        const again = await fetch(url, { headers: { ...headers, accept: "text/event-stream" } });
        assert.equal(again.status, 404, await again.text());
      },
    );
  }, () => gateway.close());
});

Deno.test("shutdown ends the sessions' open GET streams instead of waiting for them to its bound", async () => {
  const gateway = await startTestGateway(
    registryWith({ mis: misbehaving("mis") }, { shutdown_timeout: "30s" }),
  );
  let stream: Response | undefined;
  try {
    const sessionId = await openRawSession(gateway.mcpUrl);
    stream = await fetch(gateway.mcpUrl, {
      headers: {
        accept: "text/event-stream",
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-11-25",
      },
    });
    assert.equal(stream.status, 200);
  } finally {
    await within(20_000, gateway.close(), "shutdown with an open stream");
  }
  // The stream ended with the shutdown, and the drain did not need its bound.
  assert.equal(await stream.text().then(() => "ended", () => "ended"), "ended");
  const stopped = gateway.logs.find((line) => line.msg === "gatehouse stopped");
  assert.equal(stopped?.drained, true, JSON.stringify(gateway.logs.slice(-5)));
});
