/**
 * Issue 18 for 2026-07-28 clients, with two real Gatehouses: a stateless tools/call through A from a user
 * not yet connected to B gets `input_required` with a URL elicitation; once the user followed the link
 * (signing in at B), the same call answers as that user at B. The SDK's client does the same by itself.
 */
import assert from "node:assert/strict";
import { JSON_HEADERS, messagesOf, textOf } from "../helpers/mcp_clients.ts";
import { connectClient } from "./_world.ts";
import {
  ALICE,
  ALICE_AT_B,
  assertOnlyBTokensReachedB,
  BOB,
  BOB_AT_B,
  type Chain,
  connectThroughB,
  SERVICE,
  signInAtA,
  storedAtA,
  WHOAMI,
  withChain,
} from "./_chained_gatehouses.ts";

/** One stateless 2026-07-28 tools/call of `WHOAMI` at A's /mcp, declaring URL elicitation. */
async function modernWhoami(chain: Chain, token: string): Promise<Record<string, unknown>> {
  const response = await fetch(chain.a.mcpUrl, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": "tools/call",
      "mcp-name": WHOAMI,
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "tools/call",
      params: {
        name: WHOAMI,
        arguments: {},
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": { elicitation: { url: {} } },
        },
      },
    }),
  });
  const messages = await messagesOf(response);
  assert.equal(response.status, 200, JSON.stringify(messages));
  const answer = messages.find((message) => message.id === 1);
  assert.ok(answer, `no answer: ${JSON.stringify(messages)}`);
  assert.equal(answer.error, undefined, JSON.stringify(answer));
  assert.ok(answer.result, JSON.stringify(answer));
  return answer.result as Record<string, unknown>;
}

Deno.test("remote backend: a stateless 2026-07-28 call through A gets input_required with the link, and after the consent at B answers as that user", async () => {
  await withChain(async (chain) => {
    const bob = await signInAtA(chain.aBase, BOB);
    const asking = await modernWhoami(chain, bob.token);
    assert.equal(asking.resultType, "input_required", JSON.stringify(asking));
    const requests = Object.values(asking.inputRequests as Record<string, Record<string, unknown>>);
    assert.equal(requests.length, 1, JSON.stringify(asking));
    assert.equal(requests[0]!.method, "elicitation/create");
    const params = requests[0]!.params as { mode: string; url: string; message: string };
    assert.equal(params.mode, "url");
    const link = new URL(params.url);
    assert.equal(`${link.origin}${link.pathname}`, `${chain.aPublic}/connect/${SERVICE}`);
    assert.ok(params.message.includes(params.url), "the message gives the link");
    assert.equal(storedAtA(chain.a, "bob"), undefined);

    await connectThroughB(bob.browser, params.url, chain.b, chain.aPublic, BOB_AT_B);
    const answered = await modernWhoami(chain, bob.token);
    assert.notEqual(answered.resultType, "input_required", JSON.stringify(answered));
    assert.equal(answered.isError, undefined, JSON.stringify(answered));
    assert.equal(JSON.parse(textOf(answered)).token, "bob", "bob at B");
    assertOnlyBTokensReachedB(chain, [bob.token], ["bob"]);
  });
});

Deno.test("remote backend: the SDK's 2026-07-28 client opens the link when asked and its call answers as that user at B", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const asked: string[] = [];
    const client = await connectClient(chain.a.mcpUrl, alice.token, "modern", {
      async onElicitation(params) {
        asked.push(params.url!);
        // The user opens the link in the browser signed in at A.
        await connectThroughB(alice.browser, params.url!, chain.b, chain.aPublic, ALICE_AT_B);
        return { action: "accept" };
      },
    });
    try {
      const result = await client.callTool({ name: WHOAMI, arguments: {} });
      assert.ok(!result.isError, JSON.stringify(result));
      assert.equal(JSON.parse(textOf(result)).token, "alice");
      assert.equal(asked.length, 1, "asked once");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"]);
    } finally {
      await client.close();
    }
  });
});
