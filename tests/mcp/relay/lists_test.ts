/** Unit tests of the relay's lists: the fan-out's bounds, the merge and the policy filter. */
import assert from "node:assert/strict";
import { listPrompts, listResources, listTools } from "../../../src/mcp/relay/lists.ts";
import { type FakeBackend, fakeDeps, registryWithBackends, relayFor } from "./_fake_relay.ts";

const ALLOW_ALL = '{ id: all, effect: allow, subjects: ["*"], backends: ["*"] }';

function toolsOf(...names: string[]) {
  return { tools: names.map((name) => ({ name, inputSchema: { type: "object" } })) };
}

const lister = (answer: Record<string, unknown>): FakeBackend => ({
  capabilities: { tools: {}, prompts: {}, resources: {} },
  answer: () => Promise.resolve(answer),
});

Deno.test("listTools() prefixes each backend's names on /mcp and keeps them as they are on /mcp/{backend}", async () => {
  const registry = await registryWithBackends(["wiki", "mail"], [ALLOW_ALL]);
  const { deps } = fakeDeps(registry, {
    wiki: lister(toolsOf("search")),
    mail: lister(toolsOf("search", "send")),
  });
  const aggregate = await listTools(relayFor(deps));
  assert.deepEqual((aggregate.tools as { name: string }[]).map((tool) => tool.name), [
    "wiki__search",
    "mail__search",
    "mail__send",
  ]);
  const single = await listTools(relayFor(deps, "alice", { kind: "backend", name: "mail" }));
  assert.deepEqual((single.tools as { name: string }[]).map((tool) => tool.name), ["search", "send"]);
});

Deno.test("listTools() shows only what the policies allow, and a denied backend not at all", async () => {
  const registry = await registryWithBackends(["wiki", "mail"], [
    '{ id: wiki, effect: allow, subjects: ["user:alice"], backends: ["wiki"] }',
    '{ id: no-delete, effect: deny, subjects: ["*"], backends: ["wiki"], tools: ["delete_*"] }',
  ]);
  const { deps, sent } = fakeDeps(registry, {
    wiki: lister(toolsOf("search", "delete_page")),
    mail: lister(toolsOf("send")),
  });
  const listed = await listTools(relayFor(deps));
  assert.deepEqual((listed.tools as { name: string }[]).map((tool) => tool.name), ["wiki__search"]);
  assert.deepEqual(sent.map((request) => request.backend), ["wiki"], "a backend nobody may use is not asked");
});

Deno.test("listTools() on /mcp leaves out a failing backend and lists the others", async () => {
  const registry = await registryWithBackends(["wiki", "broken"], [ALLOW_ALL]);
  const { deps } = fakeDeps(registry, {
    wiki: lister(toolsOf("search")),
    broken: { capabilities: { tools: {} }, answer: () => Promise.reject(new Error("backend crashed")) },
  });
  const listed = await listTools(relayFor(deps));
  assert.deepEqual((listed.tools as { name: string }[]).map((tool) => tool.name), ["wiki__search"]);
});

Deno.test("listTools() on /mcp answers a slow backend with its last known list within list_timeout", async () => {
  const registry = await registryWithBackends(["wiki", "slow"], [ALLOW_ALL]);
  let slowFirst = true;
  let release: () => void = () => {};
  const { deps } = fakeDeps(registry, {
    wiki: lister(toolsOf("search")),
    slow: {
      capabilities: { tools: {} },
      answer: () => {
        if (slowFirst) {
          slowFirst = false;
          return Promise.resolve(toolsOf("old_tool"));
        }
        // From now on the backend hangs until the test releases it.
        return new Promise((resolve) => release = () => resolve(toolsOf("new_tool")));
      },
    },
  });
  await listTools(relayFor(deps, "alice"));
  const started = performance.now();
  // Another user's session: it has no list of its own, so the shared last known one stands in.
  const listed = await listTools(relayFor(deps, "bob"));
  const waitedMs = performance.now() - started;
  release();
  assert.deepEqual((listed.tools as { name: string }[]).map((tool) => tool.name), [
    "wiki__search",
    "slow__old_tool",
  ]);
  assert.ok(waitedMs < 5000, `waited ${waitedMs} ms, not about list_timeout (1 s)`);
});

Deno.test("listTools() on /mcp leaves out a slow backend never listed, without waiting for it", async () => {
  const registry = await registryWithBackends(["wiki", "hung"], [ALLOW_ALL]);
  let release: () => void = () => {};
  const { deps } = fakeDeps(registry, {
    wiki: lister(toolsOf("search")),
    hung: {
      capabilities: { tools: {} },
      answer: () => new Promise((resolve) => release = () => resolve(toolsOf("late"))),
    },
  });
  const listed = await listTools(relayFor(deps));
  release();
  assert.deepEqual((listed.tools as { name: string }[]).map((tool) => tool.name), ["wiki__search"]);
});

Deno.test("listPrompts() and listResources() skip backends whose capabilities lack them", async () => {
  const registry = await registryWithBackends(["wiki", "tools-only"], [ALLOW_ALL]);
  const { deps, sent } = fakeDeps(registry, {
    wiki: lister({ prompts: [{ name: "summarise" }], resources: [{ uri: "wiki://Home", name: "home" }] }),
    "tools-only": { capabilities: { tools: {} }, answer: () => Promise.resolve(toolsOf("x")) },
  });
  const relay = relayFor(deps);
  const prompts = await listPrompts(relay);
  const resources = await listResources(relay);
  assert.deepEqual((prompts.prompts as { name: string }[]).map((prompt) => prompt.name), ["wiki__summarise"]);
  assert.deepEqual((resources.resources as { uri: string }[]).map((resource) => resource.uri), [
    "wiki://Home",
  ]);
  assert.ok(sent.every((request) => request.backend === "wiki"));
  assert.equal(relay.session.resourceOwners.get("wiki://Home"), "wiki");
});

Deno.test("listResources() keeps a URI listed by two backends with the first, so reads route one way", async () => {
  const registry = await registryWithBackends(["first", "second"], [ALLOW_ALL]);
  const { deps } = fakeDeps(registry, {
    first: lister({ resources: [{ uri: "shared://doc", name: "a" }] }),
    second: lister({ resources: [{ uri: "SHARED://doc", name: "b" }] }),
  });
  const relay = relayFor(deps);
  const listed = await listResources(relay);
  assert.deepEqual((listed.resources as { name: string }[]).map((resource) => resource.name), ["a"]);
  assert.equal(relay.session.resourceOwners.get("shared://doc"), "first");
});
