/**
 * The relay's guards end to end: one deny rule holds against every spelling of a resource URI, methods
 * the gateway does not know never reach a backend, and a task on a shared backend belongs to the user
 * and client that created it (2025-11-25 tasks and SEP-2663 tasks alike).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { hashPassword } from "../../src/login/password.ts";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import {
  connectV2,
  everythingStdio,
  JSON_HEADERS,
  messagesOf,
  startTestGateway,
  type TestGateway,
  textOf,
  within,
} from "../helpers/mcp_clients.ts";
import { ANY_RESULT } from "../../src/mcp/backends/call_origin.ts";
import { startConformanceHttpServer } from "../fixtures/conformance_server.ts";
import { ALICE, aliceHashOnce } from "../oauth/_flow.ts";
import { BOB, gatewayToken } from "../services/_world.ts";

const GUARDED = {
  stdio: {
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      `--config=${join(ROOT, "deno.json")}`,
      join(ROOT, "tests/mcp/relay/_guarded_server.ts"),
    ],
  },
};

const SECRET = "demo://x/doc.md";
const POLICIES = [
  { id: "everyone", effect: "allow", subjects: ["*"], backends: ["*"] },
  { id: "no-secret", effect: "deny", subjects: ["*"], backends: ["*"], resources: [SECRET] },
];

/** Spellings of SECRET that a backend resolving URIs the WHATWG way reads as SECRET. */
const SPELLINGS = [
  SECRET,
  "DEMO://x/doc.md",
  "Demo://x/doc.md",
  "demo://x/./doc.md",
  "demo://x/%2e/doc.md",
  "demo://x/%2E/doc.md",
  "demo://x/items/../doc.md",
  "demo://x/items/%2e%2e/doc.md",
  "demo://x/items/a/../../doc.md",
  " demo://x/doc.md",
  "demo://x/doc.md\t",
  "demo://x:/doc.md",
];

/** One JSON-RPC request on a 2025-11-25 session, with the headers given; the response message. */
async function post(
  url: string,
  sessionId: string,
  headers: Record<string, string>,
  method: string,
  params: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      ...headers,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", id: crypto.randomUUID(), method, params }),
  });
  const messages = await messagesOf(response);
  const answer = messages.find((message) => "result" in message || "error" in message);
  if (!answer) throw new Error(`No answer to ${method}: ${response.status} ${JSON.stringify(messages)}`);
  return answer;
}

/** Opens a 2025-11-25 session (initialize + initialized); its id and the InitializeResult. */
async function open(
  url: string,
  headers: Record<string, string> = {},
): Promise<{ sessionId: string; result: Record<string, unknown> }> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 0,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    }),
  });
  const sessionId = response.headers.get("mcp-session-id");
  const [message] = await messagesOf(response);
  assert.ok(sessionId && message?.result, `initialize failed: ${JSON.stringify(message)}`);
  const initialized = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      ...headers,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  return { sessionId, result: message.result as Record<string, unknown> };
}

const codeOf = (answer: Record<string, unknown>) => (answer.error as { code?: number } | undefined)?.code;

/** What the guarded backend was sent, as its `seen` tool tells. */
async function seenBy(
  url: string,
  sessionId: string,
  tool: string,
): Promise<{ method: string; uri?: string }[]> {
  const answer = await post(url, sessionId, {}, "tools/call", { name: tool, arguments: {} });
  return JSON.parse(textOf(answer.result));
}

async function withGuarded(work: (gateway: TestGateway) => Promise<void>): Promise<void> {
  const gateway = await startTestGateway({
    gateway: { auth: "none", shutdown_timeout: "1s" },
    backends: { guarded: GUARDED },
    policies: POLICIES,
  });
  try {
    await within(60_000, work(gateway), "the test");
  } finally {
    await gateway.close();
  }
}

