/** Unit tests of the task owner table: who may see, read and cancel which task. */
import assert from "node:assert/strict";
import { JsonRpcError } from "../../../src/core/jsonrpc.ts";
import { createdTask, TaskOwners, taskOwnersOf } from "../../../src/mcp/relay/tasks.ts";

const ALICE = { id: "alice", clientId: "app" };
const ALICE_ELSEWHERE = { id: "alice", clientId: "other-app" };
const BOB = { id: "bob", clientId: "app" };

const notFound = (error: unknown) => error instanceof JsonRpcError && error.code === -32602;

Deno.test("createdTask() reads both task result shapes", () => {
  assert.deepEqual(createdTask({ task: { taskId: "t1", status: "working", ttl: 5000 } }), {
    taskId: "t1",
    ttlMs: 5000,
  });
  assert.deepEqual(createdTask({ resultType: "task", taskId: "t2", status: "working", ttlMs: 7000 }), {
    taskId: "t2",
    ttlMs: 7000,
  });
  assert.equal(createdTask({ task: { taskId: "t3", ttl: null } })?.ttlMs, 60 * 60 * 1000);
  assert.equal(createdTask({ content: [] }), undefined);
  assert.equal(createdTask({ task: "t4" }), undefined);
  assert.equal(createdTask({ resultType: "complete", taskId: "t5" }), undefined);
});

Deno.test("TaskOwners.backendOf() answers only the user and client that created the task", () => {
  const owners = new TaskOwners();
  owners.remember(ALICE, "everything", "t1", 60_000);
  assert.equal(owners.backendOf(ALICE, "t1"), "everything");
  assert.throws(() => owners.backendOf(BOB, "t1"), notFound);
  assert.throws(() => owners.backendOf(ALICE_ELSEWHERE, "t1"), notFound);
  assert.throws(() => owners.backendOf(ALICE, "unknown"), notFound);
  assert.throws(() => owners.backendOf(ALICE, undefined), notFound);
  // A task id already owned is not taken over by another call that announces it.
  owners.remember(BOB, "everything", "t1", 60_000);
  assert.throws(() => owners.backendOf(BOB, "t1"), notFound);
});

Deno.test("TaskOwners.owns() filters lists by owner and backend", () => {
  const owners = new TaskOwners();
  owners.remember(ALICE, "a", "t1", 60_000);
  assert.ok(owners.owns(ALICE, "a", "t1"));
  assert.ok(!owners.owns(ALICE, "b", "t1"));
  assert.ok(!owners.owns(BOB, "a", "t1"));
  assert.ok(!owners.owns(ALICE, "a", "t2"));
});

Deno.test("TaskOwners.remember() forgets a task after its ttl", () => {
  let now = 1_000;
  const owners = new TaskOwners(() => now);
  owners.remember(ALICE, "a", "t1", 500);
  assert.equal(owners.backendOf(ALICE, "t1"), "a");
  now = 1_500;
  assert.throws(() => owners.backendOf(ALICE, "t1"), notFound);
  assert.ok(!owners.owns(ALICE, "a", "t1"));
  // Expired, the id may be issued again to someone else.
  owners.remember(BOB, "a", "t1", 500);
  assert.equal(owners.backendOf(BOB, "t1"), "a");
});

Deno.test("TaskOwners.remember() stays bounded", () => {
  const owners = new TaskOwners();
  for (let index = 0; index < 10_050; index++) owners.remember(ALICE, "a", `t${index}`, 60_000);
  assert.ok(owners.size <= 10_000);
  assert.equal(owners.backendOf(ALICE, "t10049"), "a");
});

Deno.test("taskOwnersOf() keeps one table per gateway", () => {
  const one = {};
  assert.equal(taskOwnersOf(one), taskOwnersOf(one));
  assert.notEqual(taskOwnersOf(one), taskOwnersOf({}));
});
