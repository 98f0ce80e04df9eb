/**
 * The SSE stream answering one fast call (fast_calls.ts), as the SDK's transport would write it: a
 * priming event (2025-11-25 on), what the call sends its client before the answer, then the answer. Every
 * event is kept in the session's event store, so a client that lost the stream resumes it with
 * Last-Event-ID. A call answered before it sent anything is one fixed body, not a stream kept open.
 */
import type { EventStore, JSONRPCMessage } from "@modelcontextprotocol/server";

/** Stream ids of fast calls start with this, so a resumption finds its way back here. */
const STREAM_PREFIX = "call-";

/** Whether an event id names an event of a fast call's stream. */
export function isCallStreamEvent(eventId: string): boolean {
  return eventId.startsWith(STREAM_PREFIX);
}

/**
 * A call not answered by then gets its response headers and the priming event at once, the rest as it
 * comes: clients time out waiting for headers (Node's fetch after 300 s), and one that loses the stream
 * needs an event id to resume from.
 */
export const OPEN_STREAM_AFTER_MS = 100;

/** The first revision whose clients take an event with empty data (the priming event, SEP-1699). */
const PRIMING_SINCE = "2025-11-25";

const encoder = new TextEncoder();

/** A JSON-RPC message as the relay builds it (the SDK's type is narrower than what it accepts). */
type Message = Record<string, unknown>;

function eventText(eventId: string, message: Message | JSONRPCMessage): string {
  return `event: message\nid: ${eventId}\ndata: ${JSON.stringify(message)}\n\n`;
}

export class CallStream {
  readonly id = `${STREAM_PREFIX}${crypto.randomUUID()}`;
  readonly response: Promise<Response>;
  readonly #events: EventStore;
  readonly #headers: Record<string, string>;
  #respond!: (response: Response) => void;
  /** Events are stored and written one after the other, in the order they were sent. */
  #queue: Promise<unknown>;
  #priming = "";
  #responded = false;
  /** Where events are written while a client reads the stream (none once it went away). */
  #reader: ReadableStreamDefaultController<Uint8Array> | undefined;
  #finished = false;
  #openTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(events: EventStore, sessionId: string, protocolVersion: string) {
    this.#events = events;
    this.#headers = {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      "mcp-session-id": sessionId,
    };
    this.response = new Promise((resolve) => this.#respond = resolve);
    this.#queue = protocolVersion >= PRIMING_SINCE
      ? events.storeEvent(this.id, {} as JSONRPCMessage).then((eventId) => {
        this.#priming = `id: ${eventId}\ndata: \n\n`;
      })
      : Promise.resolve();
    this.#openTimer = setTimeout(() => this.#openEarly(), OPEN_STREAM_AFTER_MS);
  }

  /** Whether `eventId` is one of this stream's. */
  owns(eventId: string): boolean {
    return eventId.startsWith(`${this.id}_`);
  }

  /** Sends a message before the answer: the answer becomes a stream kept open until it comes. */
  send(message: Message): Promise<void> {
    return this.#enqueue(message, false);
  }

  /** The answer: the whole body when nothing came before it, else the stream's last event. */
  finish(message: Message): Promise<void> {
    return this.#enqueue(message, true);
  }

  #openEarly(): void {
    this.#openTimer = undefined;
    this.#queue = this.#queue.then(() => {
      if (this.#responded) return;
      this.#responded = true;
      this.#respond(this.#open(this.#priming));
    }).catch(() => {});
  }

  #responding(): void {
    this.#responded = true;
    if (this.#openTimer !== undefined) clearTimeout(this.#openTimer);
    this.#openTimer = undefined;
  }

  /** Ends the stream without an answer (a cancelled call): what was sent stays; a client that resumes gets it. */
  end(): Promise<void> {
    const done = this.#queue.then(() => {
      if (this.#finished) return;
      this.#finished = true;
      if (!this.#responded) {
        this.#responding();
        this.#respond(new Response(this.#priming, { headers: this.#headers }));
        return;
      }
      this.#close();
    });
    this.#queue = done.catch(() => {});
    return done;
  }

  #enqueue(message: Message, last: boolean): Promise<void> {
    const done = this.#queue.then(async () => {
      if (this.#finished) return;
      const text = eventText(await this.#events.storeEvent(this.id, message as JSONRPCMessage), message);
      this.#finished = last;
      if (!this.#responded) {
        this.#responding();
        if (last) this.#respond(new Response(this.#priming + text, { headers: this.#headers }));
        else this.#respond(this.#open(this.#priming + text));
        return;
      }
      this.#write(text);
      if (last) this.#close();
    });
    this.#queue = done.catch(() => {});
    return done;
  }

  /** What a client that lost the stream missed after `lastEventId`, then the rest as it comes. */
  async resume(lastEventId: string): Promise<Response> {
    let replayed = "";
    await this.#queue;
    await this.#events.replayEventsAfter(lastEventId, {
      send: (eventId, message) => {
        replayed += eventText(eventId, message);
        return Promise.resolve();
      },
    });
    this.#close();
    return this.#finished ? new Response(replayed, { headers: this.#headers }) : this.#open(replayed);
  }

  /** A streamed answer starting with `text`; events are written to it until the answer or a hang-up. */
  #open(text: string): Response {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#reader = controller;
        if (text) controller.enqueue(encoder.encode(text));
      },
      cancel: () => {
        this.#reader = undefined;
      },
    });
    return new Response(body, { headers: this.#headers });
  }

  #write(text: string): void {
    try {
      this.#reader?.enqueue(encoder.encode(text));
    } catch {
      // The client went away: the event is kept for when it resumes.
      this.#reader = undefined;
    }
  }

  #close(): void {
    try {
      this.#reader?.close();
    } catch {
      // Already closed by the client.
    }
    this.#reader = undefined;
  }
}
