import assert from "node:assert/strict";
import { join } from "node:path";
import { checkDataDir } from "../../src/doctor/data_dir.ts";
import { formatBytes, judgeSpace } from "../../src/doctor/disk_space.ts";
import { openStore } from "../../src/store/store.ts";
import { fillDisk, mountSmallFs } from "../store/_small_fs.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

Deno.test("judgeSpace() warns below 100 MiB or 5% free and fails with nothing left", () => {
  assert.deepEqual(judgeSpace({ freeBytes: 80 * GIB, totalBytes: 250 * GIB }), {
    result: "ok",
    detail: "80 GiB free of 250 GiB (32%)",
  });
  const fewBytes = judgeSpace({ freeBytes: 50 * MIB, totalBytes: 200 * MIB });
  assert.equal(fewBytes.result, "warn");
  assert.equal(
    fewBytes.detail,
    "low space: 50 MiB free of 200 MiB (25%), below 100 MiB; writes answer 503 once it runs out",
  );
  const fewPercent = judgeSpace({ freeBytes: 8 * GIB, totalBytes: 200 * GIB });
  assert.equal(fewPercent.result, "warn");
  assert.match(fewPercent.detail, /8\.0 GiB free of 200 GiB \(4%\), below 5%;/);
  assert.equal(judgeSpace({ freeBytes: 0, totalBytes: 2 * MIB }).result, "FAIL");
  assert.equal(
    judgeSpace({ freeBytes: 2 * MIB, totalBytes: 4 * MIB }, { minFreeBytes: MIB, minFreePercent: 1 })
      .result,
    "ok",
  );
  assert.equal(formatBytes(1536 * 1024), "1.5 MiB");
  assert.equal(formatBytes(512), "512 bytes");
});

/** A data directory on its own small file system, with a store made by the gateway's own code. */
async function smallDataDir(sizeBytes: number) {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-doctor-store-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  const fs = await mountSmallFs(dataDir, sizeBytes);
  openStore(dataDir).close();
  return {
    dataDir,
    database: join(dataDir, "gatehouse.db"),
    fs,
    async remove() {
      await fs.unmount();
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function rowOf(rows: { check: string; result: string; detail: string }[], check: string) {
  const found = rows.find((row) => row.check === check);
  assert.ok(found, `no ${check} row in ${JSON.stringify(rows)}`);
  return found;
}

Deno.test("checkDataDir() warns on low free space and fails a full or read-only file system", async () => {
  const fixture = await smallDataDir(2 * MIB);
  try {
    const low = rowOf(await checkDataDir(fixture.dataDir), "data_dir");
    assert.equal(low.result, "warn");
    assert.match(
      low.detail,
      /^mode 0700, writable, low space: [\d.]+ (MiB|KiB) free of 2\.0 MiB \(\d+%\), below 100 MiB;/,
    );
    const roomy = rowOf(
      await checkDataDir(fixture.dataDir, { lowSpace: { minFreeBytes: 1, minFreePercent: 1 } }),
      "data_dir",
    );
    assert.equal(roomy.result, "ok");
    assert.match(roomy.detail, /^mode 0700, writable, [\d.]+ (MiB|KiB) free of 2\.0 MiB \(\d+%\)$/);

    await fillDisk(join(fixture.dataDir, "filler"));
    const full = rowOf(await checkDataDir(fixture.dataDir), "data_dir");
    assert.equal(full.result, "FAIL");
    assert.match(full.detail, /no space left on its file system \(0 bytes free of 2\.0 MiB \(0%\)\)/);
    await Deno.remove(join(fixture.dataDir, "filler"));

    await fixture.fs.remount("ro");
    const rows = await checkDataDir(fixture.dataDir);
    const readOnly = rowOf(rows, "data_dir");
    assert.equal(readOnly.result, "FAIL");
    assert.match(readOnly.detail, /^not writable: its file system is mounted read-only; /);
  } finally {
    await fixture.remove();
  }
});

Deno.test("checkDataDir() fails a store the serving user (the data directory's owner) cannot write", async () => {
  const fixture = await smallDataDir(4 * MIB);
  const rootRuns = Deno.uid() === 0;
  try {
    const sound = await checkDataDir(fixture.dataDir, { lowSpace: { minFreeBytes: 1, minFreePercent: 1 } });
    assert.deepEqual(sound.map((row) => [row.check, row.result]), [["data_dir", "ok"], ["database", "ok"]]);
    assert.match(rowOf(sound, "database").detail, /writable by its owner$/);

    await Deno.chmod(fixture.database, 0o400);
    const readOnlyFile = rowOf(await checkDataDir(fixture.dataDir), "database");
    assert.equal(readOnlyFile.result, "FAIL");
    assert.equal(
      readOnlyFile.detail,
      `${fixture.database} is read-only (mode 0400): the gateway cannot write it (chmod 600)`,
    );
    await Deno.chmod(fixture.database, 0o600);

    await Deno.chmod(fixture.dataDir, 0o500);
    const closedDir = rowOf(await checkDataDir(fixture.dataDir), "data_dir");
    assert.equal(closedDir.result, "FAIL");
    assert.match(closedDir.detail, /^mode 0500 does not let its owner \(who serves it\) create files/);
    await Deno.chmod(fixture.dataDir, 0o700);

    // Only root can hand the directory to another user; as anyone else this part has nothing to set up.
    assert.ok(rootRuns, "these tests mount file systems, so they run as root");
    await Deno.chown(fixture.dataDir, 4242, 4242);
    const rows = await checkDataDir(fixture.dataDir, { lowSpace: { minFreeBytes: 1, minFreePercent: 1 } });
    const dataDir = rowOf(rows, "data_dir");
    assert.equal(dataDir.result, "ok");
    assert.match(dataDir.detail, /owned by uid 4242, who should serve it \(doctor runs as uid 0\)/);
    const database = rowOf(rows, "database");
    assert.equal(database.result, "FAIL");
    assert.match(
      database.detail,
      new RegExp(
        `^${fixture.database} belongs to uid 0, not to uid 4242 who owns the data directory and serves it`,
      ),
    );
    // The -wal and -shm beside it too (SQLite, run as root, gives them the database file's owner).
    for (const file of [fixture.database, `${fixture.database}-wal`, `${fixture.database}-shm`]) {
      await Deno.chown(file, 4242, 4242).catch((error) => {
        if (!(error instanceof Deno.errors.NotFound)) throw error;
      });
    }
    const handedOver = rowOf(await checkDataDir(fixture.dataDir), "database");
    assert.equal(handedOver.result, "ok", handedOver.detail);
  } finally {
    await fixture.remove();
  }
});
