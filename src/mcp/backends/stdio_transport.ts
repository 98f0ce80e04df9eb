/**
 * The gateway's client transport for stdio backends: a child process (`Deno.Command`) spoken to in
 * newline-delimited JSON-RPC, with linear-time line framing, a bound on each answer, and a stop that
 * surely ends the process (stdin EOF, SIGTERM, SIGKILL).
 */
import { type JSONRPCMessage, parseJSONRPCMessage, type Transport } from "@modelcontextprotocol/client";

/** How much of an oversized line's start (and end) is kept to find which call it answers. */
const ID_SCAN_BYTES = 8 * 1024;
/** Longest stderr line passed on; a longer one is cut (and the rest of it dropped). */
const STDERR_LINE_CHARS = 2000;
/** How many of the last stderr lines are kept, for the log of a process that failed. */
const RECENT_STDERR_LINES = 20;
/** How long each step of the stop sequence (stdin EOF, then SIGTERM) may take before the next. */
const STOP_STEP_MS = 2000;
/** Most requests remembered as awaiting an answer (to tell which call an oversized answer is for). */
const MAX_PENDING = 10_000;
/** How long the output pipes may stay open after the process is gone (a grandchild may hold them). */
const DRAIN_MS = 500;

export interface StdioTransportOptions {
  readonly command: string;
  readonly args: readonly string[];
  /** The child's whole environment (nothing else is inherited). */
  readonly env: Readonly<Record<string, string>>;
  readonly cwd?: string;
  /** The longest line (one JSON-RPC message) read from the process; a longer one fails its call. */
  readonly maxResponseBytes: number;
  /** Bound of each stop step; tests shorten it. */
  readonly stopStepMs?: number;
}

/** How a backend process ended. */
export interface ProcessExit {
  readonly code: number;
  readonly signal: Deno.Signal | null;
}

/** A line over `maxResponseBytes` that was dropped; `id` is the call it failed, when it could be told. */
export interface DroppedLine {
  readonly bytes: number;
  readonly id: string | number | undefined;
}

/** A JSON-RPC id as a map key (1 and "1" are different ids). */
const idKey = (id: string | number) => `${typeof id}:${id}`;

/** `16 MiB`, `512 KiB` or `1000 bytes`: the limit as a registry would write it. */
export function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
}

/**
 * SDK `Transport` over a child process. Each line on stdout is one message; a line longer than
 * `maxResponseBytes` is dropped while it streams, and the call it answers (its `"id"`, read from the
 * line's first or last few KiB) gets a JSON-RPC error instead, so the process and other calls go on.
 */
export class StdioTransport implements Transport {
  onclose?: () => void;
  onerror?: (error: Error) => void;
  onmessage?: <T extends JSONRPCMessage>(message: T) => void;
  /** Each line the process writes on stderr (cut to 2000 characters), from the moment it starts. */
  onstderr?: (line: string) => void;
  /** The process's stderr has ended (it exited, or the pipe was cut at stop). */
  onstderrend?: () => void;
  /** An oversized line was dropped. */
  ondropped?: (dropped: DroppedLine) => void;

  readonly #options: StdioTransportOptions;
  #child: Deno.ChildProcess | undefined;
  #writer: WritableStreamDefaultWriter<Uint8Array> | undefined;
  #exit: ProcessExit | undefined;
  #stopping: Promise<void> | undefined;
  #reading: Promise<unknown> = Promise.resolve();
  readonly #readers: ReadableStreamDefaultReader<Uint8Array>[] = [];
  /** Requests sent and not yet answered: an oversized answer may only fail one of these. */
  readonly #pending = new Map<string, string | number>();
  readonly #recentStderr: string[] = [];
  readonly #encoder = new TextEncoder();

  constructor(options: StdioTransportOptions) {
    if (!(options.maxResponseBytes > 0)) throw new TypeError("maxResponseBytes must be positive");
    this.#options = options;
  }

  /** The process id, once started. */
  get pid(): number | null {
    return this.#child?.pid ?? null;
  }

  /** How the process ended, once it has. */
  get exit(): ProcessExit | undefined {
    return this.#exit;
  }

