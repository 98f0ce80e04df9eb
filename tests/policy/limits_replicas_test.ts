/**
 * Rate limits across two gateway processes counting in one store (SQLite here; replicas on PostgreSQL
 * count the same way): a user's requests a minute are counted once between them, not once each.
 */
import assert from "node:assert/strict";
import { openStore } from "../../src/store/store.ts";
import {
  assertLimitHoldsAcross,
  clientCredentialsToken,
  startCountingReplicas,
} from "../helpers/counting_replicas.ts";
import { ALLOW_EVERYONE, misbehaving, withCleanup, within } from "../helpers/mcp_clients.ts";

const AGENTS = {
  alice: { id: "alice-agent", secret: "alice-agent-secret-for-limit-tests", user: "alice" },
  bob: { id: "bob-agent", secret: "bob-agent-secret-for-limit-tests", user: "bob" },
} as const;

Deno.test("limits on two gateways sharing the counts: 6 a minute between them, the last request on each refused with 429, reported once", async () => {
  const replicas = await startCountingReplicas({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
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
  });
  await withCleanup(async () => {
    const { a, b } = replicas;
    const [token, otherToken] = await Promise.all([
      clientCredentialsToken(a.url, AGENTS.alice),
      clientCredentialsToken(b.url, AGENTS.bob),
    ]);
    await within(30_000, assertLimitHoldsAcross([a.url, b.url], { token, otherToken }, 6));
    const store = openStore(replicas.data);
    try {
      const rows = store.db.prepare("SELECT subject FROM audit WHERE kind = 'rate_limit' ORDER BY subject")
        .all() as { subject: string }[];
      assert.deepEqual(rows.map((row) => row.subject), ["alice", "bob"], "one row a minute per user");
    } finally {
      store.close();
    }
  }, () => replicas.stop());
});
