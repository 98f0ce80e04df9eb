import assert from "node:assert/strict";
import { localTime, relativeTime, timeHtml } from "../../../src/http/pages/time.ts";

const NOW = Date.UTC(2025, 5, 1, 12, 0, 0);
const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;

Deno.test("relativeTime() picks the unit that reads best, future and past", () => {
  const cases: [number, string][] = [
    [0, "now"],
    [30 * SECOND, "in 30 seconds"],
    [-59 * SECOND, "59 seconds ago"],
    [90 * SECOND, "in 2 minutes"],
    [-45 * MINUTE, "45 minutes ago"],
    // A token of an hour, a moment after it was issued: not "in 60 minutes".
    [HOUR - 2 * SECOND, "in 1 hour"],
    [5 * HOUR + 20 * MINUTE, "in 5 hours"],
    [47 * HOUR, "in 47 hours"],
    [3 * 24 * HOUR, "in 3 days"],
    [-30 * 24 * HOUR, "30 days ago"],
  ];
  for (const [offset, expected] of cases) {
    assert.equal(relativeTime(NOW + offset, NOW), expected, `${offset} ms`);
  }
});

Deno.test("localTime() names the day, the time and the zone it is in", () => {
  assert.equal(localTime(NOW, "UTC"), "1 Jun 2025, 12:00 UTC");
  assert.equal(localTime(NOW, "Europe/Berlin"), "1 Jun 2025, 14:00 CEST");
  assert.equal(localTime(Date.UTC(2025, 0, 1, 23, 30), "Europe/Berlin"), "2 Jan 2025, 00:30 CET");
});

Deno.test("timeHtml() is a <time> with the exact instant, the relative text, then the local time", () => {
  assert.equal(
    timeHtml(NOW + HOUR, { now: NOW, timeZone: "UTC" }),
    '<time datetime="2025-06-01T13:00:00.000Z" title="2025-06-01T13:00:00.000Z">in 1 hour</time>' +
      " (1 Jun 2025, 13:00 UTC)",
  );
});
