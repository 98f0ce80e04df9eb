/** The buffered stdout writer: order and whole lines under bursts, the bound and its notice, flush and drain. */
import assert from "node:assert/strict";
import { BufferedLineWriter, type ByteSink } from "../../src/log/buffered_stdout.ts";

const decoder = new TextDecoder();

/**
 * A stdout stand-in: async writes take at most `chunkBytes` each and finish on a later task (or when
 * released, with `hold`); it records what arrived and how many writes were in flight at once.
 */
function fakeStdout(options: { chunkBytes?: number; hold?: boolean } = {}) {
  const chunks: Uint8Array[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let asyncWrites = 0;
  let syncWrites = 0;
  const held: (() => void)[] = [];
  const heldWaiters: (() => void)[] = [];
  let arrived = 0;
  const waiters: { bytes: number; resolve: () => void }[] = [];
  const take = (bytes: Uint8Array) => {
    const taken = bytes.slice(0, options.chunkBytes ?? bytes.length);
    chunks.push(taken);
    arrived += taken.length;
    for (const waiter of waiters.filter((waiter) => arrived >= waiter.bytes)) waiter.resolve();
    return taken.length;
  };
  const sink: ByteSink = {
    write(bytes) {
      asyncWrites++;
      maxInFlight = Math.max(maxInFlight, ++inFlight);
      return new Promise((resolve) => {
        const finish = () => {
          inFlight--;
          resolve(take(bytes));
        };
        if (!options.hold) return void setTimeout(finish, 0);
        held.push(finish);
        heldWaiters.splice(0).forEach((resolve) => resolve());
      });
    },
    writeSync(bytes) {
      syncWrites++;
      return take(bytes);
    },
  };
  return {
    sink,
    text: () => chunks.map((chunk) => decoder.decode(chunk)).join(""),
    lines: () => chunks.map((chunk) => decoder.decode(chunk)).join("").split("\n").slice(0, -1),
    stats: () => ({ asyncWrites, syncWrites, maxInFlight }),
    /** Finishes the held write. */
    release: () => held.shift()?.(),
    /** Resolves once a write is held. */
    held: () =>
      held.length > 0 ? Promise.resolve() : new Promise<void>((resolve) => heldWaiters.push(resolve)),
    /** Resolves once this many bytes have arrived. */
    arrived: (bytes: number) =>
      arrived >= bytes ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ bytes, resolve })),
  };
}

const lineOf = (seq: number) => `${JSON.stringify({ level: "info", msg: "request", seq })}\n`;

Deno.test("BufferedLineWriter.write() writes a burst of 10,000 lines whole and in order, one write at a time", async () => {
  const stdout = fakeStdout({ chunkBytes: 4096 });
  const maxBufferedChars = 1 << 20;
  const writer = new BufferedLineWriter({ sink: stdout.sink, maxBufferedChars });
  let expectedBytes = 0;
  let mostBuffered = 0;
  for (let seq = 0; seq < 10_000; seq++) {
    const line = lineOf(seq);
    expectedBytes += line.length;
    writer.write(line);
    mostBuffered = Math.max(mostBuffered, writer.bufferedChars);
    // Half the burst arrives while writes are in flight.
    if (seq >= 5000 && seq % 500 === 0) await new Promise((resolve) => setTimeout(resolve, 0));
  }
  await stdout.arrived(expectedBytes);
  assert.deepEqual(stdout.lines(), Array.from({ length: 10_000 }, (_, seq) => lineOf(seq).trimEnd()));
  assert.ok(mostBuffered <= maxBufferedChars);
  assert.equal(writer.droppedLines, 0);
  const { asyncWrites, syncWrites, maxInFlight } = stdout.stats();
  assert.equal(maxInFlight, 1);
  assert.equal(syncWrites, 0);
  // Coalesced: the 4 KiB partial writes of a few batches, not one write per line.
  assert.ok(asyncWrites < expectedBytes / 4096 + 50, `${asyncWrites} writes`);
});