  /** The last lines the process wrote on stderr. */
  get recentStderr(): readonly string[] {
    return [...this.#recentStderr];
  }

  start(): Promise<void> {
    if (this.#child || this.#stopping) throw new Error("Cannot start a stdio transport twice");
    const { command, args, env, cwd } = this.#options;
    let child: Deno.ChildProcess;
    try {
      child = new Deno.Command(command, {
        args: [...args],
        env: { ...env },
        clearEnv: true,
        cwd,
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
    } catch (error) {
      return Promise.reject(
        new Error(`Cannot start "${command}": ${error instanceof Error ? error.message : error}`),
      );
    }
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    // A write to a process that died rejects send(); the stream's own rejection is not an extra error.
    this.#writer.closed.catch(() => {});
    void child.status.then((status) => this.#exit = { code: status.code, signal: status.signal });
    const stdout = this.#readStdout(child.stdout.getReader());
    const stderr = this.#readStderr(child.stderr.getReader());
    this.#reading = Promise.all([stderr, stdout]);
    // The process ending its output means the connection is over.
    void stdout.then(() => this.#stop());
    return Promise.resolve();
  }

  async send(message: JSONRPCMessage): Promise<void> {
    const writer = this.#writer;
    if (!writer || this.#stopping) throw new Error("Cannot send: the backend process is not running");
    if ("method" in message && "id" in message) {
      this.#pending.set(idKey(message.id), message.id);
      // Bounded: calls the backend never answered (nor were cancelled) are forgotten oldest first.
      if (this.#pending.size > MAX_PENDING) this.#pending.delete(this.#pending.keys().next().value!);
    } else if ("method" in message && message.method === "notifications/cancelled") {
      const requestId = (message.params as { requestId?: unknown } | undefined)?.requestId;
      if (typeof requestId === "string" || typeof requestId === "number") {
        this.#pending.delete(idKey(requestId));
      }
    }
    await writer.write(this.#encoder.encode(JSON.stringify(message) + "\n"));
  }

  /** Stops the process (stdin EOF, then SIGTERM, then SIGKILL, each after a bound) and waits for it. */
  close(): Promise<void> {
    return this.#stop();
  }

  #stop(): Promise<void> {
    this.#stopping ??= (async () => {
      const child = this.#child;
      if (child) {
        const stepMs = this.#options.stopStepMs ?? STOP_STEP_MS;
        // Not awaited: a process that does not read could hold the close behind unwritten messages.
        void this.#writer?.close().catch(() => {});
        if (!(await exitsWithin(child, stepMs))) {
          kill(child, "SIGTERM");
          if (!(await exitsWithin(child, stepMs))) kill(child, "SIGKILL");
        }
        await child.status;
        await this.#writer?.abort().catch(() => {});
        if (!(await settlesWithin(this.#reading, DRAIN_MS))) {
          await Promise.all(this.#readers.map((reader) => reader.cancel().catch(() => {})));
          await this.#reading;
        }
      }
      this.#pending.clear();
      this.onclose?.();
    })();
    return this.#stopping;
  }

  async #readStdout(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    this.#readers.push(reader);
    let request = false;
    const framer = new LineFramer(this.#options.maxResponseBytes, {
      line: (line) => this.#onLine(line),
      oversized: (head) => {
        const text = decode(head);
        // A request or notification of the backend's own: its id is not one of our calls'.
        request = findTopLevelMember(text, "method") !== undefined;
        const id = findTopLevelMember(text, "id");
        if (request && id !== undefined) this.#refuseOversized(id);
        return request ? undefined : this.#failOversized(id);
      },
      oversizedEnd: (tail, bytes, failed) => {
        const id = failed ?? (request ? undefined : this.#failOversized(findTrailingId(decode(tail))));
        this.ondropped?.({ bytes, id });
      },
    });
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        framer.push(value);
      }
    } catch (error) {
      if (!this.#stopping) this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  #onLine(bytes: Uint8Array): void {
    const text = decode(bytes[bytes.length - 1] === 13 ? bytes.subarray(0, -1) : bytes);
    if (!text.trim()) return;
    let message: JSONRPCMessage;
    try {
      message = parseJSONRPCMessage(JSON.parse(text));
    } catch (error) {
      // Like the SDK's ReadBuffer: a line that is not a JSON-RPC message is reported and skipped.
      this.onerror?.(new Error(`Cannot read a line from the backend: ${(error as Error).message}`));
      return;
    }
    if ("id" in message && message.id !== undefined && !("method" in message)) {
      this.#pending.delete(idKey(message.id));
    }
    this.#deliver(message);
  }

  /** Hands a message on; a handler that throws must not stop the reading of later lines. */
  #deliver(message: JSONRPCMessage): void {
    try {
      this.onmessage?.(message);
    } catch (error) {
      this.onerror?.(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** Answers the pending call `id` with an error in place of its oversized answer; the id if it did. */
  #failOversized(id: string | number | undefined): string | number | undefined {
    if (id === undefined || !this.#pending.has(idKey(id))) return undefined;
    this.#pending.delete(idKey(id));
    this.#deliver({
      jsonrpc: "2.0",
      id,
      error: {
        code: -32603,
        message: `The backend's answer is larger than max_response_size (${
          formatBytes(this.#options.maxResponseBytes)
        })`,
      },
    });
    return id;
  }

  /** Answers the backend's own oversized request with an error, so that it does not wait forever. */
  #refuseOversized(id: string | number): void {
    this.#writer?.write(this.#encoder.encode(
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        error: {
          code: -32603,
          message: `The request is larger than ${formatBytes(this.#options.maxResponseBytes)}`,
        },
      }) + "\n",
    )).catch(() => {});
  }

  async #readStderr(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
    this.#readers.push(reader);
    const decoder = new TextDecoder();
    let current = "";
    const emit = (line: string) => {
      line = line.trimEnd();
      if (!line) return;
      this.#recentStderr.push(line);
      if (this.#recentStderr.length > RECENT_STDERR_LINES) this.#recentStderr.shift();
      this.onstderr?.(line);
    };
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        const parts = decoder.decode(value, { stream: true }).split("\n");
        for (let index = 0; index < parts.length - 1; index++) {
          emit((current + parts[index]).slice(0, STDERR_LINE_CHARS));
          current = "";
        }
        // Bounded: the rest of an endless line is dropped.
        if (current.length < STDERR_LINE_CHARS) {
          current = (current + parts.at(-1)).slice(0, STDERR_LINE_CHARS);
        }
      }
    } catch {
      // The pipe was cancelled at stop.
    }
    emit(current);
    this.onstderrend?.();
  }
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}

function kill(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch {
    // It has exited in the meantime.
  }
}

function exitsWithin(child: Deno.ChildProcess, ms: number): Promise<boolean> {
  return settlesWithin(child.status, ms);
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), bound]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a `LineFramer` reports. */
export interface LineFramerHandlers {
  /** A whole line (without its "\n"), at most the limit long. */
  line(line: Uint8Array): void;
  /** A line went over the limit: its first bytes; returns the id of the call it failed, if any. */
  oversized(head: Uint8Array): string | number | undefined;
  /** The oversized line ended: its last bytes, its length, and what `oversized` returned. */
  oversizedEnd(tail: Uint8Array, bytes: number, failed: string | number | undefined): void;
}

