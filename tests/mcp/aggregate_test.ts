/**
 * End-to-end: `/mcp` aggregates several backends (prefixes, names kept within 64 characters, the union
 * of capabilities, tool filters), and relays a backend's log message to the session whose call it is.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import {
  connectV2,
  everythingStdio,
  misbehaving,
  registryWith,
  startTestGateway,
  textOf,
  withCleanup,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 15_000;
/** 60 characters: every `{prefix}__{tool}` of this backend is longer than 64. */
const LONG_PREFIX = "a_backend_prefix_long_enough_to_push_every_tool_name_past_64";
const FIXTURE_TOOLS = ["crash", "echo", "hang", "log", "needs_url", "pid", "progress", "roots", "slow"];

async function toolNames(client: Client): Promise<string[]> {
  return (await within(BOUND_MS, client.listTools(), "tools/list")).tools.map((tool) => tool.name);
}

/** Asserts that a call fails with a JSON-RPC error whose message matches `pattern`, without hanging. */
async function assertCallFails(
  client: Client,
  name: string,
  pattern: RegExp,
  args: Record<string, unknown> = {},
): Promise<void> {
  await assert.rejects(
    within(BOUND_MS, client.callTool({ name, arguments: args })),
    (error: Error & { code?: unknown }) => {
      assert.equal(typeof error.code, "number", `a JSON-RPC error, not ${error}`);
      assert.match(error.message, pattern);
      return true;
    },
  );
}

