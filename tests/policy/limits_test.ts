import assert from "node:assert/strict";
import { RateLimiter } from "../../src/policy/limits.ts";
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
const alice = { id: "alice", groups: ["staff"], clientId: undefined, provider: undefined };
const bob = { id: "bob", groups: [], clientId: undefined, provider: undefined };

Deno.test("limits: a token bucket per user: a minute's worth at once, then the rate, with a retry hint", () => {
  let now = 1_000_000;
  const limiter = new RateLimiter({ now: () => now });
  const endpoint = { kind: "endpoint", backend: undefined } as const;
  for (let request = 1; request <= 6; request++) {
    assert.deepEqual(limiter.take(registry, bob, endpoint), { ok: true }, `request ${request}`);
  }
  const refused = limiter.take(registry, bob, endpoint);
  assert.equal(refused.ok, false);
  assert.ok(!refused.ok && refused.limit.id === "everyone" && refused.first);
  assert.ok(!refused.ok && refused.retryAfterSeconds === 10, "6 a minute: one every 10 s");
  const again = limiter.take(registry, bob, endpoint);
  assert.ok(!again.ok && !again.first, "one report a minute");
  assert.deepEqual(limiter.take(registry, alice, endpoint), { ok: true }, "another user's bucket is full");
  now += 9_999;
  assert.equal(limiter.take(registry, bob, endpoint).ok, false);
  now += 1;
  assert.deepEqual(limiter.take(registry, bob, endpoint), { ok: true }, "recovered after the hint");
  assert.equal(limiter.take(registry, bob, endpoint, 1).ok, false);
  now += 60_000;
  assert.deepEqual(
    limiter.take(registry, bob, endpoint, 6),
    { ok: true },
    "a full minute refills the bucket",
  );
  assert.equal(
    limiter.take(registry, bob, endpoint, 7).ok,
    false,
    "a batch larger than the bucket never fits",
  );
});

Deno.test("limits: backend limits count on /mcp/{backend} and on calls routed there, not elsewhere", () => {
  const now = 5_000_000;
  const limiter = new RateLimiter({ now: () => now });
  const routedA = { kind: "routed", backend: "a" } as const;
  assert.deepEqual(limiter.take(registry, alice, routedA), { ok: true });
  assert.deepEqual(limiter.take(registry, alice, { kind: "endpoint", backend: "a" }), { ok: true });
  const refused = limiter.take(registry, alice, routedA);
  assert.ok(!refused.ok && refused.limit.id === "staff-a");
  assert.deepEqual(limiter.take(registry, alice, { kind: "routed", backend: "b" }), { ok: true });
  assert.deepEqual(limiter.take(registry, bob, routedA), { ok: true }, "bob is not staff");
  // The endpoint of `a` counted against both limits: alice has 6 - 1 left of hers.
  for (let request = 0; request < 5; request++) {
    assert.deepEqual(limiter.take(registry, alice, { kind: "endpoint", backend: undefined }), { ok: true });
  }
  assert.equal(limiter.take(registry, alice, { kind: "endpoint", backend: undefined }).ok, false);
});
