/**
 * Pending provider sign-ins in the store (`pending_logins`) under a clock the tests move, against a real
 * OpenID provider (oauth2-mock-server) on 127.0.0.1; and the per-address start throttle on its own.
 */
import assert from "node:assert/strict";
import { OAuth2Server } from "npm:oauth2-mock-server@9.3.0";
import { loadRegistry } from "../../src/config/load.ts";
import { createLogger } from "../../src/log/logger.ts";
import { UpstreamLogins } from "../../src/login/providers.ts";
import { StartThrottle } from "../../src/login/throttle.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { within } from "../helpers/mcp_clients.ts";

const TEST_BOUND_MS = 30_000;
const CALLBACK_URL = "http://127.0.0.1:9/login/corp/callback";
const TEN_MINUTES_MS = 10 * 60_000;

interface World {
  readonly logins: UpstreamLogins;
  readonly store: Store;
  /** Moves the clock of the sign-ins (not the provider's) forward. */
  advance(ms: number): void;
  /** Starts a sign-in as `binding` and signs in at the provider: the callback URL it sent back. */
  callbackOf(binding: string, address?: string): Promise<URL>;
}

/** UpstreamLogins with provider `corp` at a mock OpenID provider, a store in memory and its own clock. */
async function withLogins(work: (world: World) => Promise<void>): Promise<void> {
  const mock = new OAuth2Server();
  await mock.issuer.keys.generate("RS256");
  await mock.start(0, "127.0.0.1");
  const store = openStore(":memory:");
  try {
    const registry = JSON.stringify({
      login: {
        providers: {
          corp: { type: "oidc", issuer: mock.issuer.url!, client_id: "c", allow: { groups: ["staff"] } },
        },
      },
    });
    const loaded = await loadRegistry("/nowhere/registry.yaml", {
      env: () => undefined,
      readTextFile: () => Promise.resolve(registry),
      readDirNames: () => Promise.resolve(undefined),
    });
    assert.ok(loaded.ok, JSON.stringify(loaded));
    let now = Date.now();
    const logins = new UpstreamLogins(() => loaded.registry, createLogger({ write: () => {} }), {
      store,
      now: () => now,
    });
    const callbackOf = async (binding: string, address = "192.0.2.1") => {
      const started = await logins.start("corp", "/status", CALLBACK_URL, binding, address);
      assert.ok("location" in started, "started");
      const response = await fetch(started.location, { redirect: "manual" });
      await response.body?.cancel();
      assert.equal(response.status, 302);
      return new URL(response.headers.get("location")!);
    };
    await within(
      TEST_BOUND_MS,
      work({ logins, store, advance: (ms) => now += ms, callbackOf }),
      "the test",
    );
  } finally {
    store.close();
    await mock.stop();
  }
}

function pendingCount(store: Store): number {
  return (store.db.prepare("SELECT COUNT(*) AS n FROM pending_logins").get() as { n: number }).n;
}

Deno.test("UpstreamLogins.start() keeps only hashes of the state and the browser binding in the store", async () => {
  await withLogins(async ({ store, callbackOf }) => {
    const callback = await callbackOf("binding-of-browser-a", "2001:db8:1:2::7");
    const state = callback.searchParams.get("state")!;
    const rows = store.db.prepare("SELECT * FROM pending_logins").all() as Record<string, unknown>[];
    assert.equal(rows.length, 1);
    const row = rows[0]!;
    assert.equal(row.provider, "corp");
    assert.equal(row.return_to, "/status");
    assert.equal(row.address, "2001:db8:1:2::/64", "counted per /64");
    assert.equal(Number(row.expires_at) - Number(row.created_at), TEN_MINUTES_MS);
    const text = JSON.stringify(row);
    assert.ok(!text.includes(state), "the state itself is not kept");
    assert.ok(!text.includes("binding-of-browser-a"), "the binding itself is not kept");
  });
});

Deno.test("UpstreamLogins.finish() refuses a sign-in past its 10 minutes and deletes expired ones; start() too", async () => {
  await withLogins(async ({ logins, store, advance, callbackOf }) => {
    const stale = await callbackOf("browser-a");
    const alsoStale = await callbackOf("browser-b");
    advance(TEN_MINUTES_MS);
    await assert.rejects(
      logins.finish("corp", stale, CALLBACK_URL, "browser-a"),
      /expired or was already used/,
    );
    assert.equal(pendingCount(store), 0, "both expired rows went on use");

    await callbackOf("browser-c");
    advance(TEN_MINUTES_MS - 1);
    await callbackOf("browser-d");
    advance(1);
    await callbackOf("browser-e");
    assert.equal(pendingCount(store), 2, "starting deleted browser-c's expired row");
    await assert.rejects(logins.finish("corp", alsoStale, CALLBACK_URL, "browser-b"), /expired/);
  });
});

Deno.test("UpstreamLogins.finish() leaves a sign-in in place when another browser, or no browser, presents it", async () => {
  await withLogins(async ({ logins, store, callbackOf }) => {
    const callback = await callbackOf("browser-a");
    await assert.rejects(logins.finish("corp", callback, CALLBACK_URL, "browser-b"), /expired or was/);
    await assert.rejects(logins.finish("corp", callback, CALLBACK_URL, undefined), /expired or was/);
    await assert.rejects(logins.finish("other", callback, CALLBACK_URL, "browser-a"), /expired or was/);
    assert.equal(pendingCount(store), 1, "still there for its own browser");
  });
});

Deno.test("StartThrottle admits 20 starts per network in 10 minutes and reports one refusal a minute", () => {
  let now = 0;
  const throttle = new StartThrottle({ now: () => now });
  for (let index = 0; index < 20; index++) assert.equal(throttle.admit("203.0.113.9"), undefined);
  assert.deepEqual(throttle.admit("203.0.113.9"), { retryAfterSeconds: 600, report: true, unreported: 0 });
  assert.equal(throttle.admit("203.0.113.10"), undefined, "another network is not held back");
  now += 30_000;
  assert.deepEqual(throttle.admit("203.0.113.9"), { retryAfterSeconds: 570, report: false, unreported: 1 });
  now += 30_000;
  assert.deepEqual(throttle.admit("203.0.113.9"), { retryAfterSeconds: 540, report: true, unreported: 1 });
  now = TEN_MINUTES_MS;
  assert.equal(throttle.admit("203.0.113.9"), undefined, "the window has passed");
});

Deno.test("StartThrottle forgets the least recently seen networks beyond maxEntries, and sweeps expired ones", () => {
  let now = 0;
  const throttle = new StartThrottle({
    limits: { startsPerAddress: 2, windowMs: 60_000, maxEntries: 2 },
    now: () => now,
  });
  for (const network of ["a", "a", "b", "c"]) assert.equal(throttle.admit(network), undefined, network);
  assert.deepEqual(throttle.size, { addresses: 2, reported: 0 });
  assert.equal(throttle.admit("a"), undefined, "a was forgotten first");
  now += 60_000;
  assert.equal(throttle.admit("b"), undefined);
  assert.deepEqual(throttle.size, { addresses: 1, reported: 0 });
});
