/**
 * Access policies and rate limits end to end: two users of different groups, real clients of both protocol
 * eras on `/mcp` and `/mcp/{backend}`, a policy edit while connected, limits that trip and recover, and
 * the audit rows all of that leaves.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { hashPassword } from "../../src/login/password.ts";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { eventually, ROOT } from "../helpers/gatehouse_process.ts";
import { misbehaving, startTestGateway, type TestGateway, within } from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce } from "../oauth/_flow.ts";
import { BOB, gatewayToken } from "../services/_world.ts";

const CATALOG = {
  stdio: {
    command: Deno.execPath(),
    args: [
      "run",
      "-A",
      `--config=${join(ROOT, "deno.json")}`,
      join(ROOT, "tests", "fixtures", "catalog_server.ts"),
    ],
  },
};

const RULES = [
  // Staff use the whole catalog and `other`; guests only what reads, the summary and public documents.
  { id: "staff-all", effect: "allow", subjects: ["group:staff"], backends: ["catalog", "other"] },
  { id: "guests-read", effect: "allow", subjects: ["group:guests"], backends: ["catalog"], read_only: true },
  {
    id: "guests-public",
    effect: "allow",
    subjects: ["group:guests"],
    backends: ["catalog"],
    prompts: ["summary"],
    resources: ["catalog://public/*"],
  },
  { id: "no-admin", effect: "deny", subjects: ["*"], backends: ["*"], tools: ["admin_*"] },
];

async function registry(rules: unknown[] = RULES, limits: unknown[] = []): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await hashPassword(BOB.password), groups: ["guests"] },
      },
    },
    backends: { catalog: CATALOG, other: misbehaving("other") },
    policies: rules,
    limits,
  };
}

type Era = "legacy" | "modern";

async function client(url: string, token: string, era: Era): Promise<Client> {
  const mcp = new Client(
    { name: `policy-test-${era}`, version: "1.0.0" },
    era === "modern" ? { versionNegotiation: { mode: "auto" as const } } : {},
  );
  await mcp.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  assert.equal(mcp.getProtocolEra(), era);
  return mcp;
}

interface World {
  gateway: TestGateway;
  base: string;
  tokens: { alice: string; bob: string };
}

async function withGateway(
  work: (world: World) => Promise<void>,
  rules?: unknown[],
  limits?: unknown[],
): Promise<void> {
  const gateway = await startTestGateway(await registry(rules, limits));
  try {
    const base = gateway.gateway.url;
    const tokens = {
      alice: await gatewayToken(base, new ScriptedBrowser(), ALICE),
      bob: await gatewayToken(base, new ScriptedBrowser(), BOB),
    };
    await within(60_000, work({ gateway, base, tokens }), "the test");
  } finally {
    await gateway.close();
  }
}

const names = (items: { name?: string; uri?: string; uriTemplate?: string }[]) =>
  items.map((item) => String(item.uri ?? item.uriTemplate ?? item.name)).sort();

async function errorOf(promise: Promise<unknown>): Promise<{ code?: number; message?: string }> {
  return await promise.then(
    (result) => assert.fail(`expected an error, got ${JSON.stringify(result)}`),
    (error: { code?: number; message?: string }) => error,
  );
}

/** A raw 2025-era `initialize` POST, as a client would send it first. */
function postInitialize(url: string, token: string, id: number): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
}

interface AuditRow {
  kind: string;
  subject: string | null;
  detail: Record<string, unknown>;
}

function auditRows(world: World, kind: string): AuditRow[] {
  return (world.gateway.gateway.store.db.prepare(
    "SELECT kind, subject, detail FROM audit WHERE kind = ? ORDER BY id",
  ).all(kind) as { kind: string; subject: string | null; detail: string }[])
    .map((row) => ({ ...row, detail: JSON.parse(row.detail) }));
}

