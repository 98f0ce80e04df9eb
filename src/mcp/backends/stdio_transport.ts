// The client transport for stdio backends: a child process spoken to in newline-delimited JSON-RPC, each
// answer bounded by max_response_size, and a stop that surely ends it (stdin EOF, SIGTERM, SIGKILL).
import { JSONRPC } from "../../core/jsonrpc.ts";
import type { JSONRPCMessage, Transport } from "@modelcontextprotocol/client";
import { loadClientSdk } from "../sdk.ts";
import { findTopLevelMember, findTrailingId, formatBytes, LineFramer } from "./stdio_framing.ts";

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
  /** Lines sent while a write to stdin is in flight: the next write carries them all. */
  #batch: string[] = [];
  #batchWritten: PromiseWithResolvers<void> | undefined;
  #writing = false;
  /** The SDK's check of a message read: the client SDK's, loaded before the first line is read. */
  #parse: ((value: unknown) => JSONRPCMessage) | undefined;

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
    await this.#write(writer, JSON.stringify(message) + "\n");
  }

  /**
   * Writes `line` to the process's stdin: at once when no write is in flight, else with every line that
   * comes meanwhile in the next write (one pipe write per batch instead of one per message under load).
   * Resolves when the line's write has.
   */
  #write(writer: WritableStreamDefaultWriter<Uint8Array>, line: string): Promise<void> {
    this.#batch.push(line);
    this.#batchWritten ??= Promise.withResolvers<void>();
    const written = this.#batchWritten.promise;
    if (!this.#writing) void this.#writeBatches(writer);
    return written;
  }

  async #writeBatches(writer: WritableStreamDefaultWriter<Uint8Array>): Promise<void> {
    this.#writing = true;
    try {
      while (this.#batch.length > 0) {
        const text = this.#batch.length === 1 ? this.#batch[0]! : this.#batch.join("");
        const written = this.#batchWritten!;
        this.#batch = [];
        this.#batchWritten = undefined;
        try {
          await writer.write(this.#encoder.encode(text));
          written.resolve();
        } catch (error) {
          written.reject(error);
        }
      }
    } finally {
      this.#writing = false;
    }
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
      this.#parse ??= (await loadClientSdk()).parseJSONRPCMessage;
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
      message = this.#parse!(JSON.parse(text));
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
        code: JSONRPC.internalError,
        message: `The backend's answer is larger than max_response_size (${
          formatBytes(this.#options.maxResponseBytes)
        })`,
      },
    });
    return id;
  }

  /** Answers the backend's own oversized request with an error, so that it does not wait forever. */
  #refuseOversized(id: string | number): void {
    if (!this.#writer) return;
    this.#write(
      this.#writer,
      JSON.stringify({
        jsonrpc: "2.0",
        id,
        error: {
          code: JSONRPC.internalError,
          message: `The request is larger than ${formatBytes(this.#options.maxResponseBytes)}`,
        },
      }) + "\n",
    ).catch(() => {});
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