/**
 * Splits a byte stream into lines in linear time: the current line's chunks are kept in a list and only
 * new bytes are scanned for "\n". A line over `maxLineBytes` is not kept: only its first and last
 * `ID_SCAN_BYTES` are.
 */
export class LineFramer {
  readonly #maxLineBytes: number;
  readonly #handlers: LineFramerHandlers;
  #parts: Uint8Array[] = [];
  #length = 0;
  #oversized = false;
  #failed: string | number | undefined;
  #tail = new Uint8Array(0);

  constructor(maxLineBytes: number, handlers: LineFramerHandlers) {
    this.#maxLineBytes = maxLineBytes;
    this.#handlers = handlers;
  }

  push(chunk: Uint8Array): void {
    let start = 0;
    while (start <= chunk.length) {
      const newline = chunk.indexOf(10, start);
      this.#append(chunk.subarray(start, newline < 0 ? chunk.length : newline));
      if (newline < 0) return;
      this.#endLine();
      start = newline + 1;
    }
  }

  #append(piece: Uint8Array): void {
    if (piece.length === 0) return;
    this.#length += piece.length;
    if (this.#oversized) {
      this.#keepTail(piece);
      return;
    }
    this.#parts.push(piece);
    if (this.#length <= this.#maxLineBytes) return;
    // Over the limit: keep only the ends, and let the call it answers fail now if its id is known.
    const joined = concat(this.#parts, Math.min(this.#length, ID_SCAN_BYTES));
    this.#oversized = true;
    for (const part of this.#parts.slice(-2)) this.#keepTail(part);
    this.#parts = [];
    this.#failed = this.#handlers.oversized(joined);
  }

  #keepTail(piece: Uint8Array): void {
    if (piece.length >= ID_SCAN_BYTES) {
      this.#tail = piece.slice(piece.length - ID_SCAN_BYTES);
      return;
    }
    const keep = Math.min(this.#tail.length, ID_SCAN_BYTES - piece.length);
    const tail = new Uint8Array(keep + piece.length);
    tail.set(this.#tail.subarray(this.#tail.length - keep));
    tail.set(piece, keep);
    this.#tail = tail;
  }

  #endLine(): void {
    if (this.#oversized) {
      const tail = this.#tail[this.#tail.length - 1] === 13 ? this.#tail.subarray(0, -1) : this.#tail;
      this.#handlers.oversizedEnd(tail, this.#length, this.#failed);
    } else if (this.#length > 0) {
      this.#handlers.line(concat(this.#parts, this.#length));
    }
    this.#parts = [];
    this.#length = 0;
    this.#oversized = false;
    this.#failed = undefined;
    this.#tail = new Uint8Array(0);
  }
}

/** The first `length` bytes of `parts`, in one array (one copy). */
function concat(parts: readonly Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1 && parts[0]!.length === length) return parts[0]!;
  const joined = new Uint8Array(length);
  let offset = 0;
  for (const part of parts) {
    if (offset >= length) break;
    const piece = part.subarray(0, length - offset);
    joined.set(piece, offset);
    offset += piece.length;
  }
  return joined;
}

/**
 * The `"id"` member of the JSON object that `text` starts with, read without parsing the rest: strings
 * are skipped and only depth-1 keys are looked at. Undefined when the id is not (wholly) in `text`.
 */
export function findTopLevelId(text: string): string | number | undefined {
  return findTopLevelMember(text, "id");
}

/** A string or integer member `name` of the JSON object that `text` starts with (as `findTopLevelId`). */
export function findTopLevelMember(text: string, name: string): string | number | undefined {
  const quoted = JSON.stringify(name);
  let depth = 0;
  for (let index = 0; index < text.length; index++) {
    const char = text[index];
    if (char === '"') {
      const end = stringEnd(text, index);
      if (end < 0) return undefined;
      if (depth === 1) {
        const colon = skipSpace(text, end + 1);
        if (text[colon] === ":" && text.slice(index, end + 1) === quoted) {
          return readScalar(text.slice(skipSpace(text, colon + 1)));
        }
      }
      index = end;
    } else if (char === "{" || char === "[") depth++;
    else if (char === "}" || char === "]") depth--;
  }
  return undefined;
}

/** The `"id"` member when it is last in the object that `text` ends with (a writer that puts it last). */
export function findTrailingId(text: string): string | number | undefined {
  const match = /[{,]\s*"id"\s*:\s*(-?\d+|"(?:[^"\\]|\\.)*")\s*(?:,\s*"jsonrpc"\s*:\s*"2\.0"\s*)?}\s*$/
    .exec(text);
  if (!match) return undefined;
  return match[1]!.startsWith('"') ? JSON.parse(match[1]!) as string : Number(match[1]);
}

function stringEnd(text: string, start: number): number {
  for (let index = start + 1; index < text.length; index++) {
    if (text[index] === "\\") index++;
    else if (text[index] === '"') return index;
  }
  return -1;
}

function skipSpace(text: string, index: number): number {
  while (index < text.length && /\s/.test(text[index]!)) index++;
  return index;
}

/** A JSON-RPC id (integer or string) at the start of `text`, if it is complete there. */
function readScalar(text: string): string | number | undefined {
  const number = /^-?\d+(?=\s*[,}])/.exec(text);
  if (number) return Number(number[0]);
  if (text[0] !== '"') return undefined;
  const end = stringEnd(text, 0);
  return end < 0 ? undefined : JSON.parse(text.slice(0, end + 1)) as string;
}

