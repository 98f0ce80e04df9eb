/**
 * A 2025-era backend may ask the client for its roots at any time (server-everything does so 350 ms after
 * it starts), not because the call in flight needs them. A 2026-07-28 client that declared no roots must
 * not have its call failed for it: the backend hears that the client has none, and the call goes on.
 */
import assert from "node:assert/strict";
import { registryWith, startTestGateway, within } from "../helpers/mcp_clients.ts";
import { JSON_HEADERS, messagesOf, misbehaving } from "../helpers/mcp_clients.ts";

async function modernCall(url: string, name: string, capabilities: Record<string, unknown>) {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": name,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name,
        arguments: {},
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": capabilities,
        },
      },
    }),
  });
  const messages = await messagesOf(response);
  const answer = messages.find((message) => message.id === 1);
  if (!answer) throw new Error(`no answer: ${response.status} ${JSON.stringify(messages)}`);
  return answer;
}

Deno.test("a backend's roots/list during a 2026-07-28 call of a client without roots does not fail the call", async () => {
  const gateway = await startTestGateway(registryWith({ mis: misbehaving("mis") }));
  try {
    const answer = await within(30_000, modernCall(gateway.mcpUrl, "mis__roots", {}), "the call");
    assert.equal(answer.error, undefined, JSON.stringify(answer));
    const result = answer.result as { content?: { text?: string }[] };
    assert.match(result.content?.[0]?.text ?? "", /^no roots: /, JSON.stringify(answer));
    // A client that declares roots is asked, as before (input_required carrying roots/list).
    const asked = await within(30_000, modernCall(gateway.mcpUrl, "mis__roots", { roots: {} }), "the call");
    const question = asked.result as {
      resultType?: string;
      inputRequests?: Record<string, { method: string }>;
    };
    assert.equal(question.resultType, "input_required", JSON.stringify(asked));
    assert.equal(Object.values(question.inputRequests ?? {})[0]?.method, "roots/list");
  } finally {
    await gateway.close();
  }
});
