/**
 * The sign-in throttle at `POST /login`: per account and per client address, against a real gateway on
 * 127.0.0.1 whose clock the tests move (nothing here waits for time to pass).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { hashPassword } from "../../src/login/password.ts";
import { SignInThrottle } from "../../src/login/throttle.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { within } from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce } from "../oauth/_flow.ts";

const BOB = { username: "bob", password: "bob-password-for-throttle-tests" } as const;
const WRONG = "a-wrong-password-for-throttle-tests";
const WINDOW_SECONDS = 15 * 60;

interface ThrottleWorld {
  readonly gateway: RunningGateway;
  readonly base: string;
  /** Moves the gateway's clock (the throttle's and the audit log's) forward. */
  advance(seconds: number): void;
  /** Every log line the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
}

/** A gateway with alice and bob, `gateway` settings merged in, and a clock of its own; stopped after. */
async function withGateway(
  gateway: Record<string, unknown>,
  work: (world: ThrottleWorld) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-throttle-" });
  const registryPath = join(dir, "registry.yaml");
  await Deno.writeTextFile(
    registryPath,
    JSON.stringify({
      gateway: { auth: "oauth", shutdown_timeout: "1s", ...gateway },
      login: {
        users: {
          alice: { password_hash: await aliceHashOnce() },
          bob: { password_hash: await hashPassword(BOB.password) },
        },
      },
    }),
  );
  let now = Date.now();
  const logs: Record<string, unknown>[] = [];
  const running = await startGateway({
    registryPath,
    listen: "127.0.0.1:0",
    dataDir: join(dir, "data"),
    log: createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) }),
    watch: false,
    now: () => now,
  });
  try {
    await within(
      60_000,
      work({ gateway: running, base: running.url, advance: (seconds) => now += seconds * 1000, logs }),
      "the test",
    );
  } finally {
    try {
      await within(8_000, running.shutdown(), "gateway shutdown");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }
}

/** One password sign-in from a fresh browser (its own login form), optionally with `X-Forwarded-For`. */
async function attempt(
  base: string,
  credentials: { username: string; password: string },
  forwardedFor?: string,
): Promise<{ status: number; retryAfter: string | null; page: string }> {
  const browser = new ScriptedBrowser();
  const form = await (await browser.fetch(`${base}/connections`)).text();
  const response = await browser.fetch(`${base}/login`, {
    method: "POST",
    headers: {
      "content-type": "application/x-www-form-urlencoded",
      ...(forwardedFor === undefined ? {} : { "x-forwarded-for": forwardedFor }),
    },
    body: new URLSearchParams({ ...formFields(form), ...credentials }).toString(),
  });
  return {
    status: response.status,
    retryAfter: response.headers.get("retry-after"),
    page: await response.text(),
  };
}

async function failTimes(
  base: string,
  times: number,
  username: string,
  forwardedFor?: string,
): Promise<void> {
  for (let index = 0; index < times; index++) {
    const { status } = await attempt(base, { username, password: WRONG }, forwardedFor);
    assert.equal(status, 401, `failure ${index + 1} of ${times} for ${username} is an ordinary refusal`);
  }
}

function assertThrottledPage(answer: { status: number; retryAfter: string | null; page: string }): void {
  assert.equal(answer.status, 429, answer.page);
  assert.match(answer.page, /Too many failed sign-ins\. Try again later/);
  assert.match(answer.page, /action="\/login"/, "the sign-in form is shown again");
}

Deno.test("POST /login refuses an account after 5 failures, even with the right password, with 429 and Retry-After", async () => {
  await withGateway({}, async ({ gateway, base }) => {
    await failTimes(base, 5, "alice");
    const refused = await attempt(base, ALICE);
    assertThrottledPage(refused);
    assert.equal(
      refused.retryAfter,
      String(WINDOW_SECONDS),
      "the whole window is left: the clock stood still",
    );

    // Another account from the same address is not affected (the address has 5 of its 20).
    assert.equal((await attempt(base, BOB)).status, 303);

    const [throttled] = gateway.audit.recent(10, ["sign_in_throttled"]);
    assert.equal(throttled?.subject, "alice");
    assert.deepEqual(throttled?.detail, {
      method: "password",
      address: "127.0.0.1",
      scope: "account",
      retry_after_seconds: WINDOW_SECONDS,
    });
    assert.equal(gateway.audit.recent(100, ["sign_in_failed"]).length, 5);
    assert.deepEqual(gateway.audit.recent(100, ["sign_in"]).map((row) => row.subject), ["bob"]);
    const rows = JSON.stringify(gateway.audit.recent(100));
    assert.ok(!rows.includes(ALICE.password) && !rows.includes(WRONG) && !rows.includes(BOB.password));
  });
});

