/**
 * The sign-in throttles counting in the store (`StoreThrottleCounters`), as replicas sharing a store do: the
 * same answers as the in-memory counts, one count for several throttles on one store, one refusal report a
 * minute between them, and pruning.
 */
import assert from "node:assert/strict";
import { StoreThrottleCounters } from "../../src/login/shared_throttle.ts";
import {
  SignInThrottle,
  StartThrottle,
  type ThrottleCounters,
  type ThrottleLimits,
} from "../../src/login/throttle.ts";
import { openStore, type Store } from "../../src/store/store.ts";

const LIMITS: ThrottleLimits = {
  failuresPerAccount: 3,
  failuresPerAddress: 5,
  windowMs: 60_000,
  maxEntries: 100,
};

function withStore(work: (store: Store) => void): void {
  const store = openStore(":memory:");
  try {
    work(store);
  } finally {
    store.close();
  }
}

function eventRows(store: Store): { scope: string; key: string; at: number }[] {
  return store.db.prepare("SELECT scope, key, at FROM throttle_events ORDER BY scope, key, at").all() as {
    scope: string;
    key: string;
    at: number;
  }[];
}

/** What a throttle answers to a few minutes of sign-ins: failures, a success, refusals, the window passing. */
function script(counters: ThrottleCounters | undefined): unknown[] {
  let now = 1_000_000;
  const throttle = new SignInThrottle({ limits: LIMITS, now: () => now, counters });
  const answers: unknown[] = [];
  const attempt = (account: string, network = "net-1", right = false) => {
    const admission = throttle.admit(account, network);
    if ("succeeded" in admission) {
      if (right) admission.succeeded();
      answers.push("let through");
    } else {
      answers.push(admission);
    }
  };
  attempt("alice");
  attempt("alice");
  now += 1_000;
  attempt("alice", "net-1", true);
  for (let failure = 0; failure < 3; failure++) attempt("alice");
  attempt("alice");
  attempt("alice", "net-2");
  now += 30_000;
  attempt("alice");
  attempt("bob");
  attempt("carol");
  attempt("dave", "net-1");
  now += 31_000;
  attempt("alice");
  attempt("erin", "net-1");
  now += 60_000;
  attempt("alice");
  attempt("erin", "net-1");
  return answers;
}

Deno.test("StoreThrottleCounters: SignInThrottle answers as with its counts in memory", () => {
  withStore((store) => {
    const expected = script(undefined);
    assert.deepEqual(script(new StoreThrottleCounters(store)), expected);
    // The script's own claims, so that the comparison is of something.
    assert.deepEqual(expected[6], { scope: "account", retryAfterSeconds: 60, report: true, unreported: 0 });
    assert.deepEqual(expected[7], { scope: "account", retryAfterSeconds: 60, report: false, unreported: 1 });
    assert.ok(expected.includes("let through"));
    assert.ok(expected.some((answer) => (answer as { scope?: string }).scope === "address"));
  });
});

