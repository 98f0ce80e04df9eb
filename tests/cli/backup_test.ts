import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { runGatehouse } from "../helpers/gatehouse_process.ts";
import { startTestGateway } from "../helpers/mcp_clients.ts";

async function registerClient(base: string, name: string): Promise<string> {
  const response = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: ["http://127.0.0.1/callback"],
      token_endpoint_auth_method: "none",
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body.client_id;
}

function clientIdsIn(path: string): string[] {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    const check = db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
    assert.equal(check.integrity_check, "ok");
    return (db.prepare("SELECT client_id FROM oauth_clients ORDER BY client_id").all() as {
      client_id: string;
    }[])
      .map((row) => row.client_id);
  } finally {
    db.close();
  }
}

Deno.test("gatehouse backup copies the store of a serving gateway while it writes, and never overwrites", async () => {
  // Registrations are the stream of writes here: lift the per-address throttle out of the way.
  const gateway = await startTestGateway({
    gateway: { shutdown_timeout: "1s", registrations_per_hour: 1_000_000 },
  });
  const backupDir = await Deno.makeTempDir({ prefix: "gatehouse-backup-" });
  try {
    const base = gateway.gateway.url;
    const dataDir = join(gateway.dir, "data");
    const before: string[] = [];
    for (let index = 0; index < 5; index += 1) before.push(await registerClient(base, `before ${index}`));

    // Keep writing while the backup runs: the copy is one snapshot, whatever it catches of these.
    let writing = true;
    const during: string[] = [];
    const writer = (async () => {
      while (writing) during.push(await registerClient(base, `during ${during.length}`));
    })();
    const file = join(backupDir, "gatehouse-backup.db");
    let backup;
    try {
      backup = await runGatehouse(["backup", file, "--data", dataDir]);
    } finally {
      writing = false;
      await writer;
    }
    assert.equal(backup.code, 0, backup.stderr);
    assert.match(
      backup.stdout,
      /^.*gatehouse-backup\.db: \d+ bytes, schema version \d+, a consistent copy of /,
    );
    assert.equal(Deno.statSync(file).mode! & 0o777, 0o600);
    // One self-contained file: no -wal or -shm beside it.
    assert.deepEqual([...Deno.readDirSync(backupDir)].map((entry) => entry.name), ["gatehouse-backup.db"]);
    assert.ok(during.length > 0, "nothing was written during the backup");

    const copied = clientIdsIn(file);
    for (const id of before) assert.ok(copied.includes(id), `${id} missing from the copy`);
    for (const id of copied) assert.ok(before.includes(id) || during.includes(id), `${id} is unknown`);
    // Whatever the copy has of the clients registered during it, it has a prefix of them: one snapshot.
    const caught = during.filter((id) => copied.includes(id));
    assert.deepEqual(caught, during.slice(0, caught.length));

    const again = await runGatehouse(["backup", file, "--data", dataDir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /gatehouse backup: Cannot write .*gatehouse-backup\.db: it already exists/);
    assert.deepEqual(clientIdsIn(file), copied);
  } finally {
    await gateway.close();
    await Deno.remove(backupDir, { recursive: true });
  }
});

Deno.test("gatehouse backup finds the data directory through the registry and says when there is no store", async () => {
  // Registrations are the stream of writes here: lift the per-address throttle out of the way.
  const gateway = await startTestGateway({
    gateway: { shutdown_timeout: "1s", registrations_per_hour: 1_000_000 },
  });
  const backupDir = await Deno.makeTempDir({ prefix: "gatehouse-backup-" });
  try {
    const id = await registerClient(gateway.gateway.url, "through the registry");
    const file = join(backupDir, "copy.db");
    // The test registry has no data_dir: the default, ./data beside it, is where the gateway keeps its store.
    const viaRegistry = await runGatehouse([
      "backup",
      file,
      "--registry",
      join(gateway.dir, "registry.yaml"),
    ]);
    assert.equal(viaRegistry.code, 0, viaRegistry.stderr);
    assert.deepEqual(clientIdsIn(file), [id]);

    const noStore = await runGatehouse([
      "backup",
      join(backupDir, "none.db"),
      "--data",
      join(backupDir, "empty"),
    ]);
    assert.equal(noStore.code, 1);
    assert.match(noStore.stderr, /Cannot back up: there is no store at /);
    await assert.rejects(Deno.stat(join(backupDir, "none.db")), Deno.errors.NotFound);

    const noFile = await runGatehouse(["backup"]);
    assert.equal(noFile.code, 1);
    assert.match(noFile.stderr, /Missing FILE/);
  } finally {
    await gateway.close();
    await Deno.remove(backupDir, { recursive: true });
  }
});