for (const era of ["legacy", "modern"] as const) {
  Deno.test(`policies (${era} clients): two users of different groups see and may call different things on /mcp`, async () => {
    await withGateway(async (world) => {
      const alice = await client(`${world.base}/mcp`, world.tokens.alice, era);
      const bob = await client(`${world.base}/mcp`, world.tokens.bob, era);
      try {
        assert.deepEqual(
          names((await alice.listTools()).tools).filter((name) => name.startsWith("catalog__")),
          ["catalog__delete_item", "catalog__search"],
        );
        assert.ok((await alice.listTools()).tools.some((tool) => tool.name === "other__echo"));
        assert.deepEqual(names((await bob.listTools()).tools), ["catalog__search"]);
        assert.deepEqual(names((await alice.listPrompts()).prompts), [
          "catalog__internal_notes",
          "catalog__summary",
        ]);
        assert.deepEqual(names((await bob.listPrompts()).prompts), ["catalog__summary"]);
        assert.deepEqual(names((await alice.listResources()).resources), [
          "catalog://private/keys",
          "catalog://public/readme",
        ]);
        assert.deepEqual(names((await bob.listResources()).resources), ["catalog://public/readme"]);
        assert.deepEqual(names((await alice.listResourceTemplates()).resourceTemplates), [
          "catalog://items/{id}",
        ]);
        assert.deepEqual(names((await bob.listResourceTemplates()).resourceTemplates), []);

        // Calls follow the same decision.
        const deleted = await alice.callTool({ name: "catalog__delete_item", arguments: { id: "7" } });
        assert.deepEqual(deleted.content, [{ type: "text", text: "deleted 7" }]);
        const found = await bob.callTool({ name: "catalog__search", arguments: {} });
        assert.deepEqual(found.content, [{ type: "text", text: "found 3 items" }]);
        const refused = await errorOf(bob.callTool({ name: "catalog__delete_item", arguments: { id: "7" } }));
        assert.equal(refused.code, -32006);
        assert.doesNotMatch(String(refused.message), /guests|staff|no-admin|rule/, "names no rule internals");
        assert.equal(
          (await errorOf(alice.callTool({ name: "catalog__admin_reset", arguments: {} }))).code,
          -32006,
        );
        assert.equal((await errorOf(bob.getPrompt({ name: "catalog__internal_notes" }))).code, -32006);
        assert.equal((await errorOf(bob.readResource({ uri: "catalog://private/keys" }))).code, -32006);
        assert.equal((await errorOf(bob.readResource({ uri: "catalog://items/42" }))).code, -32006);
        const item = await alice.readResource({ uri: "catalog://items/42" });
        assert.equal((item.contents[0] as { text: string }).text, "item 42");
        const readme = await bob.readResource({ uri: "catalog://public/readme" });
        assert.equal((readme.contents[0] as { text: string }).text, "contents of catalog://public/readme");
        assert.equal(
          (await errorOf(bob.callTool({ name: "other__echo", arguments: { message: "x" } }))).code !==
            undefined,
          true,
        );
      } finally {
        await bob.close();
        await alice.close();
      }

      // The audit says which rule decided each denial, and where it is written.
      const denials = auditRows(world, "denial");
      const byObject = new Map(denials.map((row) => [`${row.subject} ${row.detail.object}`, row.detail]));
      assert.equal(byObject.get("bob tool delete_item")?.rule, null, "nothing allowed it: the default deny");
      assert.equal(byObject.get("alice tool admin_reset")?.rule, "no-admin");
      assert.match(String(byObject.get("alice tool admin_reset")?.source), /^registry\.yaml:\d+:\d+$/);
      assert.equal(byObject.get("bob prompt internal_notes")?.rule, null);
      assert.equal(byObject.get("bob resource catalog://private/keys")?.rule, null);
    });
  });

  Deno.test(`policies (${era} clients): /mcp/{backend} filters the same way, and a backend the user may not use is unknown`, async () => {
    await withGateway(async (world) => {
      const bob = await client(`${world.base}/mcp/catalog`, world.tokens.bob, era);
      try {
        assert.deepEqual(names((await bob.listTools()).tools), ["search"]);
        assert.deepEqual(names((await bob.listPrompts()).prompts), ["summary"]);
        assert.equal(
          (await errorOf(bob.callTool({ name: "delete_item", arguments: { id: "1" } }))).code,
          -32006,
        );
        assert.equal((await errorOf(bob.callTool({ name: "admin_reset", arguments: {} }))).code, -32006);
      } finally {
        await bob.close();
      }
      const other = await postInitialize(`${world.base}/mcp/other`, world.tokens.bob, 1);
      assert.equal(other.status, 404);
      assert.equal((await other.json()).error.message, 'Unknown backend "other"');
      // Alice may use it.
      const alice = await client(`${world.base}/mcp/other`, world.tokens.alice, era);
      await alice.close();
    });
  });
}

