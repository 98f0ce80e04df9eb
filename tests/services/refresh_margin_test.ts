import assert from "node:assert/strict";
import { refreshDue } from "../../src/services/connections.ts";

const MINUTE = 60_000;

Deno.test("refresh margin: a minute before expiry, or halfway through a shorter life", () => {
  const cases: { life: number; age: number; due: boolean }[] = [
    { life: 60 * MINUTE, age: 58 * MINUTE, due: false },
    { life: 60 * MINUTE, age: 59 * MINUTE, due: true },
    { life: 60 * MINUTE, age: 61 * MINUTE, due: true },
    { life: 30_000, age: 1_000, due: false },
    { life: 30_000, age: 14_999, due: false },
    { life: 30_000, age: 15_000, due: true },
    { life: 2 * MINUTE, age: 59_999, due: false },
    { life: 2 * MINUTE, age: MINUTE, due: true },
    { life: 0, age: 0, due: true },
  ];
  const issuedAt = 1_700_000_000_000;
  for (const { life, age, due } of cases) {
    assert.equal(
      refreshDue(issuedAt + life, issuedAt, issuedAt + age),
      due,
      `life ${life} ms, age ${age} ms`,
    );
  }
});
