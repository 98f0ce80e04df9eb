import assert from "node:assert/strict";
import { join } from "node:path";
import { loadRegistry } from "../../src/config/load.ts";
import type { Registry } from "../../src/config/types.ts";
import { checkPublicUrl, runDoctorChecks } from "../../src/doctor/checks.ts";
import { displayUrl } from "../../src/doctor/network.ts";

/** A listener on 127.0.0.1 that accepts connections and never answers; `stop()` closes them all. */
function startSilentListener() {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const connections: Deno.Conn[] = [];
  const accepting = (async () => {
    try {
      for await (const connection of listener) connections.push(connection);
    } catch {
      // Closed.
    }
  })();
  return {
    origin: `http://127.0.0.1:${listener.addr.port}`,
    async stop() {
      listener.close();
      await accepting;
      for (const connection of connections) {
        try {
          connection.close();
        } catch {
          // Already closed by the other side.
        }
      }
    },
  };
}

async function registryOf(document: Record<string, unknown>): Promise<{ registry: Registry; dir: string }> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-doctor-unit-" });
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(document));
  const loaded = await loadRegistry(join(dir, "registry.yaml"));
  if (!loaded.ok) throw new Error(JSON.stringify(loaded.problems));
  return { registry: loaded.registry, dir };
}

Deno.test("runDoctorChecks() bounds every network check and runs them at the same time", async () => {
  const silent = startSilentListener();
  const { registry, dir } = await registryOf({
    gateway: { auth: "none" },
    services: { slow: { issuer: silent.origin, client_id: "x" } },
    login: {
      providers: {
        corp: { type: "oidc", issuer: `${silent.origin}/idp`, client_id: "x", allow: { users: ["a"] } },
      },
    },
    backends: {
      one: { http: { url: `${silent.origin}/one` } },
      two: { sse: { url: `${silent.origin}/two` } },
    },
  });
  try {
    const started = performance.now();
    const rows = await runDoctorChecks(registry, { timeoutMs: 300 });
    const elapsed = performance.now() - started;
    const network = rows.filter((row) => ["backend", "service", "login_provider"].includes(row.check));
    assert.equal(network.length, 4);
    for (const row of network) {
      assert.equal(row.result, "FAIL", JSON.stringify(row));
      assert.match(row.detail, /no answer within 300 ms$/);
    }
    // Four hanging checks in parallel cost one bound, not four.
    assert.ok(elapsed < 1_000, `took ${elapsed} ms`);
  } finally {
    await silent.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("runDoctorChecks() takes a stdio backend's PATH from its own env", async () => {
  const { registry, dir } = await registryOf({
    gateway: { auth: "none" },
    backends: { local: { stdio: { command: "tool", env: { PATH: "./bin" } } } },
  });
  try {
    const rows = async () =>
      (await runDoctorChecks(registry, { env: () => "/usr/bin:/bin", cwd: dir }))
        .find((row) => row.check === "command")!;
    assert.deepEqual(await rows(), {
      check: "command",
      target: "local",
      result: "FAIL",
      detail: `"tool" is not an executable file in any directory of the backend's env.PATH`,
    });
    await Deno.mkdir(join(dir, "bin"));
    await Deno.writeTextFile(join(dir, "bin", "tool"), "#!/bin/sh\n", { mode: 0o644 });
    assert.equal((await rows()).result, "FAIL");
    await Deno.chmod(join(dir, "bin", "tool"), 0o755);
    assert.equal((await rows()).detail, `"tool" found at ${join(dir, "bin", "tool")}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("checkPublicUrl() wants https off this machine and a public_url for a reachable oauth gateway", () => {
  const gateway = (publicUrl: string | undefined, hostname = "127.0.0.1", auth: "oauth" | "none" = "oauth") =>
    checkPublicUrl({ publicUrl, listen: { hostname, port: 8740 }, auth } as Registry["gateway"]).result;
  assert.equal(gateway("https://mcp.example.com", "0.0.0.0"), "ok");
  assert.equal(gateway("http://mcp.example.com"), "FAIL");
  assert.equal(gateway("http://192.168.1.20:8740"), "FAIL");
  assert.equal(gateway("http://localhost:8740"), "ok");
  assert.equal(gateway("http://127.0.0.2:8740"), "ok");
  assert.equal(gateway("http://[::1]:8740"), "ok");
  assert.equal(gateway(undefined), "ok");
  assert.equal(gateway(undefined, "0.0.0.0"), "FAIL");
  assert.equal(gateway(undefined, "::1", "none"), "ok");
});

Deno.test("displayUrl() drops user info, query and fragment", () => {
  assert.equal(
    displayUrl("https://user:pass@api.example.com:8443/mcp?key=secret#x"),
    "https://api.example.com:8443/mcp",
  );
  assert.equal(displayUrl("not a url"), "(not a URL)");
});
