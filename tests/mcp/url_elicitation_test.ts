import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { misbehaving, registryWith, startTestGateway, textOf } from "../helpers/mcp_clients.ts";

Deno.test("gateway turns a backend's -32042 into a URL elicitation for a 2026-07-28 client, and retries", async () => {
  const gateway = await startTestGateway(registryWith({ mis: misbehaving("mis") }));
  const opened: { mode?: unknown; url?: unknown; message?: unknown }[] = [];
  const client = new Client(
    { name: "gatehouse-test", version: "1.0.0" },
    { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: "auto" } },
  );
  client.setRequestHandler("elicitation/create", (request) => {
    opened.push(request.params as { mode?: unknown; url?: unknown; message?: unknown });
    return { action: "accept" };
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.mcpUrl)));
    assert.equal(client.getProtocolEra(), "modern");
    const result = await client.callTool({ name: "mis__needs_url", arguments: {} });
    assert.equal(textOf(result), "connected");
    assert.deepEqual(opened, [{
      mode: "url",
      url: "https://example.test/connect",
      message: "Connect your account first",
    }]);
  } finally {
    await client.close();
    await gateway.close();
  }
});

Deno.test("gateway passes a backend's -32042 through to a 2025-11-25 client as the error", async () => {
  const gateway = await startTestGateway(registryWith({ mis: misbehaving("mis") }));
  const client = new Client({ name: "gatehouse-test", version: "1.0.0" }, {
    capabilities: { elicitation: { url: {} } },
  });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.mcpUrl)));
    const error = await client.callTool({ name: "mis__needs_url", arguments: {} }).then(
      () => assert.fail("expected -32042"),
      (thrown: { code?: number; data?: { elicitations?: { url?: string }[] } }) => thrown,
    );
    assert.equal(error.code, -32042);
    assert.equal(error.data?.elicitations?.[0]?.url, "https://example.test/connect");
  } finally {
    await client.close();
    await gateway.close();
  }
});
