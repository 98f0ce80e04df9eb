import assert from "node:assert/strict";
import { join } from "node:path";
import { runGatehouse, startGatehouse } from "../helpers/gatehouse_process.ts";
import { mountSmallFs } from "../store/_small_fs.ts";

/** The `data_dir` and `database` lines of doctor's table, and its summary. */
function storeLines(stdout: string): { dataDir: string; database: string; summary: string } {
  const lines = stdout.trimEnd().split("\n");
  const find = (check: string) => {
    const line = lines.find((candidate) => candidate.startsWith(`${check} `));
    assert.ok(line, `no ${check} line in:\n${stdout}`);
    return line;
  };
  return { dataDir: find("data_dir"), database: find("database"), summary: lines.at(-1)! };
}

Deno.test("gatehouse doctor warns about low space and fails a read-only data directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-doctor-space-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  await Deno.writeTextFile(join(dir, "registry.yaml"), "gateway: { auth: none, data_dir: ./data }\n");
  const fs = await mountSmallFs(dataDir, 2 * 1024 * 1024);
  try {
    // A store the gateway made and left.
    const gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
    assert.equal((await gatehouse.stop("SIGTERM")).code, 0, gatehouse.stderr());

    const low = await runGatehouse(["doctor"], { cwd: dir });
    assert.equal(low.code, 0, low.stdout + low.stderr);
    const lowLines = storeLines(low.stdout);
    assert.match(
      lowLines.dataDir,
      /\bwarn\s+mode 0700, writable, low space: .* free of 2\.0 MiB .*below 100 MiB/,
    );
    assert.match(lowLines.database, /\bok\s+mode 0600, opens, .*writable by its owner$/);
    assert.match(lowLines.summary, /1 warn, 0 FAIL$/);

    await fs.remount("ro");
    const readOnly = await runGatehouse(["doctor"], { cwd: dir });
    assert.equal(readOnly.code, 1, readOnly.stdout + readOnly.stderr);
    assert.match(
      storeLines(readOnly.stdout).dataDir,
      /\bFAIL\s+not writable: its file system is mounted read-only; low space:/,
    );
  } finally {
    await fs.unmount();
    await Deno.remove(dir, { recursive: true });
  }
});