/** Runs the next scheduled write once the writer scheduled it (it does when a write finishes). */
async function runNext(scheduled: (() => void)[]): Promise<void> {
  for (let tick = 0; scheduled.length === 0; tick++) {
    assert.ok(tick < 100, "a write was scheduled");
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  scheduled.shift()!();
}

Deno.test("BufferedLineWriter.write() drops lines past the bound and writes one line counting them when writing resumes", async () => {
  const stdout = fakeStdout({ hold: true });
  const scheduled: (() => void)[] = [];
  const tenLines = Array.from({ length: 10 }, (_, index) => lineOf(index + 1).length).reduce((a, b) => a + b);
  const writer = new BufferedLineWriter({
    sink: stdout.sink,
    maxBufferedChars: tenLines,
    schedule: (write) => scheduled.push(write),
    now: () => new Date(0),
  });
  writer.write(lineOf(0));
  scheduled.shift()!();
  // Line 0 is in flight and held; lines 1 to 10 fill the buffer; the next fifteen are dropped.
  for (let seq = 1; seq <= 25; seq++) writer.write(lineOf(seq));
  assert.equal(writer.droppedLines, 15);
  assert.equal(writer.bufferedChars, tenLines);
  // Once dropping, a line that would fit is dropped too: the count stands where the gap is.
  writer.write("x\n");
  assert.equal(writer.droppedLines, 16);
  // Line 0 is out; the next write, scheduled then, takes lines 1 to 10, and the notice opens the emptied
  // buffer.
  stdout.release();
  await runNext(scheduled);
  await stdout.held();
  assert.equal(writer.droppedLines, 0);
  writer.write(lineOf(26));
  stdout.release();
  await runNext(scheduled);
  await stdout.held();
  stdout.release();
  await writer.drain();
  const notice = {
    time: "1970-01-01T00:00:00.000Z",
    level: "warn",
    msg: "log lines dropped: stdout did not keep up",
    dropped_lines: 16,
  };
  assert.deepEqual(stdout.lines().map((line) => JSON.parse(line)), [
    ...Array.from({ length: 11 }, (_, seq) => JSON.parse(lineOf(seq))),
    notice,
    JSON.parse(lineOf(26)),
  ]);
  assert.deepEqual(stdout.stats(), { asyncWrites: 3, syncWrites: 0, maxInFlight: 1 });
});

Deno.test("BufferedLineWriter.flushSync() writes what is buffered at once, with the count of dropped lines", () => {
  const stdout = fakeStdout();
  const writer = new BufferedLineWriter({
    sink: stdout.sink,
    maxBufferedChars: 2 * lineOf(0).length,
    schedule: () => {},
    now: () => new Date(0),
  });
  for (let seq = 0; seq < 5; seq++) writer.write(lineOf(seq));
  assert.equal(stdout.text(), "");
  writer.flushSync();
  const entries = stdout.lines().map((line) => JSON.parse(line));
  assert.deepEqual(entries.map((entry) => entry.seq ?? entry.dropped_lines), [0, 1, 3]);
  assert.equal(entries[2].msg, "log lines dropped: stdout did not keep up");
  assert.deepEqual(stdout.stats(), { asyncWrites: 0, syncWrites: 2, maxInFlight: 0 });
  writer.flushSync();
  assert.equal(stdout.stats().syncWrites, 2, "nothing left to write");
});

Deno.test("BufferedLineWriter.drain() waits for the write in flight, then writes the rest in order", async () => {
  const stdout = fakeStdout({ hold: true });
  const scheduled: (() => void)[] = [];
  const writer = new BufferedLineWriter({ sink: stdout.sink, schedule: (write) => scheduled.push(write) });
  writer.write(lineOf(0));
  scheduled.shift()!();
  writer.write(lineOf(1));
  writer.write(lineOf(2));
  let drained = false;
  const draining = writer.drain().then(() => drained = true);
  await Promise.resolve();
  assert.equal(drained, false, "the write in flight is awaited");
  stdout.release();
  await draining;
  assert.deepEqual(stdout.lines(), [0, 1, 2].map((seq) => lineOf(seq).trimEnd()));
  assert.deepEqual(stdout.stats(), { asyncWrites: 1, syncWrites: 1, maxInFlight: 1 });
});

Deno.test("BufferedLineWriter.write() counts a batch stdout refused as dropped and goes on writing", async () => {
  let refuse = true;
  const written: string[] = [];
  const take = (bytes: Uint8Array) => {
    written.push(decoder.decode(bytes));
    return bytes.length;
  };
  const scheduled: (() => void)[] = [];
  const writer = new BufferedLineWriter({
    sink: {
      write: (bytes) =>
        refuse ? Promise.reject(new Deno.errors.BrokenPipe("closed")) : Promise.resolve(take(bytes)),
      writeSync: take,
    },
    schedule: (write) => scheduled.push(write),
    now: () => new Date(0),
  });
  writer.write(lineOf(0));
  writer.write(lineOf(1));
  scheduled.shift()!();
  // The write loop's batch is refused; the drain's synchronous flush then writes the count.
  await writer.drain();
  refuse = false;
  writer.write(lineOf(2));
  scheduled.shift()!();
  await writer.drain();
  const entries = written.join("").trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(entries.map((entry) => entry.dropped_lines ?? entry.seq), [2, 2]);
  assert.equal(entries[0].msg, "log lines dropped: stdout did not keep up");
});
