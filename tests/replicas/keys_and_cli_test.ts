/**
 * The command line with replicas on PostgreSQL: `gatehouse keys rotate` changes the signing key of every
 * running replica without signing anyone out, `gatehouse doctor` reports the store, and `gatehouse backup`
 * says to use pg_dump. Real processes on a real PostgreSQL.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeProtectedHeader } from "jose";
import { eventually, runGatehouse } from "../helpers/gatehouse_process.ts";
import { ALLOW_EVERYONE, misbehaving } from "../helpers/mcp_clients.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { aliceHashOnce, mcpInitialize, signedInTokens } from "../oauth/_flow.ts";
import { startReplicas, VAULT_KEY } from "./_replicas.ts";

/** A directory with a registry naming `store` (for the administration commands), removed by the caller. */
async function adminDir(store: string, publicUrl: string, vaultKey = VAULT_KEY): Promise<string> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-replica-admin-" });
  await Deno.writeTextFile(
    join(dir, "registry.yaml"),
    JSON.stringify({ gateway: { public_url: publicUrl, store, vault_key: vaultKey, data_dir: "./data" } }),
  );
  return dir;
}

async function jwksKids(base: string): Promise<string[]> {
  const response = await fetch(`${base}/jwks.json`);
  assert.equal(response.status, 200);
  return ((await response.json()) as { keys: { kid: string }[] }).keys.map((key) => key.kid);
}

Deno.test("gatehouse keys rotate: every replica signs with the new key, and tokens of the old one keep working", async () => {
  const store = await freshDatabase();
  const replicas = await startReplicas(2, store, {
    gateway: { auth: "oauth" },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
    backends: { mis: misbehaving("mis") },
    policies: [ALLOW_EVERYONE],
  });
  const dir = await adminDir(store, replicas.publicUrl);
  try {
    const [a, b] = replicas.urls;
    const before = await signedInTokens(a!);
    const oldKid = decodeProtectedHeader(before.tokens.access_token).kid!;
    assert.deepEqual(await jwksKids(b!), [oldKid]);

    const rotated = await runGatehouse(["keys", "rotate"], { cwd: dir });
    assert.equal(rotated.code, 0, rotated.stdout + rotated.stderr);
    const newKid = /New signing key (\S+):/.exec(rotated.stdout)?.[1];
    assert.ok(newKid && newKid !== oldKid, rotated.stdout);

    // Both replicas hear of it: the new key first in /jwks.json, the old one still there.
    for (const base of [a!, b!]) {
      await eventually(async () => (await jwksKids(base)).join() === [newKid, oldKid].join(), 5_000);
    }
    const after = await signedInTokens(b!);
    assert.equal(decodeProtectedHeader(after.tokens.access_token).kid, newKid);
    for (const base of [a!, b!]) {
      assert.equal((await mcpInitialize(`${base}/mcp`, before.tokens.access_token)).status, 200, "old key");
      assert.equal((await mcpInitialize(`${base}/mcp`, after.tokens.access_token)).status, 200, "new key");
    }

    const listed = await runGatehouse(["keys", "list"], { cwd: dir });
    assert.equal(listed.code, 0, listed.stderr);
    const lines = listed.stdout.trim().split("\n");
    assert.equal(lines.length, 2, listed.stdout);
    assert.match(lines.find((line) => line.startsWith(oldKid))!, /retired /);
    assert.match(lines.find((line) => line.startsWith(newKid))!, /signs$/);
  } finally {
    await replicas.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse keys rotate refuses a vault key that does not open the store's keys, and a SQLite store", async () => {
  const store = await freshDatabase();
  const replicas = await startReplicas(1, store, { gateway: { auth: "oauth" }, backends: {} });
  const wrongKey = await adminDir(store, replicas.publicUrl, "11".repeat(32));
  const sqlite = await Deno.makeTempDir({ prefix: "gatehouse-keys-sqlite-" });
  try {
    const refused = await runGatehouse(["keys", "rotate"], { cwd: wrongKey });
    assert.equal(refused.code, 2, refused.stdout + refused.stderr);
    assert.match(refused.stderr, /vault_key differs/);
    const kids = await jwksKids(replicas.urls[0]!);
    assert.equal(kids.length, 1, "nothing rotated");

    await Deno.writeTextFile(join(sqlite, "registry.yaml"), "gateway: { auth: none, data_dir: ./data }\n");
    await Deno.mkdir(join(sqlite, "data"), { mode: 0o700 });
    await Deno.writeFile(join(sqlite, "data", "gatehouse.db"), new Uint8Array());
    const onSqlite = await runGatehouse(["keys", "list"], { cwd: sqlite });
    assert.equal(onSqlite.code, 1, onSqlite.stdout + onSqlite.stderr);
    assert.match(onSqlite.stderr, /signing-key\.json/);
  } finally {
    await replicas.stop();
    await Deno.remove(wrongKey, { recursive: true });
    await Deno.remove(sqlite, { recursive: true });
  }
});

Deno.test("gatehouse doctor reports the PostgreSQL store, and fails one it cannot reach; backup points at pg_dump", async () => {
  const store = await freshDatabase();
  const replicas = await startReplicas(1, store, { gateway: { auth: "oauth" }, backends: {} });
  const dir = await adminDir(store, replicas.publicUrl);
  const unreachable = new URL(store);
  unreachable.port = "1";
  const away = await adminDir(unreachable.href, replicas.publicUrl);
  try {
    const doctor = await runGatehouse(["doctor"], { cwd: dir });
    const row = doctor.stdout.split("\n").find((line) => line.startsWith("store "));
    assert.ok(row, doctor.stdout + doctor.stderr);
    assert.match(row, /\bok\b/);
    assert.match(row, /PostgreSQL \d+/);
    assert.match(row, /schema version \d+/);
    assert.ok(!row.includes(new URL(store).password), "the password is never shown");
    assert.ok(!doctor.stdout.split("\n").some((line) => line.startsWith("database ")), doctor.stdout);

    const failing = await runGatehouse(["doctor"], { cwd: away });
    const failed = failing.stdout.split("\n").find((line) => line.startsWith("store "));
    assert.ok(failed, failing.stdout + failing.stderr);
    assert.match(failed, /FAIL/);
    assert.match(failed, /cannot connect/);
    assert.notEqual(failing.code, 0);

    const backup = await runGatehouse(["backup", join(dir, "copy.db")], { cwd: dir });
    assert.equal(backup.code, 1, backup.stdout + backup.stderr);
    assert.match(backup.stderr, /pg_dump/);
    assert.ok(!backup.stderr.includes(new URL(store).password), "the password is never shown");
    await assert.rejects(Deno.stat(join(dir, "copy.db")), Deno.errors.NotFound);
  } finally {
    await replicas.stop();
    await Deno.remove(dir, { recursive: true });
    await Deno.remove(away, { recursive: true });
  }
});
