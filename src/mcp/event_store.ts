/**
 * A 2025-era session's replay buffer: the recent events of its SSE streams, so that a client can resume
 * a stream with Last-Event-ID. Bounded in bytes per session, the oldest events dropped first.
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server";

/** Replay buffer of one session, by default (big answers must not pin hundreds of MB per session). */
export const DEFAULT_REPLAY_BYTES = 4 * 1024 * 1024;
/** Counted for every event beside its JSON, so that a flood of tiny events is bounded too. */
const EVENT_OVERHEAD_BYTES = 64;

interface StoredEvent {
  readonly streamId: string;
  readonly id: number;
  readonly message: JSONRPCMessage;
  readonly bytes: number;
  /** Set when its stream was forgotten: it no longer counts, and eviction skips it. */
  dropped: boolean;
}

/**
 * Keeps the newest events of a session's SSE streams within `maxBytes` (an event's JSON in UTF-8 plus a
 * small overhead); an event larger than that is sent but not kept. A stream stays known (its later
 * events replayable) while it is among the session's last `maxStreams` streams, even once its older
 * events are gone: a replay after a dropped event gets the events that remain.
 */
export class SessionEventStore implements EventStore {
  readonly #streams = new Map<string, StoredEvent[]>();
  /** Every kept event of the session, oldest first, from `#head` on. */
  #events: StoredEvent[] = [];
  #head = 0;
  /** Events in `#events` (from `#head` on) whose stream was forgotten: they wait to be compacted away. */
  #forgotten = 0;
  #bytes = 0;
  readonly #maxBytes: number;
  readonly #maxStreams: number;
  #nextId = 1;

  constructor(options: { maxBytes?: number; maxStreams?: number } = {}) {
    this.#maxBytes = options.maxBytes ?? DEFAULT_REPLAY_BYTES;
    this.#maxStreams = options.maxStreams ?? 64;
  }

  /** Bytes the kept events count for (always at most `maxBytes`). */
  get bytes(): number {
    return this.#bytes;
  }

  /** Events held in memory, those of forgotten streams not yet compacted away included. */
  get held(): number {
    return this.#events.length - this.#head;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    return Promise.resolve(this.keep(streamId, message));
  }

  /**
   * `storeEvent()` without a promise, for the fast path (front/call_stream.ts), which also has the
   * message's JSON already. Returns the event's id.
   */
  keep(streamId: string, message: JSONRPCMessage, json = JSON.stringify(message)): string {
    let events = this.#streams.get(streamId);
    if (!events) {
      events = [];
      this.#streams.set(streamId, events);
      if (this.#streams.size > this.#maxStreams) this.#forgetStream(this.#streams.keys().next().value!);
    }
    const id = this.#nextId++;
    const bytes = utf8Length(json) + EVENT_OVERHEAD_BYTES;
    if (bytes <= this.#maxBytes) {
      const event: StoredEvent = { streamId, id, message, bytes, dropped: false };
      events.push(event);
      this.#events.push(event);
      this.#bytes += bytes;
      while (this.#bytes > this.#maxBytes) this.#evictOldest();
    }
    return `${streamId}_${id}`;
  }

  /** The kept events of `lastEventId`'s stream after it, with their ids; undefined for an unknown id. */
  eventsAfter(lastEventId: string): { eventId: string; message: JSONRPCMessage }[] | undefined {
    const streamId = streamOf(lastEventId);
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf("_") + 1));
    const events = streamId === undefined ? undefined : this.#streams.get(streamId);
    if (streamId === undefined || !events || !Number.isSafeInteger(after)) return undefined;
    const found: { eventId: string; message: JSONRPCMessage }[] = [];
    for (let event = firstAfter(events, after); event; event = firstAfter(events, event.id)) {
      found.push({ eventId: `${streamId}_${event.id}`, message: event.message });
    }
    return found;
  }

  /**
   * Whether `eventId`'s stream is one this store knows (its later events replayable). Events live only
   * in the memory of the process that sent them: another replica's, or this process's before a restart,
   * are unknown here.
   */
  holds(eventId: string): boolean {
    const streamId = streamOf(eventId);
    return streamId !== undefined && this.#streams.has(streamId);
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return Promise.resolve(this.holds(eventId) ? streamOf(eventId) : undefined);
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const streamId = streamOf(lastEventId);
    const after = Number(lastEventId.slice(lastEventId.lastIndexOf("_") + 1));
    const events = streamId === undefined ? undefined : this.#streams.get(streamId);
    if (streamId === undefined || !events || !Number.isSafeInteger(after)) {
      throw new Error(`Cannot replay events: unknown event id "${lastEventId}"`);
    }
    // By id rather than by index: events may be stored (and old ones dropped) while a send is awaited.
    for (let last = after, event = firstAfter(events, last); event; event = firstAfter(events, last)) {
      await send(`${streamId}_${event.id}`, event.message);
      last = event.id;
    }
    return streamId;
  }

  #evictOldest(): void {
    const event = this.#events[this.#head++];
    if (!event) return;
    if (event.dropped) this.#forgotten--;
    else {
      this.#bytes -= event.bytes;
      // Events leave in the order they came, so this one is its stream's oldest.
      this.#streams.get(event.streamId)?.shift();
    }
    // Compact now and then rather than shifting the whole session's queue on every eviction.
    if (this.#head > 1024 && this.#head * 2 > this.#events.length) {
      this.#events = this.#events.slice(this.#head);
      this.#head = 0;
    }
  }

  #forgetStream(streamId: string): void {
    for (const event of this.#streams.get(streamId) ?? []) {
      event.dropped = true;
      this.#bytes -= event.bytes;
      this.#forgotten++;
    }
    this.#streams.delete(streamId);
    // A session making stream after stream (a call each) never reaches `maxBytes`: without this, the
    // forgotten streams' events would stay in the queue, and their messages in memory, for ever.
    if (this.#forgotten > 1024 && this.#forgotten * 2 > this.held) {
      this.#events = this.#events.slice(this.#head).filter((event) => !event.dropped);
      this.#head = 0;
      this.#forgotten = 0;
    }
  }
}

/** The first of `events` (sorted by id) whose id is above `id`. */
function firstAfter(events: readonly StoredEvent[], id: number): StoredEvent | undefined {
  let low = 0;
  let high = events.length;
  while (low < high) {
    const middle = (low + high) >>> 1;
    if (events[middle]!.id > id) high = middle;
    else low = middle + 1;
  }
  return events[low];
}

const NON_ASCII = /[\u0080-\uffff]/;

/** The length of `text` in UTF-8, without encoding it (JSON is mostly ASCII: one scan then). */
export function utf8Length(text: string): number {
  if (!NON_ASCII.test(text)) return text.length;
  let bytes = 0;
  for (let index = 0; index < text.length; index++) {
    const code = text.charCodeAt(index);
    if (code < 0x80) bytes += 1;
    else if (code < 0x800) bytes += 2;
    else if (code >= 0xd800 && code <= 0xdbff && index + 1 < text.length) {
      const next = text.charCodeAt(index + 1);
      // A surrogate pair is one character of 4 bytes; a lone surrogate is encoded as U+FFFD (3 bytes).
      if (next >= 0xdc00 && next <= 0xdfff) {
        bytes += 4;
        index++;
      } else bytes += 3;
    } else bytes += 3;
  }
  return bytes;
}

/** The stream part of an event id `{streamId}_{n}`. */
function streamOf(eventId: string): string | undefined {
  const separator = eventId.lastIndexOf("_");
  return separator > 0 ? eventId.slice(0, separator) : undefined;
}
