/**
 * The rate limits' buckets in the store (`StoreTokenBuckets`), as replicas sharing a store count: the same
 * answers as the in-memory buckets, one count for several limiters on one store, all-or-none takes across
 * buckets, one refusal report a minute for all of them, and pruning.
 */
import assert from "node:assert/strict";
import { MemoryTokenBuckets, RateLimiter, type TokenBuckets } from "../../src/policy/limits.ts";
import type { PolicySubject } from "../../src/policy/policy.ts";
import { StoreTokenBuckets } from "../../src/policy/shared_buckets.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { registryOf, yaml } from "../config/_helpers.ts";

const registry = await registryOf({
  files: {
    "registry.yaml": yaml(
      "backends:",
      "  a: { http: { url: https://a.example/mcp } }",
      "  b: { http: { url: https://b.example/mcp } }",
      "limits:",
      "  - { id: everyone, subjects: ['*'], requests_per_minute: 6 }",
      "  - { id: staff-a, subjects: ['group:staff'], backends: [a], requests_per_minute: 2 }",
    ),
  },
});
const alice: PolicySubject = { id: "alice", groups: ["staff"], clientId: undefined, provider: undefined };
const bob: PolicySubject = { id: "bob", groups: [], clientId: undefined, provider: undefined };
const endpoint = { kind: "endpoint", backend: undefined } as const;

function withStore(work: (store: Store) => void): void {
  const store = openStore(":memory:");
  try {
    work(store);
  } finally {
    store.close();
  }
}

function bucketRows(store: Store): { bucket: string; tokens: number }[] {
  return store.db.prepare("SELECT bucket, tokens FROM rate_buckets ORDER BY bucket").all() as {
    bucket: string;
    tokens: number;
  }[];
}

/** Everything a limiter answers to one user's requests over a few minutes of a moving clock. */
function script(buckets: TokenBuckets): unknown[] {
  let now = 1_000_000;
  const limiter = new RateLimiter({ buckets, now: () => now });
  const answers: unknown[] = [];
  const take = (subject = bob, count = 1) => answers.push(limiter.take(registry, subject, endpoint, count));
  for (let request = 0; request < 7; request++) take();
  take();
  take(alice);
  now += 9_999;
  take();
  now += 1;
  take();
  take();
  now += 60_000;
  take(bob, 6);
  take(bob, 7);
  now += 3_333;
  take(bob, 1);
  take(alice, 1);
  now += 61_000;
  take();
  return answers;
}

Deno.test("StoreTokenBuckets answers as the in-memory buckets do: the burst, the rate, the retry hint, one report a minute", () => {
  withStore((store) => {
    const expected = script(new MemoryTokenBuckets());
    assert.deepEqual(script(new StoreTokenBuckets(store)), expected);
    // The script's own claims, so that the comparison is of something.
    assert.deepEqual(expected.slice(0, 6), Array(6).fill({ ok: true }));
    const refused = expected[6] as { ok: false; retryAfterSeconds: number; first: boolean };
    assert.equal(refused.ok, false);
    assert.equal(refused.retryAfterSeconds, 10, "6 a minute: one every 10 s");
    assert.equal(refused.first, true);
    assert.equal((expected[7] as { first: boolean }).first, false, "one report a minute");
  });
});

Deno.test("StoreTokenBuckets: two limiters on one store (two replicas) take from the same buckets", () => {
  withStore((store) => {
    const now = 2_000_000;
    const replicaA = new RateLimiter({ buckets: new StoreTokenBuckets(store), now: () => now });
    const replicaB = new RateLimiter({ buckets: new StoreTokenBuckets(store), now: () => now });
    // Six a minute between them: four on each, the last two of B refused.
    const answers = [];
    for (let request = 0; request < 4; request++) answers.push(replicaA.take(registry, bob, endpoint).ok);
    for (let request = 0; request < 4; request++) answers.push(replicaB.take(registry, bob, endpoint).ok);
    assert.deepEqual(answers, [true, true, true, true, true, true, false, false]);
    const refusedOnA = replicaA.take(registry, bob, endpoint);
    assert.ok(!refusedOnA.ok && !refusedOnA.first, "B reported the refusal: A does not again");
    assert.deepEqual(bucketRows(store).map((row) => row.tokens), [0]);
  });
});

Deno.test("StoreTokenBuckets takes from every bucket or from none: a short backend bucket leaves the user's", () => {
  withStore((store) => {
    const now = 3_000_000;
    const limiter = new RateLimiter({ buckets: new StoreTokenBuckets(store), now: () => now });
    const onA = { kind: "endpoint", backend: "a" } as const;
    // /mcp/a counts against both of alice's limits: 6 a minute in all, 2 a minute on a.
    assert.ok(limiter.take(registry, alice, onA).ok);
    assert.ok(limiter.take(registry, alice, onA).ok);
    const refused = limiter.take(registry, alice, onA);
    assert.ok(!refused.ok && refused.limit.id === "staff-a");
    // The refused request took nothing from "everyone": 4 of 6 are left.
    const tokens = Object.fromEntries(
      bucketRows(store).map((row) => [row.bucket.split("\n")[0], row.tokens]),
    );
    assert.deepEqual(tokens, { everyone: 4, "staff-a": 0 });
    for (let request = 0; request < 4; request++) assert.ok(limiter.take(registry, alice, endpoint).ok);
    assert.equal(limiter.take(registry, alice, endpoint).ok, false);
  });
});

Deno.test("StoreTokenBuckets: a batch larger than the limit never fits, and leaves a full bucket", () => {
  withStore((store) => {
    const limiter = new RateLimiter({ buckets: new StoreTokenBuckets(store), now: () => 4_000_000 });
    const refused = limiter.take(registry, bob, endpoint, 7);
    assert.ok(!refused.ok && refused.first && refused.retryAfterSeconds === 10);
    assert.deepEqual(bucketRows(store).map((row) => row.tokens), [6], "the report's row: a full bucket");
    assert.ok(limiter.take(registry, bob, endpoint, 6).ok);
  });
});

Deno.test("StoreTokenBuckets.prune() deletes the buckets idle a minute (full again), not those in use", () => {
  withStore((store) => {
    let now = 5_000_000;
    const buckets = new StoreTokenBuckets(store);
    const limiter = new RateLimiter({ buckets, now: () => now });
    assert.ok(limiter.take(registry, bob, endpoint).ok);
    now += 30_000;
    assert.ok(limiter.take(registry, alice, endpoint).ok);
    now += 30_000;
    assert.equal(buckets.prune(now), 1, "bob's, untouched for a minute");
    assert.deepEqual(bucketRows(store).map((row) => row.bucket.split("\n")[1]), ["alice"]);
    // A refusal reported within the minute keeps its bucket, so that it is not reported again.
    for (let request = 0; request < 6; request++) assert.ok(limiter.take(registry, alice, endpoint).ok);
    now += 5_000;
    const refused = limiter.take(registry, alice, endpoint);
    assert.ok(!refused.ok && refused.first);
    now += 55_000;
    assert.equal(buckets.prune(now), 0, "idle a minute, but reported 55 s ago");
    now += 5_000;
    assert.equal(buckets.prune(now), 1);
    assert.deepEqual(bucketRows(store), []);
  });
});
