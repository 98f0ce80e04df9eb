/**
 * `gatehouse doctor` on a backend with its own OAuth (issue 18): it asks the server and says what it found
 * (resource, authorization server, how Gatehouse registers), and fails one that is not protected as the
 * MCP authorization specification says. The server is a real second Gatehouse with `auth: oauth`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { runGatehouse } from "../helpers/gatehouse_process.ts";
import { startTestGateway } from "../helpers/mcp_clients.ts";

async function doctorRow(
  registry: Record<string, unknown>,
): Promise<{ code: number; row: string; all: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-doctor-remote-" });
  try {
    await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry));
    const { code, stdout, stderr } = await runGatehouse(["doctor"], { cwd: dir });
    const row = stdout.split("\n").find((line) => line.startsWith("backend ") && line.includes("remote"));
    assert.ok(row, stdout + stderr);
    return { code, row, all: stdout };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gatehouse doctor says what an OAuth-protected backend asks for: resource, authorization server, registration", async () => {
  const remote = await startTestGateway({ gateway: { auth: "oauth" }, backends: {} });
  try {
    const { row } = await doctorRow({
      gateway: { auth: "none", data_dir: "./data" },
      backends: { remote: { http: { url: remote.mcpUrl, oauth: true } } },
    });
    assert.match(row, /\bok\b/, row);
    assert.ok(row.includes(`resource: ${remote.mcpUrl}`), row);
    assert.ok(row.includes(`authorization server: ${remote.gateway.url}`), row);
    // A gateway on plain http cannot be a metadata document client: it registers dynamically.
    assert.match(row, /registration: dynamic registration at /, row);
  } finally {
    await remote.close();
  }
});

Deno.test("gatehouse doctor fails an OAuth backend that publishes no protected resource metadata", async () => {
  // An HTTP server that is not an OAuth-protected MCP server: no 401 challenge, no RFC 9728 metadata.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    (request) =>
      new URL(request.url).pathname === "/mcp"
        ? Response.json({ jsonrpc: "2.0", id: 1, result: {} })
        : new Response("not found", { status: 404 }),
  );
  try {
    const { code, row } = await doctorRow({
      gateway: { auth: "none", data_dir: "./data" },
      backends: { remote: { http: { url: `http://127.0.0.1:${server.addr.port}/mcp`, oauth: true } } },
    });
    assert.match(row, /FAIL/, row);
    assert.match(row, /resource metadata|protected resource/i, row);
    assert.notEqual(code, 0);
  } finally {
    await server.shutdown();
  }
});
