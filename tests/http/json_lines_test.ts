/**
 * End-to-end: a real gateway process writes nothing but JSON lines, on stdout and on stderr, also through
 * what once made Deno print a plain-text warning among them (a request without a declared body length,
 * such as a session's DELETE or a chunked POST, whose served request's signal the body limit read).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, startGatehouse } from "../helpers/gatehouse_process.ts";

const MCP_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
  "mcp-protocol-version": "2025-06-18",
};

Deno.test("gatehouse serve writes only JSON lines, also after a session's DELETE and a chunked POST", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-json-lines-" });
  const registry = join(dir, "registry.yaml");
  await Deno.writeTextFile(
    registry,
    JSON.stringify({
      gateway: { auth: "none" },
      backends: {
        catalog: {
          stdio: { command: Deno.execPath(), args: ["run", join(ROOT, "tests/fixtures/catalog_server.ts")] },
        },
      },
      policies: [{ id: "all", effect: "allow", subjects: ["*"], backends: ["*"] }],
    }),
  );
  const gatehouse = await startGatehouse([
    "--registry",
    registry,
    "--listen",
    "127.0.0.1:0",
    "--data",
    join(dir, "data"),
  ]);
  try {
    const mcp = `${gatehouse.url}/mcp`;
    const opened = await fetch(mcp, {
      method: "POST",
      headers: MCP_HEADERS,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1,
        method: "initialize",
        params: { protocolVersion: "2025-06-18", capabilities: {}, clientInfo: { name: "t", version: "1" } },
      }),
    });
    assert.equal(opened.status, 200);
    await opened.body?.cancel();
    const session = { ...MCP_HEADERS, "mcp-session-id": opened.headers.get("mcp-session-id")! };
    const initialized = await fetch(mcp, {
      method: "POST",
      headers: session,
      body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
    });
    assert.equal(initialized.status, 202);
    await initialized.body?.cancel();

    // A call whose body comes chunked: no Content-Length.
    const call = JSON.stringify({
      jsonrpc: "2.0",
      id: 2,
      method: "tools/call",
      params: { name: "catalog__search", arguments: {} },
    });
    const chunked = await fetch(mcp, {
      method: "POST",
      headers: session,
      body: ReadableStream.from([new TextEncoder().encode(call)]),
      duplex: "half",
    } as RequestInit);
    assert.equal(chunked.status, 200);
    assert.match(await chunked.text(), /found 3 items/);

    // Ending the session: a DELETE has a body stream and no Content-Length.
    const deleted = await fetch(mcp, { method: "DELETE", headers: session });
    assert.equal(deleted.status, 200);
    await deleted.body?.cancel();
    await gatehouse.waitForLine((line) => line.includes('"method":"DELETE"'));
  } finally {
    const status = await gatehouse.stop("SIGTERM");
    await Deno.remove(dir, { recursive: true });
    assert.equal(status.code, 0, gatehouse.stderr());
  }
  const stderrLines = gatehouse.stderr().split("\n").filter((line) => line !== "");
  const lines = [...gatehouse.lines, ...stderrLines];
  assert.ok(
    gatehouse.lines.some((line) => line.includes('"msg":"MCP session opened"')),
    "the session was logged",
  );
  for (const line of lines) {
    assert.doesNotThrow(() => JSON.parse(line), `not a JSON line: ${line}`);
    // The cause is prevented, not only captured into the log.
    assert.ok(!line.includes("request.signal"), line);
  }
});
