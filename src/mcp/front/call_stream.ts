/**
 * The SSE stream answering one fast call (fast_calls.ts), as the SDK's transport would write it: a
 * priming event (2025-11-25 on), what the call sends its client before the answer, then the answer. Every
 * event is kept in the session's event store, so a client that lost the stream resumes it with
 * Last-Event-ID. A call answered before it sent anything is one fixed body, not a stream kept open.
 * Everything here is synchronous: events are kept and written in the order they are sent.
 */
import type { JSONRPCMessage } from "@modelcontextprotocol/server";
import type { SessionEventStore } from "../event_store.ts";

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

function eventText(eventId: string, json: string): string {
  return `event: message\nid: ${eventId}\ndata: ${json}\n\n`;
}

export class CallStream {
  readonly id = `${STREAM_PREFIX}${crypto.randomUUID()}`;
  readonly response: Promise<Response>;
  readonly #events: SessionEventStore;
  readonly #headers: Record<string, string>;
  #respond!: (response: Response) => void;
  readonly #priming: string;
  #responded = false;
  /** Where events are written while a client reads the stream (none once it went away). */
  #reader: ReadableStreamDefaultController<Uint8Array> | undefined;
  #finished = false;
  #openTimer: ReturnType<typeof setTimeout> | undefined;

  constructor(events: SessionEventStore, sessionId: string, protocolVersion: string) {
    this.#events = events;
    this.#headers = {
      "content-type": "text/event-stream",
      "cache-control": "no-cache, no-transform",
      "mcp-session-id": sessionId,
    };
    this.response = new Promise((resolve) => this.#respond = resolve);
    this.#priming = protocolVersion >= PRIMING_SINCE
      ? `id: ${events.keep(this.id, {} as JSONRPCMessage, "{}")}\ndata: \n\n`
      : "";
    this.#openTimer = setTimeout(() => this.#openEarly(), OPEN_STREAM_AFTER_MS);
  }

  /** Whether `eventId` is one of this stream's. */
  owns(eventId: string): boolean {
    return eventId.startsWith(`${this.id}_`);
  }

  /** Sends a message before the answer: the answer becomes a stream kept open until it comes. */
  send(message: Message): void {
    this.#event(message, false);
  }

  /** The answer: the whole body when nothing came before it, else the stream's last event. */
  finish(message: Message): void {
    this.#event(message, true);
  }

  /** Ends the stream without an answer (a cancelled call): what was sent stays; a client that resumes gets it. */
  end(): void {
    if (this.#finished) return;
    this.#finished = true;
    if (this.#responded) return this.#close();
    this.#responding(new Response(this.#priming, { headers: this.#headers }));
  }

  /** What a client that lost the stream missed after `lastEventId`, then the rest as it comes. */
  resume(lastEventId: string): Response {
    let replayed = "";
    for (const { eventId, message } of this.#events.eventsAfter(lastEventId) ?? []) {
      replayed += eventText(eventId, JSON.stringify(message));
    }
    this.#close();
    return this.#finished ? new Response(replayed, { headers: this.#headers }) : this.#open(replayed);
  }

  #event(message: Message, last: boolean): void {
    if (this.#finished) return;
    const json = JSON.stringify(message);
    const text = eventText(this.#events.keep(this.id, message as JSONRPCMessage, json), json);
    this.#finished = last;
    if (!this.#responded) {
      const body = this.#priming + text;
      this.#responding(last ? new Response(body, { headers: this.#headers }) : this.#open(body));
      return;
    }
    this.#write(text);
    if (last) this.#close();
  }

  #openEarly(): void {
    this.#openTimer = undefined;
    if (!this.#responded) this.#responding(this.#open(this.#priming));
  }

  #responding(response: Response): void {
    this.#responded = true;
    if (this.#openTimer !== undefined) clearTimeout(this.#openTimer);
    this.#openTimer = undefined;
    this.#respond(response);
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
