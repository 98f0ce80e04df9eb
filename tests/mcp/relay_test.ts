/**
 * End-to-end: clients of both SDK generations and both protocol eras reach server-everything through the
 * gateway, over each backend transport (stdio, Streamable HTTP, legacy HTTP+SSE), on the aggregate
 * endpoint and on the per-backend one; progress and server-to-client requests come back to the caller.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import {
  type ClientAnswers,
  connectV1,
  connectV2,
  type Era,
  everythingStdio,
  type HttpBackend,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  registryWith,
  startEverythingHttp,
  startTestGateway,
  textOf,
  within,
} from "../helpers/mcp_clients.ts";

const ERAS: Era[] = ["2025-11-25", "2026-07-28"];
/** How long any single client operation may take before the test calls it a hang. */
const BOUND_MS = 15_000;

/** The part of a client the checks need; SDK v1 and v2 clients both have it. */
interface ToolClient {
  listTools(): Promise<{ tools: { name: string }[] }>;
  callTool(params: { name: string; arguments?: Record<string, unknown> }): Promise<unknown>;
  close(): Promise<void>;
}

/** Lists and calls through `/mcp` (prefixed names) and `/mcp/{backend}` (the backend's own names). */
async function checkListAndCall(
  mcpUrl: string,
  backend: string,
  connect: (url: string) => Promise<ToolClient>,
): Promise<void> {
  const single = await within(BOUND_MS, connect(`${mcpUrl}/${backend}`), "connect to /mcp/" + backend);
  let own: string[];
  try {
    own = (await within(BOUND_MS, single.listTools(), "tools/list")).tools.map((tool) => tool.name);
    assert.ok(own.includes("echo") && own.includes("get-sum"), `tools of ${backend}: ${own}`);
    assert.ok(own.every((name) => !name.includes("__")), `unprefixed names on /mcp/${backend}: ${own}`);
    const echoed = await within(
      BOUND_MS,
      single.callTool({ name: "echo", arguments: { message: "single" } }),
    );
    assert.equal(textOf(echoed), "Echo: single");
  } finally {
    await single.close();
  }

  const aggregate = await within(BOUND_MS, connect(mcpUrl), "connect to /mcp");
  try {
    const names = (await within(BOUND_MS, aggregate.listTools(), "tools/list")).tools.map((tool) =>
      tool.name
    );
    const mine = names.filter((name) => name.startsWith(`${backend}__`)).map((name) =>
      name.slice(backend.length + 2)
    );
    assert.deepEqual(mine.toSorted(), own.toSorted(), `every tool of ${backend} appears once, prefixed`);
    const echoed = await within(
      BOUND_MS,
      aggregate.callTool({ name: `${backend}__echo`, arguments: { message: "aggregate" } }),
    );
    assert.equal(textOf(echoed), "Echo: aggregate");
    const sum = await within(
      BOUND_MS,
      aggregate.callTool({ name: `${backend}__get-sum`, arguments: { a: 2, b: 3 } }),
    );
    assert.match(textOf(sum), /\b5\b/);
  } finally {
    await aggregate.close();
  }
}

function connectorFor(era: Era | "v1"): (url: string) => Promise<ToolClient> {
  if (era === "v1") return (url) => connectV1(url) as Promise<ToolClient>;
  return async (url) => {
    const client = await connectV2(url, era);
    assert.equal(client.getProtocolEra(), era === "2026-07-28" ? "modern" : "legacy");
    return client;
  };
}

/** Answers that record what the backend asked, each with a value unique to this client. */
function recordingAnswers(tag: string) {
  const asked: { method: string; params: Record<string, unknown> }[] = [];
  const answers: ClientAnswers = {
    sampling: (params) => {
      asked.push({ method: "sampling/createMessage", params });
      return { role: "assistant", content: { type: "text", text: `sampled-${tag}` }, model: "test-model" };
    },
    elicitation: (params) => {
      asked.push({ method: "elicitation/create", params });
      return { action: "accept", content: { name: `Ada ${tag}`, check: true } };
    },
    roots: () => {
      asked.push({ method: "roots/list", params: {} });
      return [{ uri: `file:///roots/${tag}`, name: `root-${tag}` }];
    },
  };
  return { asked, answers };
}

