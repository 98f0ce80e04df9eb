/**
 * The per-address registration throttle under concurrency: registrations sent at once, to one gateway or
 * split between two gateway processes on one store, register no more than the hour's worth.
 */
import assert from "node:assert/strict";
import { openStore } from "../../src/store/store.ts";
import { startCountingReplicas } from "../helpers/counting_replicas.ts";
import { withCleanup, within } from "../helpers/mcp_clients.ts";
import { REDIRECT_URI, startOAuthGateway } from "./_flow.ts";

const VALID = { client_name: "Editor", redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" };

/** `count` registrations sent at once, taking turns among `bases`; their statuses, sorted. */
async function registerAtOnce(bases: readonly string[], count: number): Promise<number[]> {
  const statuses = await Promise.all(Array.from({ length: count }, async (_, index) => {
    const response = await fetch(`${bases[index % bases.length]}/register`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(VALID),
    });
    await response.body?.cancel();
    return response.status;
  }));
  return statuses.toSorted();
}

Deno.test("POST /register sent 9 times at once with 3 an hour allowed registers 3", async () => {
  const gateway = await startOAuthGateway({ registration: "open", registrations_per_hour: 3 });
  try {
    assert.deepEqual(await registerAtOnce([gateway.base], 9), [...Array(3).fill(201), ...Array(6).fill(429)]);
    const stored = gateway.gateway.store.db.prepare("SELECT COUNT(*) AS n FROM oauth_clients").get();
    assert.equal(Number(stored?.n), 3);
  } finally {
    await gateway.close();
  }
});

Deno.test("POST /register on two gateways sharing a store: 3 an hour between them, refusals reported once", async () => {
  const replicas = await startCountingReplicas({
    gateway: { auth: "oauth", shutdown_timeout: "1s", registration: "open", registrations_per_hour: 3 },
  });
  await withCleanup(async () => {
    const statuses = await within(30_000, registerAtOnce([replicas.a.url, replicas.b.url], 12));
    assert.deepEqual(statuses, [...Array(3).fill(201), ...Array(9).fill(429)]);
    const store = openStore(replicas.data);
    try {
      const count = (sql: string) => Number(store.db.prepare(sql).get()?.n);
      assert.equal(count("SELECT COUNT(*) AS n FROM oauth_clients"), 3);
      assert.equal(count("SELECT COUNT(*) AS n FROM audit WHERE kind = 'registration_throttled'"), 1);
    } finally {
      store.close();
    }
  }, () => replicas.stop());
});