Deno.test("policies: an edit while a client is connected changes its list and sends list_changed", async () => {
  await withGateway(async (world) => {
    const alice = await client(`${world.base}/mcp`, world.tokens.alice, "legacy");
    const bob = await client(`${world.base}/mcp`, world.tokens.bob, "legacy");
    let aliceChanged = 0;
    let bobChanged = 0;
    alice.setNotificationHandler("notifications/tools/list_changed", () => void aliceChanged++);
    bob.setNotificationHandler("notifications/tools/list_changed", () => void bobChanged++);
    try {
      assert.ok(names((await alice.listTools()).tools).includes("catalog__delete_item"));
      assert.deepEqual(names((await bob.listTools()).tools), ["catalog__search"]);

      // Staff may now only read the catalog; guests are unchanged.
      const edited = RULES.map((rule) => rule.id === "staff-all" ? { ...rule, backends: ["other"] } : rule);
      edited.push({
        id: "staff-read",
        effect: "allow",
        subjects: ["group:staff"],
        backends: ["catalog"],
        read_only: true,
      });
      await world.gateway.reload(await registry(edited));
      await eventually(() => aliceChanged > 0);
      assert.deepEqual(
        names((await alice.listTools()).tools).filter((name) => name.startsWith("catalog__")),
        ["catalog__search"],
      );
      assert.equal(
        (await errorOf(alice.callTool({ name: "catalog__delete_item", arguments: { id: "1" } }))).code,
        -32006,
      );
      assert.equal(bobChanged, 0, "bob sees the same as before: no list_changed for him");
    } finally {
      await bob.close();
      await alice.close();
    }
  });
});

Deno.test("limits: a user's limit answers HTTP 429 with Retry-After and recovers; a backend's limit on /mcp is a JSON-RPC error", async () => {
  await withGateway(
    async (world) => {
      // Bob may send 60 requests a minute (one a second, a minute's worth at once).
      const post = (id: number) => postInitialize(`${world.base}/mcp`, world.tokens.bob, id);
      let refused: Response | undefined;
      for (let id = 1; id <= 70 && !refused; id++) {
        const response = await post(id);
        if (response.status === 429) refused = response;
        else {
          assert.equal(response.status, 200);
          await response.body?.cancel();
        }
      }
      assert.ok(refused, "the limit tripped within 70 requests");
      const retryAfter = Number(refused.headers.get("retry-after"));
      assert.ok(retryAfter >= 1, `Retry-After: ${retryAfter}`);
      const body = await refused.json();
      assert.equal(body.error.code, -32007);
      assert.equal(body.error.data.retryAfter, retryAfter);
      assert.ok(body.id >= 60, `the first ${body.id - 1} requests passed`);
      // Alice is not limited by bob's use.
      const alice = await client(`${world.base}/mcp`, world.tokens.alice, "legacy");
      await alice.close();
      // After the hint, bob gets through again.
      await new Promise((resolve) => setTimeout(resolve, retryAfter * 1000 + 100));
      const again = await post(100);
      assert.equal(again.status, 200);
      await again.body?.cancel();

      // Alice's calls to the catalog are limited to 2 a minute on /mcp: the third is a JSON-RPC error.
      const limited = await client(`${world.base}/mcp`, world.tokens.alice, "legacy");
      try {
        await limited.callTool({ name: "catalog__search", arguments: {} });
        await limited.callTool({ name: "catalog__search", arguments: {} });
        const error = await errorOf(limited.callTool({ name: "catalog__search", arguments: {} }));
        assert.equal(error.code, -32007);
        assert.match(String(error.message), /retry in \d+ s/);
        // Other backends are not affected.
        await limited.callTool({ name: "other__echo", arguments: { message: "still fine" } });
      } finally {
        await limited.close();
      }

      const hits = auditRows(world, "rate_limit");
      assert.deepEqual(hits.map((row) => [row.subject, row.detail.limit]), [["bob", "bob-60"], [
        "alice",
        "alice-catalog",
      ]]);
    },
    RULES,
    [
      { id: "bob-60", subjects: ["user:bob"], requests_per_minute: 60 },
      { id: "alice-catalog", subjects: ["user:alice"], backends: ["catalog"], requests_per_minute: 2 },
    ],
  );
});
