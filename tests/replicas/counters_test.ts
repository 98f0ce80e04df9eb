/**
 * Counters every replica on one PostgreSQL store shares (product §10), end to end with real processes: a
 * user's rate limit, an account's failed sign-ins and a network's registrations are counted once between
 * two replicas, not once each, and each burst of refusals is reported once. The same checks as the SQLite tests of two processes
 * on one data directory (tests/helpers/counting_replicas.ts).
 */
import assert from "node:assert/strict";
import { openPostgresStore } from "../../src/store/postgres/store.ts";
import {
  assertLimitHoldsAcross,
  assertPasswordThrottleHoldsAcross,
  clientCredentialsToken,
} from "../helpers/counting_replicas.ts";
import { ALLOW_EVERYONE, misbehaving, within } from "../helpers/mcp_clients.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { aliceHashOnce, REDIRECT_URI } from "../oauth/_flow.ts";
import { type Replicas, startReplicas } from "./_replicas.ts";

/** Bound on one scenario: a hang fails the test instead of stalling it. */
const SCENARIO_BOUND_MS = 30_000;
const AGENTS = {
  alice: { id: "alice-agent", secret: "alice-agent-secret-for-counter-tests", user: "alice" },
  bob: { id: "bob-agent", secret: "bob-agent-secret-for-counter-tests", user: "bob" },
} as const;

/** Two replicas of `registry` on a fresh database; `work` gets them and a count of rows in that database. */
async function withTwoReplicas(
  registry: Record<string, unknown>,
  work: (urls: readonly [string, string], count: (sql: string) => Promise<number>) => Promise<void>,
): Promise<void> {
  const storeUrl = await freshDatabase();
  const replicas: Replicas = await startReplicas(2, storeUrl, registry);
  try {
    const count = async (sql: string) => {
      const store = await openPostgresStore(storeUrl);
      try {
        return Number(store.db.prepare(sql).get()?.n);
      } finally {
        store.close();
      }
    };
    await work([replicas.urls[0]!, replicas.urls[1]!], count);
  } finally {
    await replicas.stop();
  }
}

Deno.test("replicas on PostgreSQL count a rate limit once: 6 a minute between two, the last on each refused, reported once", async () => {
  await withTwoReplicas({
    gateway: { auth: "oauth" },
    clients: Object.fromEntries(
      Object.values(AGENTS).map((agent) => [agent.id, {
        secret: agent.secret,
        grant_types: ["client_credentials"],
        user: agent.user,
      }]),
    ),
    backends: { mis: misbehaving("mis") },
    policies: [ALLOW_EVERYONE],
    limits: [{ id: "six", subjects: ["*"], requests_per_minute: 6 }],
  }, async (urls, count) => {
    const [token, otherToken] = await Promise.all([
      clientCredentialsToken(urls[0], AGENTS.alice),
      clientCredentialsToken(urls[1], AGENTS.bob),
    ]);
    await within(SCENARIO_BOUND_MS, assertLimitHoldsAcross(urls, { token, otherToken }, 6));
    assert.equal(await count("SELECT COUNT(*) AS n FROM audit WHERE kind = 'rate_limit'"), 2, "one per user");
  });
});

Deno.test("replicas on PostgreSQL count failed sign-ins once: 5 of an account between two, then 429 on both, reported once", async () => {
  await withTwoReplicas({
    gateway: { auth: "oauth" },
    login: { users: { alice: { password_hash: await aliceHashOnce() } } },
  }, async (urls, count) => {
    const wrong = { username: "alice", password: "a-wrong-password-for-replica-tests" };
    await within(SCENARIO_BOUND_MS, assertPasswordThrottleHoldsAcross(urls, wrong, 5));
    assert.equal(await count("SELECT COUNT(*) AS n FROM audit WHERE kind = 'sign_in_failed'"), 5);
    assert.equal(await count("SELECT COUNT(*) AS n FROM audit WHERE kind = 'sign_in_throttled'"), 1);
  });
});

Deno.test("replicas on PostgreSQL count registrations once: 12 at once on two, 3 an hour allowed, 3 registered", async () => {
  await withTwoReplicas({
    gateway: { auth: "oauth", registration: "open", registrations_per_hour: 3 },
  }, async (urls, count) => {
    const statuses = await within(
      SCENARIO_BOUND_MS,
      Promise.all(Array.from({ length: 12 }, async (_, index) => {
        const response = await fetch(`${urls[index % 2]}/register`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            client_name: "Editor",
            redirect_uris: [REDIRECT_URI],
            token_endpoint_auth_method: "none",
          }),
        });
        await response.body?.cancel();
        return response.status;
      })),
    );
    assert.deepEqual(statuses.toSorted(), [...Array(3).fill(201), ...Array(9).fill(429)]);
    assert.equal(await count("SELECT COUNT(*) AS n FROM oauth_clients"), 3);
    assert.equal(await count("SELECT COUNT(*) AS n FROM audit WHERE kind = 'registration_throttled'"), 1);
  });
});
