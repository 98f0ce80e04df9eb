/**
 * Follows the client's side of an HTTP/1.1 connection just far enough to tell request heads from bodies
 * (RFC 9112 §2, §6), so the connection guard can time each phase. It forwards nothing and decides nothing
 * about the request itself: what it cannot follow it gives up on ("opaque"), and the server behind it
 * answers that request as it would anyway.
 */

/** What the framing tells its owner, in stream order. */
export interface FramingEvents {
  /** The first byte of a request head arrived. */
  headStarted(): void;
  /** A head ended; `hasBody` when a body follows it. */
  headEnded(hasBody: boolean): void;
  /** The body of the current request ended. */
  bodyEnded(): void;
  /** The stream can no longer be followed; no more events come. */
  lost(): void;
}

/** Heads past this are not followed (the server refuses them long before). */
const MAX_HEAD_BYTES = 512 * 1024;
/** A chunk-size line longer than this is not followed. */
const MAX_CHUNK_LINE = 4096;

const LATIN1 = new TextDecoder("latin1");
const LF = 0x0a;
const CR = 0x0d;

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailers" | "opaque";

export class RequestFraming {
  #phase: Phase = "head";
  #events: FramingEvents;
  /** Bytes of the current head, kept to read its framing headers. */
  #head: Uint8Array[] = [];
  #headBytes = 0;
  /** Whether the current head has had anything besides line ends (leading blank lines are skipped). */
  #headContent = false;
  /** End-of-head detection: 0 none, 1 just after LF, 2 after LF CR. */
  #lineEnd = 0;
  #remaining = 0;
  #chunkLine = "";

  constructor(events: FramingEvents) {
    this.#events = events;
  }

  /** True between requests: no head, body or trailer is partly received. */
  get idle(): boolean {
    return this.#phase === "head" && !this.#headContent;
  }

  /** True once the stream could not be followed. */
  get lost(): boolean {
    return this.#phase === "opaque";
  }