Deno.test("POST /login lets an account in again once its failures leave the 15-minute window", async () => {
  await withGateway({}, async ({ base, advance }) => {
    await failTimes(base, 1, "alice");
    advance(60);
    await failTimes(base, 4, "alice");
    assert.equal((await attempt(base, ALICE)).retryAfter, String(WINDOW_SECONDS - 60));

    // One second before the first failure leaves the window: still refused, for one more second.
    advance(WINDOW_SECONDS - 60 - 1);
    const almost = await attempt(base, ALICE);
    assertThrottledPage(almost);
    assert.equal(almost.retryAfter, "1");
    // Then four failures remain in the window: one more attempt is allowed, and it is right.
    advance(1);
    assert.equal((await attempt(base, ALICE)).status, 303);
  });
});

Deno.test("POST /login clears an account's failures on a successful sign-in", async () => {
  await withGateway({}, async ({ base }) => {
    await failTimes(base, 4, "alice");
    assert.equal((await attempt(base, ALICE)).status, 303);
    // A fresh count: five more failures are ordinary refusals, the sixth attempt is throttled.
    await failTimes(base, 5, "alice");
    assertThrottledPage(await attempt(base, ALICE));
  });
});

Deno.test("POST /login refuses a client address after 20 failures, whatever the account", async () => {
  await withGateway({}, async ({ gateway, base }) => {
    for (let index = 0; index < 20; index++) await failTimes(base, 1, `guess-${index}`);
    const refused = await attempt(base, BOB);
    assertThrottledPage(refused);
    assert.equal(refused.retryAfter, String(WINDOW_SECONDS));
    const [throttled] = gateway.audit.recent(1, ["sign_in_throttled"]);
    assert.equal(throttled?.subject, "bob");
    assert.equal(throttled?.detail.scope, "address");
    assert.equal(gateway.audit.recent(100, ["sign_in"]).length, 0, "bob was not let in");
  });
});

Deno.test("POST /login ignores X-Forwarded-For when gateway.trusted_proxies does not list the peer", async () => {
  await withGateway({}, async ({ gateway, base }) => {
    // Twenty failures, each claiming another address: all count against the real peer.
    for (let index = 0; index < 20; index++) {
      await failTimes(base, 1, `guess-${index}`, `203.0.113.${index + 1}`);
    }
    assertThrottledPage(await attempt(base, BOB, "198.51.100.7"));
    const addresses = new Set(gateway.audit.recent(100).map((row) => row.detail.address));
    assert.deepEqual([...addresses], ["127.0.0.1"]);
  });
});

Deno.test("POST /login counts the X-Forwarded-For address when the peer is in gateway.trusted_proxies", async () => {
  await withGateway({ trusted_proxies: ["127.0.0.0/8"] }, async ({ gateway, base }) => {
    // The client writes the left part; the proxy (the peer) appended the address it saw.
    for (let index = 0; index < 20; index++) {
      await failTimes(base, 1, `guess-${index}`, `10.9.9.${index}, 203.0.113.5`);
    }
    assertThrottledPage(await attempt(base, BOB, "203.0.113.5"));
    // Another client behind the same proxy is not held back, nor is anyone without the header.
    assert.equal((await attempt(base, BOB, "203.0.113.6")).status, 303);
    assert.equal((await attempt(base, ALICE)).status, 303);

    const rows = gateway.audit.recent(100);
    assert.equal(rows.filter((row) => row.detail.address === "203.0.113.5").length, 21);
    assert.deepEqual(rows.filter((row) => row.kind === "sign_in").map((row) => row.detail.address), [
      "127.0.0.1",
      "203.0.113.6",
    ]);
    assert.ok(!rows.some((row) => String(row.detail.address).startsWith("10.9.9.")), "the client's claims");
  });
});

