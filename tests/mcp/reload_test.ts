/**
 * End-to-end: a registry reload while clients are connected. Added backends appear, removed ones
 * disappear and their calls fail, connected sessions hear `notifications/tools/list_changed`, and a
 * backend the reload did not change keeps its process.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import {
  connectV2,
  eventually,
  misbehaving,
  registryWith,
  startTestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 10_000;

/** Counts one kind of notification a client receives, and waits for the next one. */
function notificationCounter(client: Client, method: "notifications/tools/list_changed") {
  let count = 0;
  let waiters: (() => void)[] = [];
  client.setNotificationHandler(method, () => {
    count += 1;
    for (const wake of waiters) wake();
    waiters = [];
  });
  return {
    get count() {
      return count;
    },
    /** Resolves at the next notification after this call. */
    next(): Promise<void> {
      return within(
        BOUND_MS,
        new Promise<void>((resolve) => waiters.push(resolve)),
        `${method} notification`,
      );
    },
  };
}

async function toolNames(client: Client): Promise<string[]> {
  return (await within(BOUND_MS, client.listTools(), "tools/list")).tools.map((tool) => tool.name);
}

async function call(client: Client, name: string, args: Record<string, unknown> = {}): Promise<string> {
  return textOf(await within(BOUND_MS, client.callTool({ name, arguments: args }), name));
}

async function processExists(pid: number): Promise<boolean> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/stat`);
    return !/^\d+ \(.*\) Z /.test(status); // a zombie has exited
  } catch {
    return false;
  }
}

Deno.test("MCP sessions across registry reloads", async (t) => {
  const keep = misbehaving("keep");
  const drop = misbehaving("drop");
  const gateway = await startTestGateway(registryWith({ keep, drop }));
  const clients: Client[] = [];
  await withCleanup(async () => {
    const client = await connectV2(gateway.mcpUrl, "2025-11-25");
    clients.push(client);
    const listChanged = notificationCounter(client, "notifications/tools/list_changed");
    const keepPid = Number(await call(client, "keep__pid"));
    const dropPid = Number(await call(client, "drop__pid"));
    assert.ok(!(await toolNames(client)).some((name) => name.startsWith("added__")));

    await t.step("gateway tells a connected 2025-11-25 session when a reload adds a backend", async () => {
      const changed = listChanged.next();
      await gateway.reload(registryWith({ keep, drop, added: misbehaving("added") }));
      await changed;
      const names = await toolNames(client);
      assert.ok(names.includes("added__echo"), names.join());
      assert.equal(await call(client, "added__echo", { message: "new" }), "added: new");
    });

    await t.step("gateway keeps the process of a backend a reload did not change", async () => {
      assert.equal(Number(await call(client, "keep__pid")), keepPid);
      assert.equal(Number(await call(client, "drop__pid")), dropPid);
    });

    await t.step(
      "gateway removes a backend's tools on reload, fails its calls and stops its process",
      async () => {
        const changed = listChanged.next();
        await gateway.reload(registryWith({ keep, added: misbehaving("added") }));
        await changed;
        const names = await toolNames(client);
        assert.ok(!names.some((name) => name.startsWith("drop__")), names.join());
        assert.ok(names.includes("keep__echo") && names.includes("added__echo"), names.join());
        await assert.rejects(
          within(BOUND_MS, client.callTool({ name: "drop__echo", arguments: { message: "gone" } })),
          (error: Error & { code?: unknown }) => {
            assert.equal(typeof error.code, "number", `a JSON-RPC error, not ${error}`);
            assert.match(error.message, /drop/);
            return true;
          },
        );
        await eventually(async () => !(await processExists(dropPid)), BOUND_MS);
        assert.equal(Number(await call(client, "keep__pid")), keepPid);
      },
    );

    await t.step("gateway restarts a backend whose definition a reload changed", async () => {
      const addedPid = Number(await call(client, "added__pid"));
      const changed = listChanged.next();
      await gateway.reload(registryWith({ keep, added: misbehaving("added-v2") }));
      await changed;
      assert.equal(await call(client, "added__echo", { message: "again" }), "added-v2: again");
      assert.notEqual(Number(await call(client, "added__pid")), addedPid);
      assert.equal(Number(await call(client, "keep__pid")), keepPid);
    });

    await t.step(
      "gateway tells a 2026-07-28 client's subscription when a reload changes the tools",
      async () => {
        const seen: string[][] = [];
        const updated = Promise.withResolvers<void>();
        const modern = await connectV2(gateway.mcpUrl, "2026-07-28", {}, {
          tools: {
            onChanged: (error, tools) => {
              if (error) updated.reject(error);
              seen.push((tools ?? []).map((tool) => tool.name));
              if (tools?.some((tool) => tool.name === "late__echo")) updated.resolve();
            },
          },
        });
        clients.push(modern);
        assert.ok(!(await toolNames(modern)).includes("late__echo"));
        await gateway.reload(
          registryWith({ keep, added: misbehaving("added-v2"), late: misbehaving("late") }),
        );
        await within(BOUND_MS, updated.promise, "the modern client's tools onChanged");
        assert.ok(seen.at(-1)?.includes("keep__echo"), JSON.stringify(seen));
      },
    );
  }, async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gateway.close();
  });
});