Deno.test("Router resources/read denies every spelling of a denied URI and sends the backend the canonical one", async () => {
  await withGuarded(async (gateway) => {
    for (const path of ["/guarded", ""]) {
      const url = `${gateway.mcpUrl}${path}`;
      const tool = path ? "seen" : "guarded__seen";
      const { sessionId } = await open(url);
      for (const uri of SPELLINGS) {
        for (const method of ["resources/read", "resources/subscribe"]) {
          const answer = await post(url, sessionId, {}, method, { uri });
          assert.equal(
            codeOf(answer),
            -32006,
            `${path || "/mcp"} ${method} ${JSON.stringify(uri)}: ${JSON.stringify(answer)}`,
          );
        }
      }
      // Not a spelling of SECRET (the authority is not a path segment), and not one of a document either.
      const other = await post(url, sessionId, {}, "resources/read", { uri: "demo://y/../x/doc.md" });
      assert.equal(codeOf(other), -32602, JSON.stringify(other));
      for (const uri of ["not a uri", "", 42]) {
        const answer = await post(url, sessionId, {}, "resources/read", { uri });
        assert.equal(codeOf(answer), -32602, `${JSON.stringify(uri)}: ${JSON.stringify(answer)}`);
      }
      const allowed = await post(url, sessionId, {}, "resources/read", {
        uri: " DEMO://x/items/../public.md",
      });
      assert.equal(
        (allowed.result as { contents: { text: string }[] }).contents[0]?.text,
        "the public document",
        JSON.stringify(allowed),
      );
      await post(url, sessionId, {}, "resources/subscribe", { uri: "demo://x:/./public.md" });
      await post(url, sessionId, {}, "resources/unsubscribe", { uri: "DEMO://x/public.md" });
      const seen = await seenBy(url, sessionId, tool);
      const uris = seen.filter((entry) => entry.uri !== undefined).map((entry) => entry.uri);
      assert.ok(!uris.includes(SECRET), `the backend was asked for the secret: ${JSON.stringify(uris)}`);
      // Only canonical forms reached it.
      for (const uri of uris) assert.equal(uri, new URL(String(uri)).href);
      assert.ok(uris.includes("demo://x/public.md"));
    }
  });
});

Deno.test("Router resources/read denies every spelling of a denied URI for 2026-07-28 clients", async () => {
  await withGuarded(async (gateway) => {
    for (const path of ["/guarded", ""]) {
      const client = await connectV2(`${gateway.mcpUrl}${path}`, "2026-07-28");
      try {
        for (const uri of SPELLINGS) {
          const error = await client.request({ method: "resources/read", params: { uri } }, ANY_RESULT).then(
            (result) => assert.fail(`${JSON.stringify(uri)} was read: ${JSON.stringify(result)}`),
            (error: { code?: number }) => error,
          );
          // Whitespace may already be refused by the SDK's Mcp-Name check (-32020): refused either way.
          assert.ok(error.code === -32006 || error.code === -32020, `${JSON.stringify(uri)}: ${error}`);
        }
        const allowed = await client.request(
          { method: "resources/read", params: { uri: "DEMO://x/./public.md" } },
          ANY_RESULT,
        );
        assert.equal((allowed.contents as { text: string }[])[0]?.text, "the public document");
      } finally {
        await client.close();
      }
    }
  });
});

Deno.test("Router refuses methods it does not know with -32601 and never relays them", async () => {
  await withGuarded(async (gateway) => {
    for (const path of ["/guarded", ""]) {
      const url = `${gateway.mcpUrl}${path}`;
      const { sessionId } = await open(url);
      for (const method of ["admin/dropAll", "tools/secretCall", "resources/delete", "tasks/secret"]) {
        const answer = await post(url, sessionId, {}, method, { name: "x" });
        assert.equal(codeOf(answer), -32601, `${path || "/mcp"} ${method}: ${JSON.stringify(answer)}`);
      }
      const seen = await seenBy(url, sessionId, path ? "seen" : "guarded__seen");
      assert.deepEqual(
        seen.filter((entry) => entry.uri === undefined),
        [],
        "nothing unknown reached the backend",
      );
    }
  });
});

