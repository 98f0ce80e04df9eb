import assert from "node:assert/strict";
import { bodyFraming, RequestFraming } from "../../src/http/request_framing.ts";

/** Feeds `text` in pieces of `step` bytes and returns the events in order. */
function eventsOf(text: string, step = text.length): string[] {
  const events: string[] = [];
  const framing = new RequestFraming({
    headStarted: () => events.push("head"),
    headEnded: (hasBody) => events.push(hasBody ? "head-end+body" : "head-end"),
    bodyEnded: () => events.push("body-end"),
    lost: () => events.push("lost"),
  });
  const bytes = new TextEncoder().encode(text);
  for (let offset = 0; offset < bytes.length; offset += step) {
    framing.feed(bytes.subarray(offset, offset + step));
  }
  if (framing.idle) events.push("idle");
  return events;
}

const GET = "GET / HTTP/1.1\r\nhost: x\r\n\r\n";
const POST = "POST /mcp HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhello";
const CHUNKED = "POST /mcp HTTP/1.1\r\nhost: x\r\ntransfer-encoding: chunked\r\n\r\n" +
  "5;ext=1\r\nhello\r\n3\r\nabc\r\n0\r\ntrailer: t\r\n\r\n";

Deno.test("framing: heads, length bodies and chunked bodies, in one piece and split at every byte", () => {
  for (const step of [1, 2, 3, 7, 1000]) {
    assert.deepEqual(eventsOf(GET, step), ["head", "head-end", "idle"], `step ${step}`);
    assert.deepEqual(eventsOf(POST, step), ["head", "head-end+body", "body-end", "idle"], `step ${step}`);
    assert.deepEqual(eventsOf(CHUNKED, step), ["head", "head-end+body", "body-end", "idle"], `step ${step}`);
    assert.deepEqual(
      eventsOf(POST + GET + CHUNKED, step),
      ["head", "head-end+body", "body-end", "head", "head-end", "head", "head-end+body", "body-end", "idle"],
      `pipelined, step ${step}`,
    );
  }
});

Deno.test("framing: a partial head, body or chunk is not idle", () => {
  assert.deepEqual(eventsOf("GET / HTTP/1.1\r\nhost: x\r\n"), ["head"]);
  assert.deepEqual(eventsOf(POST.slice(0, -2)), ["head", "head-end+body"]);
  assert.deepEqual(eventsOf(CHUNKED.slice(0, -4)), ["head", "head-end+body"]);
});

Deno.test("framing: blank lines before a request line are no head, and bare LF line ends are followed", () => {
  assert.deepEqual(eventsOf("\r\n\r\n\n"), ["idle"]);
  assert.deepEqual(eventsOf(`\r\n${GET}`), ["head", "head-end", "idle"]);
  assert.deepEqual(eventsOf("GET / HTTP/1.1\nhost: x\n\n"), ["head", "head-end", "idle"]);
});

Deno.test("framing: ambiguous or invalid framing is given up on", () => {
  const head = (headers: string) => `POST / HTTP/1.1\r\nhost: x\r\n${headers}\r\n`;
  assert.deepEqual(eventsOf(head("content-length: 5\r\ncontent-length: 6\r\n")), ["head", "lost"]);
  assert.deepEqual(eventsOf(head("content-length: -1\r\n")), ["head", "lost"]);
  assert.deepEqual(eventsOf(head("transfer-encoding: gzip\r\n")), ["head", "lost"]);
  assert.deepEqual(
    eventsOf(head("transfer-encoding: chunked\r\n") + "zz\r\n"),
    ["head", "head-end+body", "lost"],
  );
  assert.deepEqual(eventsOf(`GET / HTTP/1.1\r\nx: ${"a".repeat(600 * 1024)}`, 8192), ["head", "lost"]);
});

Deno.test("bodyFraming() reads content-length and transfer-encoding as RFC 9112 §6.3 does", () => {
  assert.equal(bodyFraming("GET / HTTP/1.1\r\nhost: x\r\n"), 0);
  assert.equal(bodyFraming("POST / HTTP/1.1\r\nContent-Length: 12\r\n"), 12);
  assert.equal(bodyFraming("POST / HTTP/1.1\r\ncontent-length: 12, 12\r\n"), 12);
  assert.equal(
    bodyFraming("POST / HTTP/1.1\r\ntransfer-encoding: gzip, chunked\r\ncontent-length: 3\r\n"),
    "chunked",
  );
  assert.equal(bodyFraming("POST / HTTP/1.1\r\ntransfer-encoding: chunked, gzip\r\n"), undefined);
});
