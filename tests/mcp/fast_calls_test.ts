/**
 * The same-era fast path of 2025-era sessions, read at the wire: a call is answered on the resumable SSE
 * stream the SDK would write (priming event from 2025-11-25 on, then what the call sends, then its
 * answer); a question the backend asks mid-call reaches the client on that stream and its POSTed answer
 * completes the call; a cancelled call ends without an answer; a lost stream of a running call resumes
 * with Last-Event-ID. Real backends (server-everything and the misbehaving fixture) over stdio.
 */
import assert from "node:assert/strict";
import {
  everythingStdio,
  JSON_HEADERS,
  misbehaving,
  registryWith,
  startTestGateway,
  type TestGateway,
  within,
} from "../helpers/mcp_clients.ts";

const BOUND_MS = 15_000;
const VERSION = "2025-11-25";

interface SseEvent {
  id?: string;
  event?: string;
  data: string;
}

/** Reads a response's SSE events one at a time, as they come. */
class EventReader {
  readonly #reader: ReadableStreamDefaultReader<string>;
  #buffer = "";

  constructor(response: Response) {
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/event-stream/);
    this.#reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  }

  /** The next event; undefined when the stream ended. */
  async next(): Promise<SseEvent | undefined> {
    while (!this.#buffer.includes("\n\n")) {
      const { value, done } = await within(BOUND_MS, this.#reader.read(), "the next SSE event");
      if (done) return undefined;
      this.#buffer += value;
    }
    const end = this.#buffer.indexOf("\n\n");
    const block = this.#buffer.slice(0, end);
    this.#buffer = this.#buffer.slice(end + 2);
    const event: SseEvent = { data: "" };
    for (const line of block.split("\n")) {
      const colon = line.indexOf(":");
      const [field, value] = [line.slice(0, colon), line.slice(colon + 1).replace(/^ /, "")];
      if (field === "id") event.id = value;
      else if (field === "event") event.event = value;
      else if (field === "data") event.data += value;
    }
    return event;
  }

  /** The next event's JSON-RPC message. */
  async message(): Promise<Record<string, unknown>> {
    const event = await this.next();
    assert.ok(event, "the stream ended before the next message");
    assert.equal(event.event, "message");
    assert.ok(event.id, "every message has an event id to resume from");
    return JSON.parse(event.data);
  }

  /** Everything left, until the stream ends. */
  async rest(): Promise<SseEvent[]> {
    const events: SseEvent[] = [];
    for (let event = await this.next(); event; event = await this.next()) events.push(event);
    return events;
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

/** A raw 2025-11-25 session that can answer sampling and elicitation. */
class RawSession {
  readonly url: string;
  readonly id: string;

  private constructor(url: string, id: string) {
    this.url = url;
    this.id = id;
  }

  static async open(url: string): Promise<RawSession> {
    const response = await fetch(url, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 0,
        method: "initialize",
        params: {
          protocolVersion: VERSION,
          capabilities: { sampling: {}, elicitation: {} },
          clientInfo: { name: "raw", version: "1" },
        },
      }),
    });
    const id = response.headers.get("mcp-session-id");
    await response.body?.cancel();
    assert.equal(response.status, 200);
    assert.ok(id);
    const session = new RawSession(url, id);
    const initialized = await session.post({ jsonrpc: "2.0", method: "notifications/initialized" });
    assert.equal(initialized.status, 202);
    await initialized.body?.cancel();
    return session;
  }

  post(message: unknown, version = VERSION): Promise<Response> {
    return fetch(this.url, {
      method: "POST",
      headers: { ...JSON_HEADERS, "mcp-session-id": this.id, "mcp-protocol-version": version },
      body: JSON.stringify(message),
    });
  }

  async call(id: string | number, name: string, args: Record<string, unknown>, version = VERSION) {
    return new EventReader(
      await this.post(
        { jsonrpc: "2.0", id, method: "tools/call", params: { name, arguments: args } },
        version,
      ),
    );
  }

  async resume(lastEventId: string): Promise<EventReader> {
    return new EventReader(
      await fetch(this.url, {
        headers: {
          accept: "text/event-stream",
          "mcp-session-id": this.id,
          "mcp-protocol-version": VERSION,
          "last-event-id": lastEventId,
        },
      }),
    );
  }

  async close(): Promise<void> {
    const response = await fetch(this.url, {
      method: "DELETE",
      headers: { "mcp-session-id": this.id, "mcp-protocol-version": VERSION },
    });
    await response.body?.cancel();
  }
}

const textOfResult = (message: Record<string, unknown>) =>
  ((message.result as { content: { text: string }[] }).content[0]!).text;

