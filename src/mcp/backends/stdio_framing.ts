// Reading a backend's stdout: linear-time line framing, the id of an oversized line found without
// parsing it, and sizes written as a registry would.

/** How much of an oversized line's start (and end) is kept to find which call it answers. */
const ID_SCAN_BYTES = 8 * 1024;

/** `16 MiB`, `512 KiB` or `1000 bytes`: the limit as a registry would write it. */
export function formatBytes(bytes: number): string {
  if (bytes % (1024 * 1024) === 0) return `${bytes / (1024 * 1024)} MiB`;
  if (bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} bytes`;
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