Deno.test("POST /login counts attempts sent all at once: no more than 5 are checked", async () => {
  await withGateway({}, async ({ gateway, base }) => {
    // Every form first, then every submission together: none has been answered when the others arrive.
    const browsers = await Promise.all(Array.from({ length: 12 }, async () => {
      const browser = new ScriptedBrowser();
      return { browser, form: formFields(await (await browser.fetch(`${base}/connections`)).text()) };
    }));
    const statuses = await Promise.all(browsers.map(async ({ browser, form }) => {
      const response = await browser.post(`${base}/login`, { ...form, username: "alice", password: WRONG });
      await response.body?.cancel();
      return response.status;
    }));
    assert.deepEqual(statuses.toSorted(), [...Array(5).fill(401), ...Array(7).fill(429)]);
    assert.equal(gateway.audit.recent(100, ["sign_in_failed"]).length, 5);
  });
});

Deno.test("POST /login writes a throttled refusal to the audit log once a minute per account, with a count", async () => {
  await withGateway({}, async ({ gateway, base, advance }) => {
    await failTimes(base, 5, "alice");
    for (let index = 0; index < 3; index++) assertThrottledPage(await attempt(base, ALICE));
    assert.equal(gateway.audit.recent(100, ["sign_in_throttled"]).length, 1, "one row for three refusals");
    advance(60);
    assertThrottledPage(await attempt(base, ALICE));
    const rows = gateway.audit.recent(100, ["sign_in_throttled"]);
    assert.equal(rows.length, 2);
    assert.equal(rows[0]!.detail.unrecorded_refusals, 2, "the two refusals not written before");
    assert.equal(rows[0]!.detail.retry_after_seconds, WINDOW_SECONDS - 60);
    assert.equal(rows[1]!.detail.unrecorded_refusals, undefined);
  });
});

Deno.test("SignInThrottle takes back the count of an attempt that succeeded, not its address's other failures", () => {
  const throttle = new SignInThrottle({
    limits: { failuresPerAccount: 3, failuresPerAddress: 3, windowMs: 60_000, maxEntries: 100 },
    now: () => 0,
  });
  const admit = (account: string) => {
    const admission = throttle.admit(account, "net");
    assert.ok("succeeded" in admission, `${account} is let through`);
    return admission;
  };
  // Many good sign-ins from one address (an office behind one NAT) never add up.
  for (let index = 0; index < 10; index++) admit(`user-${index}`).succeeded();
  assert.deepEqual(throttle.size, { accounts: 0, addresses: 0, reported: 0 });
  // Two failures, then a success on a third account: the address keeps its two.
  admit("a");
  admit("b");
  admit("c").succeeded();
  admit("d");
  assert.deepEqual(throttle.admit("e", "net"), {
    scope: "address",
    retryAfterSeconds: 60,
    report: true,
    unreported: 0,
  });
});

Deno.test("SignInThrottle forgets the least recently failed keys beyond maxEntries", () => {
  let now = 0;
  const throttle = new SignInThrottle({
    limits: { failuresPerAccount: 2, failuresPerAddress: 100, windowMs: 60_000, maxEntries: 3 },
    now: () => now,
  });
  const fail = (account: string) => assert.ok("succeeded" in throttle.admit(account, "net"), account);
  for (const account of ["a", "b", "c", "a"]) fail(account);
  assert.ok("retryAfterSeconds" in throttle.admit("a", "net"), "a is throttled");
  // "b" is the least recently failed: a fourth account pushes it out, and "a" stays counted.
  fail("d");
  assert.deepEqual(throttle.size, { accounts: 3, addresses: 1, reported: 1 });
  fail("b");
  fail("b");
  assert.ok("retryAfterSeconds" in throttle.admit("b", "net"), "b counted from scratch: two failures");
  assert.ok("retryAfterSeconds" in throttle.admit("a", "net"), "a was kept");
  // Past the window, everything expires and is swept.
  now += 60_000;
  assert.ok("succeeded" in throttle.admit("a", "net"));
  assert.deepEqual(throttle.size, { accounts: 1, addresses: 1, reported: 0 });
});
