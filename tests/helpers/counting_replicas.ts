/**
 * Two gateway processes on one SQLite data directory that keep their rate-limit and throttle counts in the
 * store (tests/fixtures/counters_in_store_gateway.ts), as replicas on one PostgreSQL store do; and what the
 * tests check of any two replicas, given their URLs, so that it can be pointed at PostgreSQL replicas too.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { basic } from "../oauth/_flow.ts";
import { formFields, ScriptedBrowser } from "./browser_session.ts";
import { type GatehouseProcess, ROOT, startGatehouse } from "./gatehouse_process.ts";
import { freePort, JSON_HEADERS } from "./mcp_clients.ts";

const FIXTURE = join(ROOT, "tests", "fixtures", "counters_in_store_gateway.ts");

export interface CountingReplicas {
  readonly a: GatehouseProcess;
  readonly b: GatehouseProcess;
  /** The data directory both use. */
  readonly data: string;
  stop(): Promise<void>;
}

/**
 * Writes `registry` (given `gateway.public_url`: the issuer both replicas share) and starts two processes
 * on it and on one data directory, one after the other (the first makes the signing key both use).
 */
export async function startCountingReplicas(registry: Record<string, unknown>): Promise<CountingReplicas> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-counters-" });
  const data = join(dir, "data");
  await Deno.mkdir(data, { mode: 0o700 });
  const [portA, portB] = [freePort(), freePort()];
  const gateway = (registry.gateway ?? {}) as Record<string, unknown>;
  const registryPath = join(dir, "registry.yaml");
  // JSON is YAML.
  await Deno.writeTextFile(
    registryPath,
    JSON.stringify({ ...registry, gateway: { ...gateway, public_url: `http://127.0.0.1:${portA}` } }),
  );
  const start = (port: number) =>
    startGatehouse(["--registry", registryPath, "--listen", `127.0.0.1:${port}`, "--data", data], {
      entry: FIXTURE,
    });
  const started: GatehouseProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((process) => process.stop()));
    await Deno.remove(dir, { recursive: true });
  };
  try {
    started.push(await start(portA));
    started.push(await start(portB));
  } catch (error) {
    await stop();
    throw error;
  }
  return { a: started[0]!, b: started[1]!, data, stop };
}

/** An access token of a `client_credentials` client, from the gateway at `base`. */
export async function clientCredentialsToken(
  base: string,
  client: { id: string; secret: string },
): Promise<string> {
  const response = await fetch(`${base}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...basic(client.id, client.secret) },
    body: new URLSearchParams({ grant_type: "client_credentials" }).toString(),
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body.access_token;
}

/** A 2025-era `initialize` POST to `{base}/mcp`: the cheapest request a rate limit counts. */
export async function initializeStatus(base: string, token: string, id: number): Promise<number> {
  const response = await fetch(`${base}/mcp`, {
    method: "POST",
    headers: { ...JSON_HEADERS, authorization: `Bearer ${token}` },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  if (response.status === 429) {
    const body = await response.json();
    assert.equal(body.error.code, -32007, JSON.stringify(body));
    assert.ok(Number(response.headers.get("retry-after")) >= 1);
  } else {
    await response.body?.cancel();
  }
  return response.status;
}

/**
 * A limit of `perMinute` requests a minute (even, well below 60, so that nothing refills meanwhile) for
 * the token's user, on two replicas: `perMinute / 2 + 1` requests to each, taking turns, let through
 * exactly `perMinute`; the last one on each is refused with 429 and -32007. Then a burst of
 * `2 * perMinute` requests at once, split between them, from `otherToken`'s user: exactly `perMinute` pass.
 */
export async function assertLimitHoldsAcross(
  urls: readonly [string, string],
  tokens: { token: string; otherToken: string },
  perMinute: number,
): Promise<void> {
  const statuses: number[][] = [[], []];
  for (let turn = 0; turn < perMinute + 2; turn++) {
    statuses[turn % 2]!.push(await initializeStatus(urls[turn % 2]!, tokens.token, turn + 1));
  }
  const half = perMinute / 2;
  assert.deepEqual(statuses, [[...Array(half).fill(200), 429], [...Array(half).fill(200), 429]]);
  const burst = await Promise.all(
    Array.from(
      { length: 2 * perMinute },
      (_, index) => initializeStatus(urls[index % 2]!, tokens.otherToken, index),
    ),
  );
  assert.deepEqual(burst.toSorted(), [...Array(perMinute).fill(200), ...Array(perMinute).fill(429)]);
}

/**
 * An account allowed `failures` failed sign-ins a window, tried with a wrong password `3 * failures` times
 * at once, split between two replicas: exactly `failures` are checked (401), the rest refused (429).
 */
export async function assertPasswordThrottleHoldsAcross(
  urls: readonly [string, string],
  credentials: { username: string; password: string },
  failures: number,
): Promise<void> {
  // Every form first, then every submission together: none has been answered when the others arrive.
  const browsers = await Promise.all(Array.from({ length: 3 * failures }, async (_, index) => {
    const base = urls[index % 2]!;
    const browser = new ScriptedBrowser();
    return { base, browser, form: formFields(await (await browser.fetch(`${base}/connections`)).text()) };
  }));
  const statuses = await Promise.all(browsers.map(async ({ base, browser, form }) => {
    const response = await browser.post(`${base}/login`, { ...form, ...credentials });
    await response.body?.cancel();
    return response.status;
  }));
  assert.deepEqual(statuses.toSorted(), [...Array(failures).fill(401), ...Array(2 * failures).fill(429)]);
}
