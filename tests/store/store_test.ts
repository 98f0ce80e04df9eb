import assert from "node:assert/strict";
import { join } from "node:path";
import { DATABASE_FILE, openStore } from "../../src/store/store.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";

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

Deno.test("openStore() applies every migration once and records the version", async () => {
  await withTempDir((dir) => {
    const first = openStore(dir);
    assert.equal(first.schemaVersion(), MIGRATIONS.at(-1)!.version);
    first.db.prepare("INSERT INTO meta (key, value) VALUES (?, ?)").run("k", "v");
    first.close();
    const again = openStore(dir);
    try {
      assert.equal(again.schemaVersion(), MIGRATIONS.at(-1)!.version);
      assert.equal(again.db.prepare("SELECT value FROM meta WHERE key = 'k'").get()?.value, "v");
    } finally {
      again.close();
    }
  });
});

Deno.test("openStore() applies only newer migrations to an older store", async () => {
  await withTempDir((dir) => {
    openStore(dir, MIGRATIONS.slice(0, 1)).close();
    const upgraded = openStore(dir);
    try {
      assert.equal(upgraded.schemaVersion(), MIGRATIONS.at(-1)!.version);
      const tables = upgraded.db.prepare("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        .all()
        .map((row) => (row as { name: string }).name);
      assert.ok(tables.includes("audit") && tables.includes("meta"));
    } finally {
      upgraded.close();
    }
  });
});

Deno.test("openStore() refuses a store written by a newer gatehouse", async () => {
  await withTempDir((dir) => {
    const store = openStore(dir);
    store.db.exec("PRAGMA user_version = 999");
    store.close();
    assert.throws(() => openStore(dir), /Cannot open store: its schema version 999 is newer/);
  });
});

Deno.test("openStore() rolls back a failing migration whole", async () => {
  await withTempDir((dir) => {
    const broken = [...MIGRATIONS, {
      version: 99,
      name: "broken",
      sql: "CREATE TABLE half (x); SELECT nope FROM missing;",
    }];
    assert.throws(() => openStore(dir, broken), /Cannot apply store migration 99 "broken"/);
    const store = openStore(dir);
    try {
      assert.equal(store.schemaVersion(), MIGRATIONS.at(-1)!.version);
      assert.equal(store.db.prepare("SELECT name FROM sqlite_master WHERE name = 'half'").get(), undefined);
    } finally {
      store.close();
    }
  });
});

Deno.test("Store.transaction() commits on success and rolls back on a throw", () => {
  const store = openStore(":memory:");
  try {
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
  } finally {
    store.close();
  }
});

Deno.test("openStore() keeps an acknowledged write when the process is killed", async () => {
  await withTempDir(async (dir) => {
    const storeModule = new URL("../../src/store/store.ts", import.meta.url).href;
    const script = `
      import { openStore } from ${JSON.stringify(storeModule)};
      const store = openStore(${JSON.stringify(dir)});
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
    const store = openStore(dir);
    try {
      assert.equal(store.db.prepare("SELECT value FROM meta WHERE key = 'acknowledged'").get()?.value, "yes");
    } finally {
      store.close();
    }
  });
});
