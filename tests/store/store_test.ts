/**
 * Opening a store, its migrations and transactions, on SQLite and PostgreSQL alike (forEachDatabase); what
 * only SQLite has (the data directory's file modes, WAL) is tested on SQLite only.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { DATABASE_FILE, openStore } from "../../src/store/store.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import type { Store } from "../../src/store/store.ts";
import { forEachDatabase, forEachStore } from "../helpers/stores.ts";

async function withTempDir(work: (dir: string) => Promise<void> | void) {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-store-" });
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("openStore() creates the data dir 0700 and an owner-only database in WAL mode", async () => {
  await withTempDir((dir) => {
    const dataDir = join(dir, "nested", "data");
    const store = openStore(dataDir);
    try {
      assert.equal(Deno.statSync(dataDir).mode! & 0o777, 0o700);
      assert.equal(Deno.statSync(join(dataDir, DATABASE_FILE)).mode! & 0o777, 0o600);
      const mode = store.db.prepare("PRAGMA journal_mode").get() as { journal_mode: string };
      assert.equal(mode.journal_mode, "wal");
      const sync = store.db.prepare("PRAGMA synchronous").get() as { synchronous: number };
      assert.equal(sync.synchronous, 2, "synchronous = FULL");
    } finally {
      store.close();
    }
  });
});

forEachDatabase("openStore() applies every migration once and records the version", async (database) => {
  const first = await database.open();
  assert.equal(first.schemaVersion(), MIGRATIONS.at(-1)!.version);
  first.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run("k", "v");
  first.close();
  const again = await database.open();
  assert.equal(again.schemaVersion(), MIGRATIONS.at(-1)!.version);
  assert.equal(again.db.prepare("SELECT value FROM meta WHERE key = 'k'").get()?.value, "v");
});

/** Whether `table` exists: reading it fails when it does not, on either database. */
function hasTable(store: Store, table: string): boolean {
  try {
    store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get();
    return true;
  } catch {
    return false;
  }
}

forEachDatabase("openStore() applies only newer migrations to an older store", async (database) => {
  (await database.open({ migrations: MIGRATIONS.slice(0, 1) })).close();
  const upgraded = await database.open();
  assert.equal(upgraded.schemaVersion(), MIGRATIONS.at(-1)!.version);
  assert.ok(hasTable(upgraded, "audit") && hasTable(upgraded, "meta"));
});

forEachDatabase("openStore() refuses a store written by a newer gatehouse", async (database) => {
  const newer = [...MIGRATIONS, {
    version: 999,
    name: "from the future",
    sql: "CREATE TABLE future (x INTEGER);",
  }];
  (await database.open({ migrations: newer })).close();
  await assert.rejects(
    async () => await database.open(),
    /Cannot open store: its schema version 999 is newer/,
  );
});

forEachDatabase("openStore() rolls back a failing migration whole", async (database) => {
  const broken = [...MIGRATIONS, {
    version: 99,
    name: "broken",
    sql: "CREATE TABLE half (x INTEGER); SELECT nope FROM missing;",
  }];
  await assert.rejects(
    async () => await database.open({ migrations: broken }),
    /Cannot apply store migration 99 "broken"/,
  );
  const store = await database.open();
  assert.equal(store.schemaVersion(), MIGRATIONS.at(-1)!.version);
  assert.equal(hasTable(store, "half"), false);
});

forEachStore("Store.transaction() commits on success and rolls back on a throw", (store) => {
  store.transaction(() => store.db.prepare("INSERT INTO meta VALUES ('a', '1')").run());
  assert.throws(() =>
    store.transaction(() => {
      store.db.prepare("INSERT INTO meta VALUES ('b', '2')").run();
      throw new Error("abort");
    }), /abort/);
  const keys = store.db.prepare("SELECT key FROM meta ORDER BY key").all().map((row) =>
    (row as { key: string }).key
  );
  assert.deepEqual(keys, ["a"]);
});

forEachStore("Store.transaction() nests: an inner transaction is part of the outer one", (store) => {
  assert.throws(() =>
    store.transaction(() => {
      store.transaction(() => store.db.prepare("INSERT INTO meta VALUES ('inner', '1')").run());
      assert.equal(store.db.isTransaction, true);
      throw new Error("abort");
    }), /abort/);
  assert.equal(store.db.prepare("SELECT value FROM meta WHERE key = 'inner'").get(), undefined);
  assert.equal(store.db.isTransaction, false);
});

forEachDatabase("openStore() keeps an acknowledged write when the process is killed", async (database) => {
  const opener = database.dialect === "sqlite"
    ? `const { openStore } = await import(${
      JSON.stringify(new URL("../../src/store/store.ts", import.meta.url).href)
    });
       const store = openStore(${JSON.stringify(database.location)});`
    : `const { openPostgresStore } = await import(${
      JSON.stringify(new URL("../../src/store/postgres/store.ts", import.meta.url).href)
    });
       const store = await openPostgresStore(${JSON.stringify(database.location)});`;
  const script = `
    ${opener}
    store.db.prepare("INSERT INTO meta (key, value) VALUES ('acknowledged', 'yes')").run();
    console.log("written");
    await new Promise(() => {});
  `;
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--quiet", script],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.getReader();
  const { value } = await reader.read();
  assert.match(new TextDecoder().decode(value), /written/);
  child.kill("SIGKILL");
  await child.status;
  reader.releaseLock();
  await child.stdout.cancel();
  const store = await database.open();
  assert.equal(store.db.prepare("SELECT value FROM meta WHERE key = 'acknowledged'").get()?.value, "yes");
});