async function withGateway(test: (gateway: TestGateway, session: RawSession) => Promise<void>) {
  const gateway = await startTestGateway(
    registryWith({ steps: misbehaving("steps"), everything: everythingStdio() }),
  );
  let session: RawSession | undefined;
  try {
    session = await RawSession.open(gateway.mcpUrl);
    await test(gateway, session);
  } finally {
    await session?.close();
    await gateway.close();
  }
}

Deno.test("fast path: a call is answered on a resumable SSE stream, priming event first from 2025-11-25 on", async () => {
  await withGateway(async (_gateway, session) => {
    const stream = await session.call(1, "steps__echo", { message: "fast" });
    const priming = await stream.next();
    assert.ok(priming?.id, "the priming event carries an id");
    assert.match(priming.id, /^call-/, "the fast path's stream, not the SDK transport's");
    assert.equal(priming.data, "", "the priming event carries no message");
    assert.equal(priming.event, undefined);
    const answer = await stream.message();
    assert.equal(answer.jsonrpc, "2.0");
    assert.equal(answer.id, 1);
    assert.equal(textOfResult(answer), "steps: fast");
    assert.deepEqual(await stream.rest(), [], "the answer ends the stream");

    // The stream is kept: resuming after the priming event replays the answer.
    const replay = await session.resume(priming.id);
    const replayed = await replay.message();
    assert.deepEqual(replayed, answer);

    // A 2025-06-18 client takes no priming event: the answer is the first event.
    const older = await session.call("older", "steps__echo", { message: "older" }, "2025-06-18");
    const first = await older.message();
    assert.equal(first.id, "older");
    assert.equal(textOfResult(first), "steps: older");
  });
});

Deno.test("fast path: what a backend sends during a call comes before the answer, on the call's stream", async () => {
  await withGateway(async (_gateway, session) => {
    const stream = await session.call(2, "steps__log", { message: "during the call" });
    await stream.next(); // priming
    const log = await stream.message();
    assert.equal(log.method, "notifications/message");
    assert.match(JSON.stringify(log.params), /during the call/);
    const answer = await stream.message();
    assert.equal(answer.id, 2);
    assert.equal(textOfResult(answer), "logged during the call");
  });
});

Deno.test("fast path: sampling asked mid-call reaches the client on the call's stream; its POSTed answer completes the call", async () => {
  await withGateway(async (_gateway, session) => {
    const stream = await session.call("sample", "everything__trigger-sampling-request", {
      prompt: "fast-prompt",
      maxTokens: 5,
    });
    await stream.next(); // priming
    const question = await stream.message();
    assert.equal(question.method, "sampling/createMessage");
    assert.equal(typeof question.id, "string", "questions on fast calls never reuse the SDK's numbered ids");
    assert.match(JSON.stringify(question.params), /fast-prompt/);

    const answered = await session.post({
      jsonrpc: "2.0",
      id: question.id,
      result: { role: "assistant", content: { type: "text", text: "sampled-fast" }, model: "raw" },
    });
    assert.equal(answered.status, 202);
    await answered.body?.cancel();

    const answer = await stream.message();
    assert.equal(answer.id, "sample");
    assert.match(JSON.stringify(answer.result), /sampled-fast/);
  });
});

Deno.test("fast path: a call the client cancels ends without an answer, and the session goes on", async () => {
  await withGateway(async (_gateway, session) => {
    const stream = await session.call(7, "steps__hang", {});
    const priming = await stream.next();
    assert.ok(priming?.id, "an unanswered call opens its stream with the priming event");

    const cancelled = await session.post({
      jsonrpc: "2.0",
      method: "notifications/cancelled",
      params: { requestId: 7, reason: "changed my mind" },
    });
    assert.equal(cancelled.status, 202);
    await cancelled.body?.cancel();
    assert.deepEqual(await stream.rest(), [], "the stream ends with no answer to the cancelled call");

    const next = await session.call(8, "steps__echo", { message: "still here" });
    await next.next();
    assert.equal(textOfResult(await next.message()), "steps: still here");
  });
});

Deno.test("fast path: a client that lost the stream of a running call resumes it with Last-Event-ID", async () => {
  await withGateway(async (_gateway, session) => {
    const stream = await session.call(9, "steps__slow", { ms: 800 });
    const priming = await stream.next();
    assert.ok(priming?.id);
    await stream.cancel(); // the connection drops while the call runs

    const resumed = await session.resume(priming.id);
    const answer = await resumed.message();
    assert.equal(answer.id, 9);
    assert.equal(textOfResult(answer), "slept 800 ms");
    assert.deepEqual(await resumed.rest(), []);
  });
});
