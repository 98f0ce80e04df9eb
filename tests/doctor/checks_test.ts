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

Deno.test("runDoctorChecks() FAILs a token endpoint that answers 404, naming the URL and no secret", async () => {
  const { registry, dir } = await registryOf({
    gateway: { auth: "none" },
    services: {
      // A token endpoint answers a token request it cannot grant with 400 (RFC 6749 §5.2).
      good: {
        authorization_endpoint: "https://idp.example.test/authorize",
        token_endpoint: "https://idp.example.test/token",
        client_id: "gatehouse",
        client_secret: "secret-value-5b1d",
      },
      // A mistyped path: the host answers 404.
      typo: {
        authorization_endpoint: "https://idp.example.test/authorize",
        token_endpoint: "https://idp.example.test/tokn?tenant=secret-value-5b1d",
        client_id: "gatehouse",
        client_secret: "secret-value-5b1d",
      },
    },
    login: {
      providers: {
        // GitHub answers 404 to a client id it does not know.
        gh: {
          type: "github",
          client_id: "unknown-app",
          client_secret: "secret-value-5b1d",
          allow: { orgs: ["acme"] },
        },
      },
    },
  });
  const requests: { url: string; method: string; body: string; authorization: string | null }[] = [];
  const fakeFetch = async (input: RequestInfo | URL, init?: RequestInit) => {
    const request = new Request(input, init);
    const body = await request.text();
    requests.push({
      url: request.url,
      method: request.method,
      body,
      authorization: request.headers.get("authorization"),
    });
    const { pathname } = new URL(request.url);
    const known = pathname === "/token" ||
      (pathname === "/login/oauth/access_token" &&
        new URLSearchParams(body).get("client_id") !== "unknown-app");
    return known
      ? Response.json({ error: "invalid_grant" }, { status: 400 })
      : Response.json({ error: "Not Found" }, { status: 404 });
  };
  try {
    const rows = await runDoctorChecks(registry, { fetch: fakeFetch as typeof fetch, cwd: dir });
    const rowOf = (check: string, target: string) =>
      rows.find((row) => row.check === check && row.target === target)!;
    assert.equal(rowOf("service", "good").result, "ok");
    assert.match(
      rowOf("service", "good").detail,
      /^https:\/\/idp\.example\.test\/token answered a token request with HTTP 400/,
    );
    assert.deepEqual(rowOf("service", "typo"), {
      check: "service",
      target: "typo",
      result: "FAIL",
      detail:
        "https://idp.example.test/tokn answered a token request with HTTP 404: no token endpoint there " +
        "(check token_endpoint), or the service does not know client_id",
    });
    assert.equal(rowOf("login_provider", "gh").result, "FAIL");
    assert.match(
      rowOf("login_provider", "gh").detail,
      /^https:\/\/github\.com\/login\/oauth\/access_token answered .* 404/,
    );
    assert.ok(!JSON.stringify(rows).includes("secret-value"), "no secret in a row");
    // The probe is a POST with the client id only: no secret is sent anywhere.
    for (const request of requests.filter((request) => !request.url.includes("/.well-known/"))) {
      assert.equal(request.method, "POST");
      assert.ok(!request.body.includes("secret") && request.authorization === null, JSON.stringify(request));
    }
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
