import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { eventually, type GatehouseProcess, startGatehouse } from "../helpers/gatehouse_process.ts";
import { fillDisk, mountSmallFs } from "./_small_fs.ts";

const REGISTRY = `gateway:
  auth: oauth
  data_dir: ./data
  registration: open
  registrations_per_hour: 10000
`;

/** RFC 7591 registration: a write to the store on every call. */
function register(url: string, name: string): Promise<Response> {
  return fetch(`${url}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: ["http://127.0.0.1:53682/callback"],
      token_endpoint_auth_method: "none",
    }),
  });
}

/** The parts of `/readyz` these tests read. */
interface Readiness {
  status: string;
  store: {
    open: boolean;
    writable: boolean;
    unwritable: { reason: string; since: string; failed_writes: number } | null;
  };
}

async function readyz(url: string): Promise<{ status: number; body: Readiness }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: await response.json() };
}

function logged(gatehouse: GatehouseProcess, level: string, message: string): number {
  return gatehouse.lines.map((line) => JSON.parse(line))
    .filter((line) => line.level === level && line.msg.startsWith(message)).length;
}

Deno.test("gatehouse serve answers 503 and is not ready while its disk is full, then recovers intact", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-disk-full-" });
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir);
  await Deno.writeTextFile(join(dir, "registry.yaml"), REGISTRY);
  const fs = await mountSmallFs(dataDir, 4 * 1024 * 1024);
  let gatehouse: GatehouseProcess | undefined;
  const acknowledged: string[] = [];
  const registerOk = async (name: string) => {
    const response = await register(gatehouse!.url, name);
    const body = await response.json();
    assert.equal(response.status, 201, JSON.stringify(body));
    acknowledged.push(body.client_id);
  };
  const refusedWhileFull = async (name: string) => {
    const response = await register(gatehouse!.url, name);
    const text = await response.text();
    assert.equal(response.status, 503, text);
    assert.equal(response.headers.get("retry-after"), "30");
    assert.equal(response.headers.get("cache-control"), "no-store");
    assert.deepEqual(JSON.parse(text), {
      error: "temporarily_unavailable",
      error_description:
        "The gateway cannot save data right now (its store cannot be written); try again later",
    });
    // Nothing of the inside: no SQLite wording, no path.
    assert.doesNotMatch(text, /sqlite|disk is full|gatehouse\.db|\/tmp\//i);
  };
  try {
    gatehouse = await startGatehouse(["--listen", "127.0.0.1:0"], { cwd: dir });
    await registerOk("before");
    assert.equal((await readyz(gatehouse.url)).status, 200);

    // First burst: the disk fills up.
    const filler = join(dataDir, "filler");
    assert.ok(await fillDisk(filler) > 0);
    for (let attempt = 0; attempt < 4; attempt++) await refusedWhileFull(`full ${attempt}`);
    const notReady = await readyz(gatehouse.url);
    assert.equal(notReady.status, 503);
    assert.equal(notReady.body.status, "not_ready");
    assert.equal(notReady.body.store.open, true);
    assert.equal(notReady.body.store.writable, false);
    assert.equal(notReady.body.store.unwritable?.reason, "disk_full");
    assert.ok((notReady.body.store.unwritable?.failed_writes ?? 0) >= 4);
    await refusedWhileFull("full again");
    await eventually(() => logged(gatehouse!, "error", "store cannot be written") === 1, 5_000);
    assert.equal(logged(gatehouse, "error", "store cannot be written"), 1, "one error line per burst");
    assert.equal(logged(gatehouse, "error", "request failed"), 0, "no per-request error lines");

    // Space returns: the next write succeeds and clears the state.
    await Deno.remove(filler);
    await registerOk("after");
    const ready = await readyz(gatehouse.url);
    assert.equal(ready.status, 200);
    assert.equal(ready.body.store.writable, true);
    assert.equal(ready.body.store.unwritable, null);
    // Log lines are written off the request path: wait for the line rather than race it.
    await eventually(() => logged(gatehouse!, "info", "store writable again") === 1, 5_000);
    assert.equal(logged(gatehouse, "info", "store writable again"), 1);

    // Second burst, and this time no write traffic: /readyz itself notices the space coming back.
    assert.ok(await fillDisk(filler) > 0);
    await refusedWhileFull("second burst");
    await refusedWhileFull("second burst again");
    assert.equal((await readyz(gatehouse.url)).status, 503);
    await eventually(() => logged(gatehouse!, "error", "store cannot be written") === 2, 5_000);
    assert.equal(logged(gatehouse, "error", "store cannot be written"), 2, "one more line for the new burst");
    await Deno.remove(filler);
    await eventually(async () => (await readyz(gatehouse!.url)).status === 200, 5_000);
    await eventually(() => logged(gatehouse!, "info", "store writable again") === 2, 5_000);
    assert.equal(logged(gatehouse, "info", "store writable again"), 2);
    await registerOk("after the second burst");

    const status = await gatehouse.stop("SIGTERM");
    assert.equal(status.code, 0, gatehouse.stderr());
    gatehouse = undefined;

    // Nothing corrupted, everything acknowledged kept, nothing refused half-written.
    const db = new DatabaseSync(join(dataDir, "gatehouse.db"));
    try {
      assert.deepEqual(db.prepare("PRAGMA integrity_check").all().map((row) => row.integrity_check), ["ok"]);
      const clients = db.prepare("SELECT client_id FROM oauth_clients ORDER BY client_id").all()
        .map((row) => row.client_id);
      assert.deepEqual(clients, [...acknowledged].sort());
    } finally {
      db.close();
    }
  } finally {
    await gatehouse?.stop("SIGKILL");
    await fs.unmount();
    await Deno.remove(dir, { recursive: true });
  }
});
