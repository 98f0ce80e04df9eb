import assert from "node:assert/strict";
import { join } from "node:path";
import { runGatehouse, startGatehouse } from "../helpers/gatehouse_process.ts";
import { mountSmallFs } from "../store/_small_fs.ts";

Deno.test("gatehouse serve exits 1 with a clear message when its data directory is read-only", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-ro-data-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  await Deno.writeTextFile(join(dir, "registry.yaml"), "gateway: { auth: none, data_dir: ./data }\n");
  // Root ignores mode bits, so chmod 0500 would not stop it: a file system mounted read-only does.
  const fs = await mountSmallFs(dataDir, 2 * 1024 * 1024);
  try {
    const expected = `gatehouse serve: Cannot open the store: data directory ${dataDir} is not writable ` +
      "(read-only file system)\n";

    // Empty and read-only: nothing can be created.
    await fs.remount("ro");
    const empty = await runGatehouse(["serve", "--listen", "127.0.0.1:0"], { cwd: dir });
    assert.equal(empty.code, 1, empty.stderr);
    assert.equal(empty.stderr, expected);
    assert.doesNotMatch(empty.stderr, /internal error/);

    // A store made by an earlier start, then the file system turned read-only.
    await fs.remount("rw");
    const first = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
    assert.equal((await first.stop("SIGTERM")).code, 0, first.stderr());
    await fs.remount("ro");
    const existing = await runGatehouse(["serve", "--listen", "127.0.0.1:0"], { cwd: dir });
    assert.equal(existing.code, 1, existing.stderr);
    assert.equal(existing.stderr, expected);
    assert.doesNotMatch(existing.stdout, /gatehouse listening/);
  } finally {
    await fs.unmount();
    await Deno.remove(dir, { recursive: true });
  }
});
