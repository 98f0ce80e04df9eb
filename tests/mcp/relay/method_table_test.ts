/** Unit tests of the relay's method table: every method routed and guarded, no other known. */
import assert from "node:assert/strict";
import { METHOD_TABLE, routeOf } from "../../../src/mcp/relay/method_table.ts";

Deno.test("routeOf() routes every request method the Router serves", () => {
  const routes = Object.fromEntries([...METHOD_TABLE].map(([method, { route }]) => [method, route]));
  assert.deepEqual(routes, {
    "tools/list": "fan-out",
    "prompts/list": "fan-out",
    "resources/list": "fan-out",
    "resources/templates/list": "fan-out",
    "tasks/list": "fan-out",
    "tools/call": "by-name",
    "prompts/get": "by-name",
    "resources/read": "by-uri",
    "resources/subscribe": "by-uri",
    "resources/unsubscribe": "by-uri",
    "completion/complete": "by-ref",
    "tasks/get": "by-task",
    "tasks/result": "by-task",
    "tasks/cancel": "by-task",
    "tasks/update": "by-task",
    "logging/setLevel": "gateway-local",
  });
});

Deno.test("routeOf() guards every call with the policies and every task with its owner", () => {
  for (const [method, { route, guard }] of METHOD_TABLE) {
    if (route === "by-name" || route === "by-ref") assert.equal(guard, "policy", method);
    if (method.startsWith("tasks/")) assert.equal(guard, "task-owner", method);
  }
  assert.equal(routeOf("resources/read")?.guard, "policy");
  assert.equal(routeOf("resources/subscribe")?.guard, "policy");
});

Deno.test("routeOf() knows no other method", () => {
  for (
    const method of [
      "admin/dropAll",
      "tools/secretCall",
      "tasks/secret",
      "resources/write",
      "",
      "constructor",
    ]
  ) {
    assert.equal(routeOf(method), undefined, method);
  }
});
