import assert from "node:assert/strict";
import { join } from "node:path";
import { startGatehouse } from "../helpers/gatehouse_process.ts";
import {
  JSON_HEADERS,
  messagesOf,
  misbehaving,
  openRawSession,
  withDefaultPolicy,
  within,
} from "../helpers/mcp_clients.ts";

Deno.test("a call still running at shutdown_timeout is answered with a JSON-RPC 'shutting down' error", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-shutdown-" });
  const registry = withDefaultPolicy({
    gateway: { auth: "none", shutdown_timeout: "1s" },
    backends: { mis: misbehaving("mis", { timeout: "5m" }) },
  });
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry));
  const gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
  try {
    const url = `${gatehouse.url}/mcp`;
    const sessionId = await openRawSession(url);
    const hang = (id: number, headers: Record<string, string>, meta?: Record<string, unknown>) =>
      fetch(url, {
        method: "POST",
        headers: { ...JSON_HEADERS, ...headers },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id,
          method: "tools/call",
          params: { name: "mis__hang", arguments: {}, ...(meta ? { _meta: meta } : {}) },
        }),
      });
    // One call in a 2025-11-25 session, one stateless 2026-07-28 call.
    const legacy = hang(2, { "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" });
    const modern = hang(3, {
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": "mis__hang",
    }, {
      "io.modelcontextprotocol/protocolVersion": "2026-07-28",
      "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
      "io.modelcontextprotocol/clientCapabilities": {},
    });
    // Both calls have reached the backend (its process started) before the stop.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    const stopped = gatehouse.stop("SIGTERM");
    for (const [id, response] of [[2, legacy], [3, modern]] as const) {
      const answer = await within(10_000, response, `call ${id}`);
      const messages = await within(10_000, messagesOf(answer), `call ${id} body`);
      const reply = messages.find((message) => message.id === id);
      assert.ok(reply, `call ${id} got an answer: ${JSON.stringify(messages)}`);
      const error = reply.error as { code: number; message: string } | undefined;
      assert.equal(error?.code, -32008, JSON.stringify(reply));
      assert.match(error!.message, /shutting down/);
    }
    assert.equal((await stopped).code, 0);
    assert.ok(gatehouse.lines.some((line) => line.includes("requests still running at the shutdown bound")));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
