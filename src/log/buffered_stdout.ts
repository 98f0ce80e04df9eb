/**
 * Log lines off the request path: appended to a bounded in-memory buffer and written to stdout by one
 * asynchronous write at a time; what is still buffered when the process ends is written synchronously.
 */

/** Where the buffered lines go: `Deno.stdout` outside tests. */
export interface ByteSink {
  write(bytes: Uint8Array): Promise<number>;
  writeSync(bytes: Uint8Array): number;
}

export interface BufferedLineWriterOptions {
  sink?: ByteSink;
  /**
   * Past this many buffered characters, lines are dropped and counted. Characters are bytes for ASCII,
   * which JSON lines mostly are; a non-ASCII character takes up to 3 bytes.
   */
  maxBufferedChars?: number;
  /** Runs the write later (by default after `GATHER_MS`). */
  schedule?: (write: () => void) => void;
  /** The clock of the dropped-lines notice. */
  now?: () => Date;
}

/** 1 MiB of lines: about 7,000 request lines waiting for a slow stdout. */
export const DEFAULT_MAX_BUFFERED_CHARS = 1 << 20;

const encoder = new TextEncoder();

/**
 * How long lines gather before a write: under load one write carries a few dozen request lines instead of
 * one each (a write to a pipe costs about as much as relaying a request's bytes).
 */
export const GATHER_MS = 10;

const afterGathering = (write: () => void) => void setTimeout(write, GATHER_MS);

/**
 * Buffers whole lines and writes them in order: one write in flight at a time, carrying everything that
 * accumulated meanwhile. Past the bound, lines are dropped until the next write takes the buffer, and a
 * JSON line saying how many takes their place.
 */
export class BufferedLineWriter {
  readonly #sink: ByteSink;
  readonly #maxBufferedChars: number;
  readonly #schedule: (write: () => void) => void;
  readonly #now: () => Date;
  #lines: string[] = [];
  #bufferedChars = 0;
  #dropped = 0;
  #scheduled = false;
  #writing = false;
  #writeLoop: Promise<void> = Promise.resolve();
  /** While a drain is under way, the write loop stops after its write and leaves the rest to it. */
  #drains = 0;

  constructor(options: BufferedLineWriterOptions = {}) {
    this.#sink = options.sink ?? Deno.stdout;
    this.#maxBufferedChars = options.maxBufferedChars ?? DEFAULT_MAX_BUFFERED_CHARS;
    this.#schedule = options.schedule ?? afterGathering;
    this.#now = options.now ?? (() => new Date());
  }

  /** Characters waiting for a write (the write in flight excluded). */
  get bufferedChars(): number {
    return this.#bufferedChars;
  }

  /** Lines dropped since the last notice. */
  get droppedLines(): number {
    return this.#dropped;
  }

  /** Appends one whole line, ending in "\n"; never writes synchronously. Bound, to pass as a function. */
  readonly write = (line: string): void => {
    if (this.#dropped > 0) {
      // Once dropping, drop until a write takes the buffer, so that the notice stands where the gap is.
      if (this.#lines.length > 0) {
        this.#dropped++;
        return;
      }
      this.#pushDroppedNotice();
    }
    if (this.#bufferedChars + line.length > this.#maxBufferedChars) {
      this.#dropped++;
    } else {
      this.#lines.push(line);
      this.#bufferedChars += line.length;
    }
    if (!this.#scheduled && !this.#writing && this.#lines.length > 0) {
      this.#scheduled = true;
      this.#schedule(this.#startWriting);
    }
  };

  /**
   * Writes what is buffered, synchronously: for exit paths. A write already in flight is the runtime's
   * to finish; `drain()` waits for it first.
   */
  flushSync(): void {
    while (this.#lines.length > 0 || this.#dropped > 0) {
      const batch = this.#takeBatch();
      try {
        let bytes = encoder.encode(batch.text);
        while (bytes.length > 0) bytes = bytes.subarray(tookSome(this.#sink.writeSync(bytes)));
      } catch {
        // stdout is gone: nobody is left to tell.
        return;
      }
    }
  }

  /** Waits for the write in flight, then writes the rest synchronously: for exits that can wait. */
  async drain(): Promise<void> {
    this.#drains++;
    try {
      while (this.#writing) await this.#writeLoop;
      this.flushSync();
    } finally {
      this.#drains--;
    }
  }

  readonly #startWriting = (): void => {
    this.#scheduled = false;
    if (this.#writing || this.#drains > 0 || this.#lines.length === 0) return;
    this.#writing = true;
    this.#writeLoop = this.#writeAll();
  };

  /** Writes what is buffered as one batch; what comes meanwhile gathers for the next scheduled write. */
  async #writeAll(): Promise<void> {
    try {
      const batch = this.#takeBatch();
      try {
        let bytes = encoder.encode(batch.text);
        while (bytes.length > 0) bytes = bytes.subarray(tookSome(await this.#sink.write(bytes)));
      } catch {
        // stdout refused (a closed pipe): these lines are lost; count them, and try the next batch.
        this.#dropped += batch.lines;
      }
    } finally {
      this.#writing = false;
    }
    if (this.#drains === 0 && !this.#scheduled && (this.#lines.length > 0 || this.#dropped > 0)) {
      this.#scheduled = true;
      this.#schedule(this.#startWriting);
    }
  }

  /** Empties the buffer into one text; a notice of dropped lines then opens the emptied buffer. */
  #takeBatch(): { text: string; lines: number } {
    const batch = { text: this.#lines.join(""), lines: this.#lines.length };
    this.#lines = [];
    this.#bufferedChars = 0;
    if (this.#dropped > 0) this.#pushDroppedNotice();
    return batch;
  }

  #pushDroppedNotice(): void {
    const notice = droppedNotice(this.#dropped, this.#now());
    this.#dropped = 0;
    this.#lines.push(notice);
    this.#bufferedChars += notice.length;
  }
}

/** A write's count of bytes taken, refusing none at all (which would loop for ever). */
function tookSome(bytesWritten: number): number {
  if (bytesWritten > 0) return bytesWritten;
  throw new Deno.errors.WriteZero(`Cannot write log lines: stdout took ${bytesWritten} bytes`);
}

/** The line that stands for lines dropped because stdout could not keep up. */
function droppedNotice(droppedLines: number, now: Date): string {
  const entry = {
    time: now.toISOString(),
    level: "warn",
    msg: "log lines dropped: stdout did not keep up",
    dropped_lines: droppedLines,
  };
  return `${JSON.stringify(entry)}\n`;
}

let processStdout: BufferedLineWriter | undefined;

/**
 * The process's buffered stdout, made on first use; from then on the `unload` event (a normal end,
 * `Deno.exit` anywhere) writes what it still holds.
 */
export function stdoutLines(): BufferedLineWriter {
  if (processStdout) return processStdout;
  const writer = new BufferedLineWriter();
  globalThis.addEventListener("unload", () => writer.flushSync());
  processStdout = writer;
  return writer;
}

/** Writes what the process's log buffer holds, synchronously: call it on exit paths. */
export function flushLogs(): void {
  processStdout?.flushSync();
}

/** Waits for the log write in flight, then writes the rest: for exit paths that can await. */
export function drainLogs(): Promise<void> {
  return processStdout?.drain() ?? Promise.resolve();
}