Deno.test("Router tasks belong to the user and client that created them on a shared backend", async () => {
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await hashPassword(BOB.password), groups: ["staff"] },
      },
    },
    backends: { everything: everythingStdio({ isolation: "shared" }) },
    policies: [
      { id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["everything"] },
      {
        id: "bob-no-research",
        effect: "deny",
        subjects: ["user:bob"],
        backends: ["everything"],
        tools: ["simulate-research-query"],
      },
    ],
  });
  try {
    await within(
      90_000,
      (async () => {
        const base = gateway.gateway.url;
        const bearer = async (credentials: { username: string; password: string }) => ({
          authorization: `Bearer ${await gatewayToken(base, new ScriptedBrowser(), credentials)}`,
        });
        const alice = await bearer(ALICE);
        const aliceOtherClient = await bearer(ALICE);
        const bob = await bearer(BOB);
        // The front announces what backends offered when last connected: connect the backend first.
        const warm = await open(`${gateway.mcpUrl}/everything`, alice);
        await post(`${gateway.mcpUrl}/everything`, warm.sessionId, alice, "tools/list");
        const mine: string[] = [];
        for (const path of ["/everything", ""]) {
          const url = `${gateway.mcpUrl}${path}`;
          const tool = path ? "simulate-research-query" : "everything__simulate-research-query";
          const a = await open(url, alice);
          const a2 = await open(url, aliceOtherClient);
          const b = await open(url, bob);
          // Announced, as the backend offers it.
          const tasks = (a.result.capabilities as { tasks?: { list?: unknown } }).tasks;
          assert.ok(
            tasks?.list !== undefined,
            `tasks not announced: ${JSON.stringify(a.result.capabilities)}`,
          );

          const created = await post(url, a.sessionId, alice, "tools/call", {
            name: tool,
            arguments: { topic: "owls" },
            task: { ttl: 60_000 },
          });
          const taskId = (created.result as { task?: { taskId?: string } } | undefined)?.task?.taskId;
          assert.ok(taskId, JSON.stringify(created));
          mine.push(taskId);

          // The same guard as the call: bob may not create a task of a tool he may not call.
          const refused = await post(url, b.sessionId, bob, "tools/call", {
            name: tool,
            arguments: { topic: "mice" },
            task: { ttl: 60_000 },
          });
          assert.equal(codeOf(refused), -32006, JSON.stringify(refused));

          for (
            const [who, session, headers] of [["bob", b, bob], [
              "alice's other client",
              a2,
              aliceOtherClient,
            ]] as const
          ) {
            const listed = await post(url, session.sessionId, headers, "tasks/list");
            assert.deepEqual(
              (listed.result as { tasks: unknown[] }).tasks,
              [],
              `${who}: ${JSON.stringify(listed)}`,
            );
            for (const method of ["tasks/get", "tasks/result", "tasks/cancel"]) {
              const answer = await post(url, session.sessionId, headers, method, { taskId });
              assert.equal(codeOf(answer), -32602, `${who} ${method}: ${JSON.stringify(answer)}`);
            }
            const unknown = await post(url, session.sessionId, headers, "tasks/get", {
              taskId: "no-such-task",
            });
            assert.equal(codeOf(unknown), -32602, JSON.stringify(unknown));
          }

          const listed = await post(url, a.sessionId, alice, "tasks/list");
          const ids = (listed.result as { tasks: { taskId: string }[] }).tasks.map((task) => task.taskId);
          assert.deepEqual(ids.sort(), [...mine].sort(), JSON.stringify(listed));
          const got = await post(url, a.sessionId, alice, "tasks/get", { taskId });
          assert.notEqual((got.result as { status?: string }).status, "cancelled", JSON.stringify(got));
          const result = await post(url, a.sessionId, alice, "tasks/result", { taskId });
          assert.match(textOf(result.result), /owls/, JSON.stringify(result));
        }
      })(),
      "the test",
    );
  } finally {
    await gateway.close();
  }
});

const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";

/**
 * One 2026-07-28 request (stateless, with its `_meta` envelope and routing headers), declaring the tasks
 * extension unless `declareTasks` is false; the response message.
 */
