/**
 * Unit tests of a session's replay buffer (SessionEventStore): its byte bound, and replay after
 * Last-Event-ID of what it kept.
 */
import assert from "node:assert/strict";
import type { JSONRPCMessage } from "@modelcontextprotocol/server";
import { SessionEventStore, utf8Length } from "../../src/mcp/event_store.ts";

/** A tool result whose JSON is about `bytes` long. */
function result(id: number, bytes: number): JSONRPCMessage {
  return { jsonrpc: "2.0", id, result: { content: [{ type: "text", text: "x".repeat(bytes) }] } };
}

/** The event ids and messages a replay after `lastEventId` sends. */
async function replay(store: SessionEventStore, lastEventId: string) {
  const sent: { eventId: string; message: JSONRPCMessage }[] = [];
  const streamId = await store.replayEventsAfter(lastEventId, {
    send: (eventId, message) => {
      sent.push({ eventId, message });
      return Promise.resolve();
    },
  });
  return { streamId, sent };
}

const idOf = (message: JSONRPCMessage) => (message as { id?: unknown }).id;

Deno.test("SessionEventStore.storeEvent() drops the oldest events to stay within maxBytes", async () => {
  const maxBytes = 10_000;
  const store = new SessionEventStore({ maxBytes });
  const first = await store.storeEvent("a", {} as JSONRPCMessage);
  for (let index = 1; index <= 20; index++) {
    await store.storeEvent(index % 2 ? "a" : "b", result(index, 3_000));
    assert.ok(store.bytes <= maxBytes, `${store.bytes} bytes kept after event ${index}`);
  }
  assert.ok(store.bytes > 6_000, "the newest events are kept");
  // Stream "a" is still known; only its newest results remain to replay.
  const { streamId, sent } = await replay(store, first);
  assert.equal(streamId, "a");
  assert.deepEqual(sent.map(({ message }) => idOf(message)), [19]);
  const { sent: fromB } = await replay(store, "b_0");
  assert.deepEqual(fromB.map(({ message }) => idOf(message)), [18, 20]);
});

Deno.test("SessionEventStore.storeEvent() keeps no event larger than maxBytes, and still numbers it", async () => {
  const store = new SessionEventStore({ maxBytes: 1_000 });
  const before = await store.storeEvent("s", result(1, 100));
  const huge = await store.storeEvent("s", result(2, 5_000));
  const after = await store.storeEvent("s", result(3, 100));
  assert.ok(store.bytes <= 1_000);
  const { sent } = await replay(store, before);
  assert.deepEqual(sent.map(({ message }) => idOf(message)), [3]);
  assert.deepEqual(sent.map(({ eventId }) => eventId), [after]);
  assert.notEqual(huge, after);
});

Deno.test("SessionEventStore.replayEventsAfter() sends the events after the given one, in order", async () => {
  const store = new SessionEventStore();
  const priming = await store.storeEvent("s", {} as JSONRPCMessage);
  const ids = [await store.storeEvent("s", result(1, 10)), await store.storeEvent("s", result(2, 10))];
  await store.storeEvent("other", result(9, 10));
  assert.equal(await store.getStreamIdForEventId(priming), "s");
  const { sent } = await replay(store, priming);
  assert.deepEqual(sent.map(({ eventId }) => eventId), ids);
  assert.deepEqual((await replay(store, ids[0]!)).sent.map(({ message }) => idOf(message)), [2]);
});

Deno.test("SessionEventStore.storeEvent() forgets the oldest stream beyond maxStreams", async () => {
  const store = new SessionEventStore({ maxStreams: 2 });
  const old = await store.storeEvent("one", result(1, 10));
  await store.storeEvent("two", result(2, 10));
  const kept = store.bytes;
  await store.storeEvent("three", result(3, 10));
  assert.equal(await store.getStreamIdForEventId(old), undefined);
  assert.equal(store.bytes, kept, "the forgotten stream's bytes no longer count");
  await assert.rejects(replay(store, old), /unknown event id/);
});

Deno.test("SessionEventStore holds a bounded number of events when every call is a stream of its own", async () => {
  // A session whose every call opens a stream (two small events each) never reaches maxBytes: the events
  // of the streams it forgets must leave memory all the same.
  const store = new SessionEventStore({ maxStreams: 4 });
  let last = "";
  for (let call = 0; call < 10_000; call++) {
    await store.storeEvent(`call-${call}`, result(call, 10));
    last = await store.storeEvent(`call-${call}`, result(call, 10));
  }
  assert.ok(store.held <= 2 * 1024 + 8, `events held: ${store.held}`);
  assert.ok(store.held >= 8, "the last streams' events are kept");
  // What is kept still replays.
  assert.equal(await store.getStreamIdForEventId(last), "call-9999");
  const { sent } = await replay(store, `call-9999_0`);
  assert.deepEqual(sent.map(({ message }) => idOf(message)), [9999, 9999]);
});

Deno.test("utf8Length() counts what TextEncoder would write, without encoding", () => {
  const encoder = new TextEncoder();
  for (
    const text of [
      "",
      "ascii only",
      "é",
      "€ and 日本",
      "emoji 😀 pair",
      "lone \ud800 high",
      "lone \udc00 low",
      "end \ud83d",
    ]
  ) {
    assert.equal(utf8Length(text), encoder.encode(text).byteLength, JSON.stringify(text));
  }
});

Deno.test("SessionEventStore.keep() and eventsAfter(): the synchronous store and replay of the fast path", () => {
  const store = new SessionEventStore();
  const priming = store.keep("call-a", {} as JSONRPCMessage, "{}");
  const first = store.keep("call-a", result(1, 10));
  store.keep("call-b", result(7, 10));
  store.keep("call-a", result(2, 10));
  assert.deepEqual(store.eventsAfter(priming)?.map(({ message }) => idOf(message)), [1, 2]);
  assert.deepEqual(store.eventsAfter(first)?.map(({ eventId }) => eventId.startsWith("call-a_")), [true]);
  assert.equal(store.eventsAfter("unknown_1"), undefined);
});