Deno.test("StoreThrottleCounters: two SignInThrottles on one store (two replicas) count one account's failures together", () => {
  withStore((store) => {
    const now = 2_000_000;
    const replicaA = new SignInThrottle({
      limits: LIMITS,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    const replicaB = new SignInThrottle({
      limits: LIMITS,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    assert.ok("succeeded" in replicaA.admit("alice", "net-a"));
    assert.ok("succeeded" in replicaB.admit("alice", "net-b"));
    assert.ok("succeeded" in replicaA.admit("alice", "net-c"));
    const refused = replicaB.admit("alice", "net-d");
    assert.deepEqual(refused, { scope: "account", retryAfterSeconds: 60, report: true, unreported: 0 });
    // Reported once a minute between them: A does not write it again, and counts what it did not write.
    assert.deepEqual(replicaA.admit("alice", "net-e"), {
      scope: "account",
      retryAfterSeconds: 60,
      report: false,
      unreported: 1,
    });
    // Refused attempts are not counted: three rows for the account, one report.
    assert.deepEqual(
      eventRows(store).map((row) => row.scope),
      [
        "password_account",
        "password_account",
        "password_account",
        "password_address",
        "password_address",
        "password_address",
        "password_refusal",
      ],
    );
  });
});

Deno.test("StoreThrottleCounters: a success clears the account's failures for every replica, and takes back only its own address count", () => {
  withStore((store) => {
    let now = 3_000_000;
    const replicaA = new SignInThrottle({
      limits: LIMITS,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    const replicaB = new SignInThrottle({
      limits: LIMITS,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    assert.ok("succeeded" in replicaA.admit("alice", "office"));
    assert.ok("succeeded" in replicaA.admit("alice", "office"));
    now += 1;
    const right = replicaB.admit("alice", "office");
    assert.ok("succeeded" in right);
    right.succeeded();
    assert.deepEqual(
      eventRows(store).map((row) => [row.scope, row.key, row.at]),
      [["password_address", "office", 3_000_000], ["password_address", "office", 3_000_000]],
    );
    for (let failure = 0; failure < 3; failure++) assert.ok("succeeded" in replicaB.admit("alice", "office"));
    const refused = replicaA.admit("bob", "office");
    assert.ok(!("succeeded" in refused) && refused.scope === "address", "5 failures from the office");
  });
});

Deno.test("StoreThrottleCounters: two StartThrottles on one store count one address's starts together", () => {
  withStore((store) => {
    let now = 4_000_000;
    const limits = { startsPerAddress: 3, windowMs: 10_000, maxEntries: 100 };
    const replicaA = new StartThrottle({
      limits,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    const replicaB = new StartThrottle({
      limits,
      now: () => now,
      counters: new StoreThrottleCounters(store),
    });
    assert.equal(replicaA.admit("net"), undefined);
    assert.equal(replicaB.admit("net"), undefined);
    now += 4_000;
    assert.equal(replicaA.admit("net"), undefined);
    assert.deepEqual(replicaB.admit("net"), { retryAfterSeconds: 6, report: true, unreported: 0 });
    assert.equal(replicaB.admit("elsewhere"), undefined, "other addresses are not held back");
    now += 6_000;
    assert.equal(replicaA.admit("net"), undefined, "the first two left the window");
  });
});

Deno.test("StoreThrottleCounters.prune() deletes attempts past their window and reports past a minute", () => {
  withStore((store) => {
    let now = 5_000_000;
    const counters = new StoreThrottleCounters(store);
    const signIns = new SignInThrottle({ limits: LIMITS, now: () => now, counters });
    const starts = new StartThrottle({
      limits: { startsPerAddress: 1, windowMs: 10_000, maxEntries: 100 },
      now: () => now,
      counters,
    });
    assert.ok("succeeded" in signIns.admit("alice", "net"));
    assert.equal(starts.admit("net"), undefined);
    assert.ok(starts.admit("net") !== undefined, "refused and reported");
    now += 10_000;
    assert.equal(counters.prune(now), 1, "the start, out of its 10 s window");
    now += 50_000;
    assert.equal(counters.prune(now), 3, "the failure (account, address), out of its minute; the report");
    assert.deepEqual(eventRows(store), []);
  });
});

Deno.test("StoreThrottleCounters keeps keys apart that differ only in a NUL or its escape (PostgreSQL text holds no NUL)", () => {
  withStore((store) => {
    const throttle = new SignInThrottle({
      limits: { ...LIMITS, failuresPerAccount: 1 },
      now: () => 6_000_000,
      counters: new StoreThrottleCounters(store),
    });
    assert.ok("succeeded" in throttle.admit("a\0b", "net"));
    assert.ok("succeeded" in throttle.admit("a\\0b", "net"), "another account");
    assert.ok(!("succeeded" in throttle.admit("a\0b", "net")), "the first one is throttled");
    assert.deepEqual(
      eventRows(store).filter((row) => row.scope === "password_account").map((row) => row.key).toSorted(),
      ["a\\0b", "a\\\\0b"],
    );
  });
});
