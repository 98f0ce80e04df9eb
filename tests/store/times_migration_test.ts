import assert from "node:assert/strict";
import { activeGrants } from "../../src/oauth/grants.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { openStore } from "../../src/store/store.ts";

const NOW = 1_800_000_000_000;
const NOW_S = NOW / 1000;
const TIMES_IN_MS = MIGRATIONS.find((migration) => migration.name === "times_in_milliseconds")!;
/** Every migration before the one that moved the store to milliseconds. */
const BEFORE = MIGRATIONS.filter((migration) => migration.version < TIMES_IN_MS.version);

async function withTempDir(work: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-times-" });
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openStore() migrates access token expiries from epoch seconds to epoch milliseconds", async () => {
  await withTempDir((dir) => {
    const old = openStore(dir, BEFORE);
    try {
      assert.equal(old.schemaVersion(), TIMES_IN_MS.version - 1);
      const grant = old.db.prepare(
        "INSERT INTO access_token_grants (jti, family_id, expires_at, client_id, user_id) VALUES (?, ?, ?, 'c', 'alice')",
      );
      grant.run("live", "f1", NOW_S + 600);
      grant.run("expired", "f2", NOW_S - 1);
      old.db.prepare("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)").run(
        "revoked",
        NOW_S + 60,
      );
      // Already milliseconds (epoch ms columns are left alone).
      old.db.prepare(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity, resource, scope, expires_at, used_at) VALUES ('h', 'f3', 'c', 'bob', '{}', 'r', 'mcp', ?, NULL)",
      ).run(NOW + 60_000);
      old.db.prepare("INSERT INTO audit (at, kind) VALUES (?, 'reload')").run(NOW);
    } finally {
      old.close();
    }

    const store = openStore(dir);
    try {
      assert.equal(store.schemaVersion(), MIGRATIONS.at(-1)!.version);
      const grants = store.db.prepare("SELECT jti, expires_at FROM access_token_grants ORDER BY jti").all();
      assert.deepEqual(grants.map((row) => ({ ...row })), [
        { jti: "expired", expires_at: NOW - 1000 },
        { jti: "live", expires_at: NOW + 600_000 },
      ]);
      const revoked = store.db.prepare("SELECT jti, expires_at FROM revoked_access_tokens").all();
      assert.deepEqual(revoked.map((row) => ({ ...row })), [{ jti: "revoked", expires_at: NOW + 60_000 }]);
      assert.equal(store.db.prepare("SELECT expires_at FROM refresh_tokens").get()?.expires_at, NOW + 60_000);
      assert.equal(store.db.prepare("SELECT at FROM audit").get()?.at, NOW);
      // Read back through the domain, in milliseconds: the live token's family is active, the expired one's not.
      assert.deepEqual(activeGrants(store, NOW).map((grant) => grant.familyId), ["f1", "f3"]);
    } finally {
      store.close();
    }
  });
});

Deno.test("openStore() leaves access token expiries already in milliseconds as they are", async () => {
  await withTempDir((dir) => {
    const old = openStore(dir, BEFORE);
    try {
      old.db.prepare("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)").run("ms", NOW);
      old.db.prepare("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES (?, ?)").run("s", NOW_S);
    } finally {
      old.close();
    }
    const store = openStore(dir);
    try {
      const rows = store.db.prepare("SELECT jti, expires_at FROM revoked_access_tokens ORDER BY jti").all();
      assert.deepEqual(rows.map((row) => ({ ...row })), [
        { jti: "ms", expires_at: NOW },
        { jti: "s", expires_at: NOW },
      ]);
    } finally {
      store.close();
    }
  });
});