/**
 * Rate limit of a backend's stderr in the log: `limit` lines per window, then one line saying how many
 * were left out (told when the next line comes after the window, or at `flush()`).
 */
export class StderrRateLimit {
  readonly #limit: number;
  readonly #windowMs: number;
  readonly #now: () => number;
  #windowStart = -Infinity;
  #count = 0;
  #suppressed = 0;

  constructor(options: { limit?: number; windowMs?: number; now?: () => number } = {}) {
    this.#limit = options.limit ?? 20;
    this.#windowMs = options.windowMs ?? 10_000;
    this.#now = options.now ?? Date.now;
  }

  /** Whether to log this line, and how many lines were left out before it (to log first). */
  admit(): { log: boolean; suppressed: number } {
    const now = this.#now();
    let suppressed = 0;
    if (now - this.#windowStart >= this.#windowMs) {
      suppressed = this.flush();
      this.#windowStart = now;
      this.#count = 0;
    }
    if (this.#count < this.#limit) {
      this.#count++;
      return { log: true, suppressed };
    }
    this.#suppressed++;
    return { log: false, suppressed };
  }

  /** How many lines were left out and not yet told; resets it. */
  flush(): number {
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    return suppressed;
  }
}

const rateLimits = new WeakMap<object, Map<string, StderrRateLimit>>();

/** The stderr rate limit of backend `name` among those logged to `log`: one per gateway and backend. */
export function stderrRateLimitFor(log: object, name: string): StderrRateLimit {
  let byName = rateLimits.get(log);
  if (!byName) rateLimits.set(log, byName = new Map());
  let limit = byName.get(name);
  if (!limit) byName.set(name, limit = new StderrRateLimit());
  return limit;
}
