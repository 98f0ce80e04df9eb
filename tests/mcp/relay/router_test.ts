/** Unit tests of the Router's dispatch: one handler per method of the table, nothing else served. */
import assert from "node:assert/strict";
import { JSONRPC, JsonRpcError } from "../../../src/core/jsonrpc.ts";
import { FRONT_METHODS, isKnownMethod, METHOD_TABLE } from "../../../src/mcp/relay/method_table.ts";
import { HANDLERS, Router } from "../../../src/mcp/relay/router.ts";
import { fakeContext, fakeDeps, registryWithBackends, relayFor } from "./_fake_relay.ts";

Deno.test("HANDLERS has one handler for each method of the method table, and no other", () => {
  assert.deepEqual(Object.keys(HANDLERS).sort(), [...METHOD_TABLE.keys()].sort());
});

Deno.test("isKnownMethod() knows the table's methods and the front's handshake, nothing else", () => {
  for (const method of [...METHOD_TABLE.keys(), ...FRONT_METHODS]) assert.ok(isKnownMethod(method), method);
  for (const method of ["tools/secret", "admin/drop", "__proto__", "constructor", "toString", ""]) {
    assert.equal(isKnownMethod(method), false, method);
  }
});

Deno.test("Router.handle() refuses a method outside the table with -32601 and sends the backend nothing", async () => {
  const registry = await registryWithBackends(["wiki"], [
    '{ id: all, effect: allow, subjects: ["*"], backends: ["*"] }',
  ]);
  const { deps, sent } = fakeDeps(registry, { wiki: { answer: () => Promise.resolve({ done: true }) } });
  const { session } = relayFor(deps, "alice", { kind: "backend", name: "wiki" });
  const router = new Router(deps, session);
  for (
    const method of ["tools/secret", "constructor", "__proto__", "hasOwnProperty", "sampling/createMessage"]
  ) {
    await assert.rejects(
      router.handle({ jsonrpc: "2.0", id: 1, method }, fakeContext()),
      (error: unknown) => error instanceof JsonRpcError && error.code === JSONRPC.methodNotFound,
      method,
    );
  }
  assert.deepEqual(sent, []);
});