Deno.test("MCP aggregation of several backends on /mcp", async (t) => {
  const gateway = await startTestGateway(registryWith({
    alpha: misbehaving("alpha", { tools: { exclude: ["hang", "cr*"] } }),
    everything: everythingStdio({ tools: { include: ["echo", "get-*"] } }),
    long: misbehaving("long", { prefix: LONG_PREFIX }),
  }));
  const clients: Client[] = [];
  const connect = async (path = "") => {
    const client = await within(BOUND_MS, connectV2(gateway.mcpUrl + path, "2025-11-25"), "connect");
    clients.push(client);
    return client;
  };
  await withCleanup(async () => {
    const client = await connect();

    await t.step("gateway lists the tools of every backend under its prefix on /mcp", async () => {
      const names = await toolNames(client);
      assert.ok(names.includes("alpha__echo"), names.join());
      assert.ok(names.includes("everything__echo"), names.join());
      assert.equal(
        textOf(await client.callTool({ name: "alpha__echo", arguments: { message: "hi" } })),
        "alpha: hi",
      );
      assert.equal(
        textOf(await client.callTool({ name: "everything__echo", arguments: { message: "hi" } })),
        "Echo: hi",
      );
      assert.equal(new Set(names).size, names.length, "names are unique");
    });

    await t.step(
      "gateway shortens names over 64 characters deterministically, and they still call",
      async () => {
        const names = await toolNames(client);
        const long = names.filter((name) => name.startsWith(LONG_PREFIX.slice(0, 40)));
        assert.equal(long.length, FIXTURE_TOOLS.length, long.join());
        for (const name of names) assert.ok(name.length <= 64, `${name} is ${name.length} characters`);
        for (const name of long) assert.match(name, /_[0-9a-f]{8}$/, "a shortened name ends in a short hash");
        // Another session, and another list: the same names.
        const other = await connect();
        assert.deepEqual((await toolNames(other)).toSorted(), names.toSorted());
        // Each shortened name reaches its own tool.
        const tools = (await client.listTools()).tools.filter((tool) => long.includes(tool.name));
        const echo = tools.find((tool) => /echoes/i.test(tool.description ?? ""));
        const pid = tools.find((tool) => /process/i.test(tool.description ?? ""));
        assert.ok(echo && pid, JSON.stringify(tools.map((tool) => [tool.name, tool.description])));
        assert.notEqual(echo.name, pid.name);
        assert.equal(
          textOf(await client.callTool({ name: echo.name, arguments: { message: "far" } })),
          "long: far",
        );
        assert.match(textOf(await client.callTool({ name: pid.name, arguments: {} })), /^\d+$/);
      },
    );

    await t.step("gateway announces the union of its backends' capabilities on /mcp", async () => {
      const union = client.getServerCapabilities();
      assert.ok(union?.tools && union.prompts && union.resources && union.logging, JSON.stringify(union));
      const alphaOnly = await connect("/alpha");
      const alpha = alphaOnly.getServerCapabilities();
      assert.ok(alpha?.tools && alpha.logging, JSON.stringify(alpha));
      assert.equal(alpha.prompts, undefined, "the fixture has no prompts");
      assert.equal(alpha.resources, undefined, "the fixture has no resources");
      // What only server-everything offers works through /mcp.
      const prompts = (await within(BOUND_MS, client.listPrompts())).prompts.map((prompt) => prompt.name);
      assert.ok(prompts.includes("everything__simple-prompt"), prompts.join());
      const prompt = await within(BOUND_MS, client.getPrompt({ name: "everything__simple-prompt" }));
      assert.ok(prompt.messages.length > 0);
      const resources = (await within(BOUND_MS, client.listResources())).resources.map((resource) =>
        resource.uri
      );
      const architecture = "demo://resource/static/document/architecture.md";
      assert.ok(resources.includes(architecture), resources.join());
      const read = await within(BOUND_MS, client.readResource({ uri: architecture }));
      assert.equal(read.contents[0]?.uri, architecture);
    });

    await t.step("gateway applies tools.include and tools.exclude to lists and calls", async () => {
      const names = await toolNames(client);
      const alpha = names.filter((name) => name.startsWith("alpha__")).toSorted();
      assert.deepEqual(alpha, [
        "alpha__echo",
        "alpha__log",
        "alpha__needs_url",
        "alpha__pid",
        "alpha__progress",
        "alpha__roots",
        "alpha__slow",
      ]);
      const everything = names.filter((name) => name.startsWith("everything__"));
      assert.ok(everything.length > 1, everything.join());
      for (const name of everything) assert.match(name, /^everything__(echo|get-.*)$/);
      // Filtered out is unknown: the call fails at once (it would hang or crash otherwise).
      await assertCallFails(client, "alpha__hang", /unknown tool/i);
      await assertCallFails(client, "alpha__crash", /unknown tool/i);
      await assertCallFails(client, "everything__trigger-long-running-operation", /unknown tool/i, {
        duration: 0.1,
        steps: 1,
      });
      // The same on the per-backend endpoint.
      const single = await connect("/everything");
      const own = await toolNames(single);
      assert.ok(own.includes("echo") && !own.includes("trigger-long-running-operation"), own.join());
      await assertCallFails(single, "trigger-long-running-operation", /unknown tool/i, {
        duration: 0.1,
        steps: 1,
      });
      // The filtered backends still answer what is allowed.
      assert.match(textOf(await client.callTool({ name: "alpha__pid", arguments: {} })), /^\d+$/);
    });

    await t.step("gateway relays a backend's log message to the session whose call sent it", async () => {
      const received: unknown[] = [];
      const bystanderReceived: unknown[] = [];
      const caller = await connect();
      const bystander = await connect();
      caller.setNotificationHandler("notifications/message", (notification) => {
        received.push(notification.params);
      });
      bystander.setNotificationHandler("notifications/message", (notification) => {
        bystanderReceived.push(notification.params);
      });
      const result = await within(
        BOUND_MS,
        caller.callTool({ name: "alpha__log", arguments: { message: "note" } }),
      );
      assert.equal(textOf(result), "logged note");
      // The log message was sent before the result, on the same stream.
      await within(
        BOUND_MS,
        (async () => {
          while (received.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
        })(),
      );
      assert.deepEqual(received, [{ level: "info", data: "note", logger: "alpha" }]);
      assert.deepEqual(bystanderReceived, []);
    });
  }, async () => {
    await Promise.all(clients.map((client) => client.close()));
    await gateway.close();
  });
});
