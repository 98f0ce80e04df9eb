/** Unit tests of the relay's guard and routing: decisions, what a denial says, limits, unknown names. */
import assert from "node:assert/strict";
import { JSONRPC, JsonRpcError } from "../../../src/core/jsonrpc.ts";
import { guardCall } from "../../../src/mcp/relay/guard.ts";
import { HANDLERS } from "../../../src/mcp/relay/router.ts";
import { resolveName, resourceBackend } from "../../../src/mcp/relay/routing.ts";
import { fakeDeps, registryWithBackends, relayFor } from "./_fake_relay.ts";

const RULES = [
  '{ id: staff, effect: allow, subjects: ["*"], backends: ["*"] }',
  '{ id: no-drop, effect: deny, subjects: ["*"], backends: ["db"], tools: ["drop_*"] }',
];

Deno.test("guardCall() denies with -32006 naming the object, never the rule", async () => {
  const registry = await registryWithBackends(["db"], RULES);
  const { deps } = fakeDeps(registry, {});
  const relay = relayFor(deps);
  const db = registry.backends.db!;
  guardCall(relay, db, "tools/call", { kind: "tool", name: "query", readOnly: false });
  assert.throws(
    () => guardCall(relay, db, "tools/call", { kind: "tool", name: "drop_table", readOnly: false }),
    (error: unknown) =>
      error instanceof JsonRpcError && error.code === JSONRPC.accessDenied &&
      error.message === "Access denied: tool drop_table" &&
      !/no-drop|registry\.yaml/.test(JSON.stringify(error)),
  );
});

Deno.test("tools/call is denied before anything reaches the backend", async () => {
  const registry = await registryWithBackends(["db"], RULES);
  const { deps, sent } = fakeDeps(registry, {
    db: {
      capabilities: { tools: {} },
      answer: (method) =>
        Promise.resolve(
          method === "tools/list" ? { tools: [{ name: "drop_table" }, { name: "query" }] } : {},
        ),
    },
  });
  await assert.rejects(
    HANDLERS["tools/call"]!(relayFor(deps), { name: "db__drop_table", arguments: {} }, "tools/call"),
    (error: unknown) => error instanceof JsonRpcError && error.code === JSONRPC.accessDenied,
  );
  assert.deepEqual(sent.filter((request) => request.method === "tools/call"), []);
});

Deno.test("resolveName() finds a prefixed name without listing, and refuses an unknown one", async () => {
  const registry = await registryWithBackends(["db", "wiki"], RULES);
  const { deps, sent } = fakeDeps(registry, {
    db: { capabilities: { tools: {} }, answer: () => Promise.resolve({ tools: [] }) },
    wiki: { capabilities: { tools: {} }, answer: () => Promise.resolve({ tools: [] }) },
  });
  const relay = relayFor(deps);
  const found = await resolveName(relay, "tools", "wiki__search");
  assert.equal(found.backend.name, "wiki");
  assert.equal(found.name, "search");
  assert.deepEqual(sent, []);
  await assert.rejects(
    resolveName(relay, "tools", "nobody__search"),
    (error: unknown) => error instanceof JsonRpcError && error.code === JSONRPC.invalidParams,
  );
});

Deno.test("resourceBackend() routes a URI by the backend that listed it or its template, else not found", async () => {
  const registry = await registryWithBackends(["db", "wiki"], RULES);
  const { deps } = fakeDeps(registry, {
    db: {
      capabilities: { resources: {} },
      answer: (method) =>
        Promise.resolve(
          method === "resources/list"
            ? { resources: [{ uri: "db://tables/users", name: "users" }] }
            : { resourceTemplates: [] },
        ),
    },
    wiki: {
      capabilities: { resources: {} },
      answer: (method) =>
        Promise.resolve(
          method === "resources/list"
            ? { resources: [] }
            : { resourceTemplates: [{ uriTemplate: "wiki://pages/{name}", name: "page" }] },
        ),
    },
  });
  const relay = relayFor(deps);
  assert.equal((await resourceBackend(relay, "db://tables/users")).name, "db");
  assert.equal((await resourceBackend(relay, "wiki://pages/Home")).name, "wiki");
  await assert.rejects(
    resourceBackend(relay, "wiki://other/Home"),
    (error: unknown) => error instanceof JsonRpcError && /Resource not found/.test(error.message),
  );
});
