import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server";

/**
 * Keeps the last events of each SSE stream of a session so a client can resume with Last-Event-ID.
 * Bounded: a stream keeps at most `maxEventsPerStream` events, a session at most `maxStreams` streams.
 */
export class SessionEventStore implements EventStore {
  readonly #streams = new Map<string, { id: number; message: JSONRPCMessage }[]>();
  readonly #maxEventsPerStream: number;
  readonly #maxStreams: number;
  #nextId = 1;

  constructor(options: { maxEventsPerStream?: number; maxStreams?: number } = {}) {
    this.#maxEventsPerStream = options.maxEventsPerStream ?? 200;
    this.#maxStreams = options.maxStreams ?? 64;
  }

  storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    let events = this.#streams.get(streamId);
    if (!events) {
      events = [];
      this.#streams.set(streamId, events);
      if (this.#streams.size > this.#maxStreams) this.#streams.delete(this.#streams.keys().next().value!);
    }
    const id = this.#nextId++;
    events.push({ id, message });
    if (events.length > this.#maxEventsPerStream) events.shift();
    return Promise.resolve(`${streamId}_${id}`);
  }

  getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    const separator = eventId.lastIndexOf("_");
    const streamId = separator > 0 ? eventId.slice(0, separator) : undefined;
    return Promise.resolve(streamId !== undefined && this.#streams.has(streamId) ? streamId : undefined);
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const separator = lastEventId.lastIndexOf("_");
    const streamId = lastEventId.slice(0, separator);
    const after = Number(lastEventId.slice(separator + 1));
    const events = this.#streams.get(streamId);
    if (separator <= 0 || !events || !Number.isSafeInteger(after)) throw new Error("Unknown event id");
    for (const event of events) {
      if (event.id > after) await send(`${streamId}_${event.id}`, event.message);
    }
    return streamId;
  }
}
