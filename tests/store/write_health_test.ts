import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { createLogger } from "../../src/log/logger.ts";
import { DATABASE_FILE, openStore, StoreOpenError, StoreUnwritableError } from "../../src/store/store.ts";
import { unwritableReason, WriteHealth } from "../../src/store/write_health.ts";
import { fillDisk, mountSmallFs } from "./_small_fs.ts";

function recordingLogger() {
  const lines: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (line) => lines.push(JSON.parse(line)) });
  return { log, lines, at: (level: string) => lines.filter((line) => line.level === level) };
}

function sqliteError(errcode: number | undefined, message: string): Error {
  const error = new Error(message) as Error & { code: string; errcode?: number };
  error.code = "ERR_SQLITE_ERROR";
  if (errcode !== undefined) error.errcode = errcode;
  return error;
}

function errnoError(code: string): Error {
  return Object.assign(new Error(`${code} (os error)`), { code });
}

Deno.test("unwritableReason() names disk full, read-only, I/O and quota failures and nothing else", () => {
  assert.equal(unwritableReason(sqliteError(13, "database or disk is full")), "disk_full");
  assert.equal(unwritableReason(sqliteError(8, "attempt to write a readonly database")), "read_only");
  // SQLITE_IOERR_WRITE (778) is an extended code of SQLITE_IOERR; EDQUOT reaches SQLite as this.
  assert.equal(unwritableReason(sqliteError(778, "disk I/O error")), "io_error");
  // exec() errors carry only the message.
  assert.equal(unwritableReason(sqliteError(undefined, "database or disk is full")), "disk_full");
  assert.equal(unwritableReason(errnoError("ENOSPC")), "disk_full");
  assert.equal(unwritableReason(errnoError("EROFS")), "read_only");
  assert.equal(unwritableReason(errnoError("EDQUOT")), "quota_exceeded");
  assert.equal(unwritableReason(new Error("wrapped", { cause: errnoError("EROFS") })), "read_only");

  assert.equal(unwritableReason(sqliteError(19, "UNIQUE constraint failed: t.v")), undefined);
  assert.equal(unwritableReason(sqliteError(5, "database is locked")), undefined);
  assert.equal(unwritableReason(sqliteError(undefined, "no such table: t")), undefined);
  assert.equal(unwritableReason(new TypeError("x is undefined")), undefined);
  assert.equal(unwritableReason("database or disk is full"), undefined);
});

Deno.test("WriteHealth logs one error per burst of failures and one info line when a write succeeds", () => {
  const { log, at } = recordingLogger();
  let clock = 1_000;
  const health = new WriteHealth({ path: "/data/gatehouse.db", log, now: () => clock });
  assert.deepEqual(health.state(), { writable: true, failedWrites: 0 });

  assert.equal(health.failed(sqliteError(19, "UNIQUE constraint failed")), undefined);
  assert.equal(health.state().writable, true, "a constraint failure says nothing about the disk");

  for (let attempt = 0; attempt < 5; attempt++) {
    const refused = health.failed(sqliteError(13, "database or disk is full"));
    assert.ok(refused instanceof StoreUnwritableError);
    assert.equal(refused.reason, "disk_full");
    assert.equal(refused.message, "Cannot write the store: the disk is full");
  }
  assert.deepEqual(health.state(), { writable: false, reason: "disk_full", since: 1_000, failedWrites: 5 });
  assert.equal(at("error").length, 1);
  assert.equal(at("error")[0]!.reason, "disk_full");

  clock = 4_000;
  health.succeeded();
  health.succeeded();
  assert.deepEqual(health.state(), { writable: true, failedWrites: 0 });
  assert.equal(at("info").length, 1);
  assert.equal(at("info")[0]!.failed_writes, 5);
  assert.equal(at("info")[0]!.unwritable_ms, 3_000);

  health.failed(sqliteError(8, "attempt to write a readonly database"));
  assert.equal(at("error").length, 2, "a new burst logs again");
});

Deno.test("openStore() on a full disk refuses writes with StoreUnwritableError, recovers, and stays intact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-store-full-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const fs = await mountSmallFs(dataDir, 2 * 1024 * 1024);
  const { log, at } = recordingLogger();
  let clock = 0;
  const store = openStore(dataDir, { log, now: () => clock, retryIntervalMs: 1_000 });
  try {
    store.db.exec("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT NOT NULL)");
    const insert = (body: string) => store.db.prepare("INSERT INTO notes (body) VALUES (?)").run(body);
    insert("before");
    const filler = join(dataDir, "filler");
    assert.ok(await fillDisk(filler) > 0);

    const big = "x".repeat(16 * 1024);
    assert.throws(() => insert(big), StoreUnwritableError);
    // In a transaction SQLite itself rolls back on SQLITE_FULL; the real error must still come through.
    assert.throws(
      () => store.transaction(() => [1, 2, 3].forEach(() => insert(big))),
      (error: unknown) => error instanceof StoreUnwritableError && error.reason === "disk_full",
    );
    assert.equal(store.db.isTransaction, false);
    // Reads keep working.
    assert.deepEqual(store.db.prepare("SELECT body FROM notes").all().map((row) => row.body), ["before"]);
    assert.equal(store.writeHealth().writable, false);
    assert.equal(store.writeHealth().reason, "disk_full");
    assert.equal(store.checkWritable(), false, "the probe write fails too");
    assert.equal(at("error").length, 1, "one error line for the burst");

    await Deno.remove(filler);
    // The probe runs at most once per interval, then notices the space.
    assert.equal(store.checkWritable(), false);
    clock += 1_000;
    assert.equal(store.checkWritable(), true);
    assert.equal(store.writeHealth().writable, true);
    assert.equal(at("info").filter((line) => line.msg === "store writable again").length, 1);
    insert("after");
    store.transaction(() => insert("in a transaction"));
    assert.deepEqual(
      store.db.prepare("SELECT body FROM notes ORDER BY id").all().map((row) => row.body),
      ["before", "after", "in a transaction"],
    );
  } finally {
    store.close();
  }
  try {
    const db = new DatabaseSync(join(dataDir, DATABASE_FILE));
    try {
      assert.deepEqual(db.prepare("PRAGMA integrity_check").all().map((row) => row.integrity_check), ["ok"]);
      assert.equal(db.prepare("SELECT count(*) AS n FROM notes").get()!.n, 3);
    } finally {
      db.close();
    }
  } finally {
    await fs.unmount();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("openStore() on a read-only file system throws StoreOpenError naming the data directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-store-ro-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const fs = await mountSmallFs(dataDir, 2 * 1024 * 1024);
  try {
    openStore(dataDir).close();
    await fs.remount("ro");
    assert.throws(
      () => openStore(dataDir),
      (error: unknown) =>
        error instanceof StoreOpenError &&
        error.message ===
          `Cannot open the store: data directory ${dataDir} is not writable (read-only file system)`,
    );
    // A data directory still to be made on a read-only file system.
    assert.throws(
      () => openStore(join(dataDir, "fresh")),
      (error: unknown) =>
        error instanceof StoreOpenError && /fresh is not writable \(read-only/.test(error.message),
    );
  } finally {
    await fs.unmount();
    await Deno.remove(dir, { recursive: true });
  }
});