  feed(bytes: Uint8Array): void {
    let index = 0;
    while (index < bytes.length) {
      switch (this.#phase) {
        case "opaque":
          return;
        case "head":
          index = this.#readHead(bytes, index);
          break;
        case "length":
          index = this.#skip(bytes, index);
          if (this.#remaining === 0) this.#endBody();
          break;
        case "chunk-size":
          index = this.#readChunkSize(bytes, index);
          break;
        case "chunk-data":
          index = this.#skip(bytes, index);
          if (this.#remaining === 0) this.#phase = "chunk-end";
          break;
        case "chunk-end": {
          const byte = bytes[index++]!;
          if (byte === LF) this.#phase = "chunk-size";
          else if (byte !== CR) this.#lose();
          break;
        }
        case "trailers":
          index = this.#readTrailers(bytes, index);
          break;
      }
    }
  }

  /** Passes over body bytes still owed (`#remaining`) from `start`; returns where it stopped. */
  #skip(bytes: Uint8Array, start: number): number {
    const take = Math.min(this.#remaining, bytes.length - start);
    this.#remaining -= take;
    return start + take;
  }

  #readHead(bytes: Uint8Array, start: number): number {
    let index = start;
    if (!this.#headContent) {
      // Blank lines before the request line are ignored (RFC 9112 §2.2).
      while (index < bytes.length && (bytes[index] === LF || bytes[index] === CR)) index++;
      if (index === bytes.length) return index;
      this.#headContent = true;
      this.#lineEnd = 0;
      this.#events.headStarted();
    }
    const from = index;
    while (index < bytes.length) {
      if (this.#lineEnd !== 0) {
        // At the start of a line: an empty one ends the head.
        const byte = bytes[index]!;
        if (byte === LF) {
          this.#keepHead(bytes.subarray(from, index + 1));
          if (this.#phase === "head") this.#finishHead();
          return index + 1;
        }
        if (byte === CR && this.#lineEnd === 1) {
          this.#lineEnd = 2;
          index++;
          continue;
        }
        this.#lineEnd = 0;
      }
      const lineEnd = bytes.indexOf(LF, index);
      if (lineEnd < 0) break;
      this.#lineEnd = 1;
      index = lineEnd + 1;
    }
    this.#keepHead(bytes.subarray(from));
    return bytes.length;
  }

  #keepHead(part: Uint8Array): void {
    if (part.length === 0 || this.#phase === "opaque") return;
    this.#headBytes += part.length;
    if (this.#headBytes > MAX_HEAD_BYTES) return this.#lose();
    this.#head.push(part.slice());
  }

  #finishHead(): void {
    const text = LATIN1.decode(concat(this.#head, this.#headBytes));
    this.#head = [];
    this.#headBytes = 0;
    this.#headContent = false;
    this.#lineEnd = 0;
    const framing = bodyFraming(text);
    if (framing === undefined) return this.#lose();
    if (framing === "chunked") {
      this.#events.headEnded(true);
      this.#phase = "chunk-size";
      this.#chunkLine = "";
    } else if (framing > 0) {
      this.#events.headEnded(true);
      this.#phase = "length";
      this.#remaining = framing;
    } else {
      this.#events.headEnded(false);
    }
  }

  #readChunkSize(bytes: Uint8Array, start: number): number {
    for (let index = start; index < bytes.length; index++) {
      const byte = bytes[index]!;
      if (byte !== LF) {
        if (this.#chunkLine.length >= MAX_CHUNK_LINE) {
          this.#lose();
          return bytes.length;
        }
        this.#chunkLine += String.fromCharCode(byte);
        continue;
      }
      const size = /^([0-9a-fA-F]{1,12})[ \t]*(?:;[^\r]*)?\r?$/.exec(this.#chunkLine);
      this.#chunkLine = "";
      if (!size) {
        this.#lose();
        return bytes.length;
      }
      this.#remaining = parseInt(size[1]!, 16);
      if (this.#remaining === 0) {
        this.#phase = "trailers";
        this.#lineEnd = 1;
      } else {
        this.#phase = "chunk-data";
      }
      return index + 1;
    }
    return bytes.length;
  }

  #readTrailers(bytes: Uint8Array, start: number): number {
    for (let index = start; index < bytes.length; index++) {
      const byte = bytes[index]!;
      if (byte === LF) {
        if (this.#lineEnd !== 0) {
          this.#lineEnd = 0;
          this.#endBody();
          return index + 1;
        }
        this.#lineEnd = 1;
      } else if (byte === CR) {
        if (this.#lineEnd === 1) this.#lineEnd = 2;
      } else {
        this.#lineEnd = 0;
      }
    }
    return bytes.length;
  }

  #endBody(): void {
    this.#phase = "head";
    this.#events.bodyEnded();
  }

  #lose(): void {
    this.#phase = "opaque";
    this.#head = [];
    this.#events.lost();
  }
}

/**
 * How a request head says its body is framed: "chunked", a byte count (0: no body), or undefined when
 * the framing is invalid or ambiguous (conflicting lengths, a final coding other than chunked).
 */
export function bodyFraming(head: string): "chunked" | number | undefined {
  const lines = head.split(/\r?\n/);
  let length: number | undefined;
  let codings: string | undefined;
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon <= 0) continue;
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    if (name === "content-length") {
      for (const part of value.split(",")) {
        if (!/^\d{1,15}$/.test(part.trim())) return undefined;
        const parsed = Number(part.trim());
        if (length !== undefined && length !== parsed) return undefined;
        length = parsed;
      }
    } else if (name === "transfer-encoding") {
      codings = codings === undefined ? value : `${codings},${value}`;
    }
  }
  if (codings !== undefined) {
    const last = codings.split(",").map((coding) => coding.trim().toLowerCase()).filter(Boolean).at(-1);
    return last === "chunked" ? "chunked" : undefined;
  }
  return length ?? 0;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}