async function modernPost(
  url: string,
  headers: Record<string, string>,
  method: string,
  params: Record<string, unknown>,
  declareTasks = true,
): Promise<Record<string, unknown>> {
  const name = params.taskId ?? params.name;
  const response = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      ...headers,
      "mcp-protocol-version": "2026-07-28",
      "mcp-method": method,
      ...(typeof name === "string" ? { "mcp-name": name } : {}),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: crypto.randomUUID(),
      method,
      params: {
        ...params,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": "2026-07-28",
          "io.modelcontextprotocol/clientInfo": { name: "raw", version: "1" },
          "io.modelcontextprotocol/clientCapabilities": declareTasks
            ? { extensions: { [TASKS_EXTENSION]: {} } }
            : {},
        },
      },
    }),
  });
  const messages = await messagesOf(response);
  const answer = messages.find((message) => "result" in message || "error" in message);
  if (!answer) throw new Error(`No answer to ${method}: ${response.status} ${JSON.stringify(messages)}`);
  return answer;
}

Deno.test("Router SEP-2663 tasks belong to the user and client that created them on a shared backend", async () => {
  const fixture = await startConformanceHttpServer({ port: 0 });
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await hashPassword(BOB.password), groups: ["staff"] },
      },
    },
    backends: { tasks: { http: { url: fixture.url }, protocol: "auto" } },
    policies: [{ id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["tasks"] }],
  });
  try {
    await within(
      90_000,
      (async () => {
        const base = gateway.gateway.url;
        const bearer = async (credentials: { username: string; password: string }) => ({
          authorization: `Bearer ${await gatewayToken(base, new ScriptedBrowser(), credentials)}`,
        });
        const alice = await bearer(ALICE);
        const aliceOtherClient = await bearer(ALICE);
        const bob = await bearer(BOB);
        // The front announces what backends offered when last connected: connect the backend first.
        await modernPost(`${gateway.mcpUrl}/tasks`, alice, "tools/list", {});
        for (const path of ["/tasks", ""]) {
          const url = `${gateway.mcpUrl}${path}`;
          const discovered = await modernPost(url, alice, "server/discover", {});
          const extensions =
            (discovered.result as { capabilities?: { extensions?: Record<string, unknown> } })
              .capabilities?.extensions;
          assert.ok(extensions?.[TASKS_EXTENSION], `not announced: ${JSON.stringify(discovered)}`);

          const tool = path ? "slow_compute" : "tasks__slow_compute";
          const created = await modernPost(url, alice, "tools/call", {
            name: tool,
            arguments: { seconds: 60, label: "owls" },
          });
          const task = created.result as { resultType?: string; taskId?: string } | undefined;
          assert.equal(task?.resultType, "task", JSON.stringify(created));
          const taskId = task!.taskId!;

          for (const [who, headers] of [["bob", bob], ["alice's other client", aliceOtherClient]] as const) {
            for (const method of ["tasks/get", "tasks/update", "tasks/cancel"]) {
              const params = method === "tasks/update" ? { taskId, inputResponses: {} } : { taskId };
              const answer = await modernPost(url, headers, method, params);
              assert.equal(codeOf(answer), -32602, `${who} ${method}: ${JSON.stringify(answer)}`);
            }
          }
          // Without the extension, the tasks methods are refused before any task is looked up (SEP-2575).
          const undeclared = await modernPost(url, alice, "tasks/get", { taskId }, false);
          assert.equal(codeOf(undeclared), -32021, JSON.stringify(undeclared));

          const got = await modernPost(url, alice, "tasks/get", { taskId });
          assert.equal((got.result as { status?: string }).status, "working", JSON.stringify(got));
          const cancelled = await modernPost(url, alice, "tasks/cancel", { taskId });
          assert.equal((cancelled.result as { resultType?: string }).resultType, "complete");
          const after = await modernPost(url, alice, "tasks/get", { taskId });
          assert.equal((after.result as { status?: string }).status, "cancelled", JSON.stringify(after));
        }
      })(),
      "the test",
    );
  } finally {
    await gateway.close();
    await fixture.close();
  }
});
