import assert from "node:assert/strict";
import { parseDurationSeconds, parseSizeBytes } from "../../src/core/units.ts";

Deno.test("parseDurationSeconds() reads each unit", () => {
  assert.equal(parseDurationSeconds("250ms"), 0.25);
  assert.equal(parseDurationSeconds("90s"), 90);
  assert.equal(parseDurationSeconds("10m"), 600);
  assert.equal(parseDurationSeconds("1h"), 3600);
  assert.equal(parseDurationSeconds("30d"), 2_592_000);
  assert.equal(parseDurationSeconds("2w"), 1_209_600);
});

Deno.test("parseDurationSeconds() adds up compound durations", () => {
  assert.equal(parseDurationSeconds("1h30m"), 5400);
  assert.equal(parseDurationSeconds("1d12h"), 129_600);
  assert.equal(parseDurationSeconds("1m500ms"), 60.5);
  assert.equal(parseDurationSeconds("1.5h"), 5400);
});

Deno.test("parseDurationSeconds() reads a bare number as seconds", () => {
  assert.equal(parseDurationSeconds("45"), 45);
  assert.equal(parseDurationSeconds("2.5"), 2.5);
  assert.equal(parseDurationSeconds(45), 45);
  assert.equal(parseDurationSeconds(0), 0);
  assert.equal(parseDurationSeconds("0s"), 0);
});

Deno.test("parseDurationSeconds() ignores surrounding whitespace", () => {
  assert.equal(parseDurationSeconds("  10m\n"), 600);
});

Deno.test("parseDurationSeconds() rejects what is not a duration", () => {
  for (
    const text of [
      "",
      " ",
      "m",
      "10x",
      "ten minutes",
      "1 h",
      "1h 30m",
      "-5m",
      "10M",
      "1H",
      "5mins",
      "1e3",
      "1m30",
    ]
  ) {
    assert.equal(parseDurationSeconds(text), undefined, `"${text}" must not parse`);
  }
  assert.equal(parseDurationSeconds(-1), undefined);
  assert.equal(parseDurationSeconds(Number.NaN), undefined);
  assert.equal(parseDurationSeconds(Number.POSITIVE_INFINITY), undefined);
});

Deno.test("parseSizeBytes() reads decimal and binary units, case-insensitively", () => {
  assert.equal(parseSizeBytes("1B"), 1);
  assert.equal(parseSizeBytes("512KB"), 512_000);
  assert.equal(parseSizeBytes("512KiB"), 524_288);
  assert.equal(parseSizeBytes("4MB"), 4_000_000);
  assert.equal(parseSizeBytes("4MiB"), 4_194_304);
  assert.equal(parseSizeBytes("1GB"), 1_000_000_000);
  assert.equal(parseSizeBytes("1GiB"), 1_073_741_824);
  assert.equal(parseSizeBytes("4mib"), 4_194_304);
  assert.equal(parseSizeBytes("4 MiB"), 4_194_304);
});

Deno.test("parseSizeBytes() reads a bare number as bytes and rounds fractions down", () => {
  assert.equal(parseSizeBytes("1000"), 1000);
  assert.equal(parseSizeBytes(1000), 1000);
  assert.equal(parseSizeBytes("1.5KiB"), 1536);
  assert.equal(parseSizeBytes("1.0001KB"), 1000);
});

Deno.test("parseSizeBytes() rejects what is not a positive size", () => {
  for (const text of ["", "MiB", "4XB", "4M", "4k", "-1", "0", "0.5", "4 MiB extra", "four MiB"]) {
    assert.equal(parseSizeBytes(text), undefined, `"${text}" must not parse`);
  }
  assert.equal(parseSizeBytes(0), undefined);
  assert.equal(parseSizeBytes(-4), undefined);
  assert.equal(parseSizeBytes(1.5), undefined);
});