Deno.test("MCP relay through the gateway to server-everything", async (t) => {
  const backends: HttpBackend[] = [];
  let gateway: Awaited<ReturnType<typeof startTestGateway>> | undefined;
  try {
    backends.push(await startEverythingHttp("streamableHttp"), await startEverythingHttp("sse"));
    const [streamable, sse] = backends as [HttpBackend, HttpBackend];
    gateway = await startTestGateway(registryWith({
      everything: everythingStdio(),
      "everything-http": { http: { url: streamable.url } },
      "everything-sse": { sse: { url: sse.url } },
      // Roots are cached per process by server-everything: each legacy session gets its own process.
      roots: everythingStdio({ isolation: "session" }),
      steps: misbehaving("steps"),
    }));
    const { mcpUrl } = gateway;

    const transports = [
      ["stdio", "everything"],
      ["Streamable HTTP", "everything-http"],
      ["legacy SSE", "everything-sse"],
    ] as const;
    for (const [kind, backend] of transports) {
      for (const era of ["2025-11-25", "2026-07-28", "v1"] as const) {
        const client = era === "v1" ? "a 2025-11-25 client (SDK v1)" : `a ${era} client (SDK v2)`;
        await t.step(
          `gateway relays tools/list and tools/call to a ${kind} backend for ${client}`,
          async () => {
            await checkListAndCall(mcpUrl, backend, connectorFor(era));
          },
        );
      }
    }

    for (const era of ERAS) {
      await t.step(`gateway relays progress notifications to a ${era} client`, async () => {
        const client = await connectV2(mcpUrl, era);
        try {
          const progress: { progress: number; total?: number; message?: string }[] = [];
          const result = await within(
            BOUND_MS,
            client.callTool({ name: "steps__progress", arguments: { steps: 3, intervalMs: 40 } }, {
              onprogress: (update) => progress.push(update),
            }),
          );
          assert.equal(textOf(result), "done after 3 steps");
          assert.deepEqual(progress, [
            { progress: 1, total: 3, message: "step 1" },
            { progress: 2, total: 3, message: "step 2" },
            { progress: 3, total: 3, message: "step 3" },
          ]);
        } finally {
          await client.close();
        }
      });
    }

    await t.step(
      "gateway relays a progress notification the backend sends just before its result",
      async () => {
        // Read at the wire, so that what the client's SDK does with the notification does not matter.
        const url = `${mcpUrl}/everything`;
        const sessionId = await openRawSession(url);
        try {
          for (let round = 0; round < 3; round++) {
            const response = await postRaw(url, sessionId, {
              jsonrpc: "2.0",
              id: 10 + round,
              method: "tools/call",
              params: {
                name: "trigger-long-running-operation",
                arguments: { duration: 0.1, steps: 2 },
                _meta: { progressToken: `token-${round}` },
              },
            });
            const messages = await within(BOUND_MS, messagesOf(response));
            const progress = messages.filter((message) => message.method === "notifications/progress")
              .map((message) => message.params as Record<string, unknown>);
            assert.deepEqual(
              progress.map((params) => [params.progressToken, params.progress, params.total]),
              [[`token-${round}`, 1, 2], [`token-${round}`, 2, 2]],
              `round ${round}: ${JSON.stringify(messages)}`,
            );
            assert.equal(messages.at(-1)?.id, 10 + round, "the result comes last");
          }
        } finally {
          await fetch(url, { method: "DELETE", headers: { "mcp-session-id": sessionId } }).then((r) =>
            r.body?.cancel()
          );
        }
      },
    );

    await t.step(
      "gateway relays sampling, elicitation and roots requests to the 2025-11-25 client whose call caused them",
      async () => {
        const caller = recordingAnswers("legacy");
        const bystander = recordingAnswers("bystander");
        const clients: Client[] = [];
        try {
          clients.push(await connectV2(mcpUrl, "2025-11-25", bystander.answers));
          const client = await connectV2(mcpUrl, "2025-11-25", caller.answers);
          clients.push(client);
          await checkServerToClient(client, caller.asked, "legacy");
          assert.deepEqual(bystander.asked, [], "nothing reached the other session");
        } finally {
          await Promise.all(clients.map((client) => client.close()));
        }
      },
    );

    await t.step(
      "gateway turns sampling, elicitation and roots requests into input_required for a 2026-07-28 client",
      async () => {
        const caller = recordingAnswers("modern");
        const client = await connectV2(mcpUrl, "2026-07-28", caller.answers);
        try {
          await checkServerToClient(client, caller.asked, "modern");
        } finally {
          await client.close();
        }
      },
    );
  } finally {
    await gateway?.close();
    await Promise.all(backends.map((backend) => backend.stop()));
  }
});

/** The backend asks for a sample, a form and the roots; each answer is this client's own. */
async function checkServerToClient(
  client: Client,
  asked: { method: string; params: Record<string, unknown> }[],
  tag: string,
): Promise<void> {
  const sampled = await within(
    BOUND_MS,
    client.callTool({
      name: "everything__trigger-sampling-request",
      arguments: { prompt: `prompt-${tag}`, maxTokens: 7 },
    }),
  );
  assert.match(textOf(sampled), new RegExp(`sampled-${tag}`));
  const sampling = asked.find((entry) => entry.method === "sampling/createMessage");
  assert.ok(sampling, `sampling reached the client: ${JSON.stringify(asked)}`);
  assert.equal(sampling.params.maxTokens, 7);
  assert.match(JSON.stringify(sampling.params.messages), new RegExp(`prompt-${tag}`));

  const elicited = await within(
    BOUND_MS,
    client.callTool({ name: "everything__trigger-elicitation-request", arguments: {} }),
  );
  assert.match(textOf(elicited), /provided the requested information/);
  assert.match(JSON.stringify(elicited), new RegExp(`Name: Ada ${tag}`));
  assert.ok(asked.some((entry) => entry.method === "elicitation/create"));

  const roots = await within(BOUND_MS, client.callTool({ name: "roots__get-roots-list", arguments: {} }));
  assert.match(textOf(roots), new RegExp(`file:///roots/${tag}`));
  assert.ok(asked.some((entry) => entry.method === "roots/list"));
}
