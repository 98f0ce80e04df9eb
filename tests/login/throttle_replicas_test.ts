/**
 * The sign-in throttle across two gateway processes counting in one store (SQLite here; replicas on
 * PostgreSQL count the same way): an account's failures are counted once between them, not once each.
 */
import assert from "node:assert/strict";
import { openStore } from "../../src/store/store.ts";
import { assertPasswordThrottleHoldsAcross, startCountingReplicas } from "../helpers/counting_replicas.ts";
import { withCleanup, within } from "../helpers/mcp_clients.ts";
import { aliceHashOnce } from "../oauth/_flow.ts";

const WRONG = "a-wrong-password-for-replica-tests";

Deno.test("POST /login on two gateways sharing the counts: 5 failures of an account between them, then 429 on both, reported once", async () => {
  const replicas = await startCountingReplicas({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: { users: { alice: { password_hash: await aliceHashOnce() } } },
  });
  await withCleanup(async () => {
    const urls = [replicas.a.url, replicas.b.url] as const;
    await within(30_000, assertPasswordThrottleHoldsAcross(urls, { username: "alice", password: WRONG }, 5));
    const store = openStore(replicas.data);
    try {
      const count = (kind: string) =>
        Number(store.db.prepare("SELECT COUNT(*) AS n FROM audit WHERE kind = ?").get(kind)?.n);
      assert.equal(count("sign_in_failed"), 5, "five passwords checked");
      assert.equal(count("sign_in_throttled"), 1, "ten refusals on two gateways: one row a minute");
    } finally {
      store.close();
    }
  }, () => replicas.stop());
});
