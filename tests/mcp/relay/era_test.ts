/** Unit tests of the era bridge: what crosses between a 2025-era side and a 2026-07-28 side, and how. */
import assert from "node:assert/strict";
import { JSONRPC, JsonRpcError } from "../../../src/core/jsonrpc.ts";
import { MAX_INPUT_ROUNDS, relayAskingClient } from "../../../src/mcp/era/input_loop.ts";
import {
  declaresUrlElicitation,
  forModernBackend,
  missingCapability,
  relayModernNotification,
  RETRY_STATE,
  urlElicitationAsInputRequired,
} from "../../../src/mcp/era/modern.ts";
import { FrontSession } from "../../../src/mcp/session.ts";
import { ANONYMOUS } from "../../../src/core/caller.ts";
import { fakeContext } from "./_fake_relay.ts";

const CAPABILITIES = "io.modelcontextprotocol/clientCapabilities";

Deno.test("missingCapability() names what a 2026-07-28 client lacks to answer a backend's request", () => {
  const context = fakeContext({ [CAPABILITIES]: { elicitation: {} } });
  assert.equal(missingCapability("elicitation/create", context), undefined);
  assert.equal(missingCapability("sampling/createMessage", context), "sampling");
  assert.equal(missingCapability("roots/list", context), "roots");
  assert.equal(missingCapability("notifications/message", context), undefined);
  assert.equal(missingCapability("elicitation/create", fakeContext()), "elicitation");
});

Deno.test("declaresUrlElicitation() holds only for elicitation.url", () => {
  assert.equal(declaresUrlElicitation(fakeContext({ [CAPABILITIES]: { elicitation: { url: {} } } })), true);
  assert.equal(declaresUrlElicitation(fakeContext({ [CAPABILITIES]: { elicitation: {} } })), false);
  assert.equal(declaresUrlElicitation(fakeContext()), false);
});

Deno.test("urlElicitationAsInputRequired() turns a -32042 into input_required with each URL", () => {
  const error = new JsonRpcError(JSONRPC.urlElicitationRequired, "Connect first", {
    elicitations: [
      { mode: "url", elicitationId: "e1", url: "https://a.example/connect", message: "Connect A" },
      { mode: "url", elicitationId: "e2", url: "https://b.example/connect" },
    ],
  });
  assert.deepEqual(urlElicitationAsInputRequired(error), {
    resultType: "input_required",
    inputRequests: {
      "url-0": {
        method: "elicitation/create",
        params: { mode: "url", url: "https://a.example/connect", message: "Connect A" },
      },
      "url-1": {
        method: "elicitation/create",
        params: { mode: "url", url: "https://b.example/connect", message: "Connect first" },
      },
    },
    requestState: RETRY_STATE,
  });
});

Deno.test("forModernBackend() carries the client's capabilities, level and tasks opt-in, not its version, info or other extensions", () => {
  const session = new FrontSession("s", ANONYMOUS, { kind: "aggregate" }, "modern");
  const context = fakeContext({
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: "client", version: "1" },
    "io.modelcontextprotocol/logLevel": "warning",
    [CAPABILITIES]: {
      sampling: {},
      extensions: { "io.modelcontextprotocol/tasks": {}, "io.modelcontextprotocol/skills": {} },
    },
  });
  const params = forModernBackend(session, { name: "echo", _meta: { progressToken: 7 } }, context);
  assert.deepEqual(params, {
    name: "echo",
    _meta: {
      progressToken: 7,
      "io.modelcontextprotocol/logLevel": "warning",
      [CAPABILITIES]: { sampling: {}, extensions: { "io.modelcontextprotocol/tasks": {} } },
    },
  });
});

Deno.test("forModernBackend() gives a 2025-era client's calls every log level unless it set one", () => {
  const session = new FrontSession("s", ANONYMOUS, { kind: "aggregate" }, "legacy");
  const level = (params: Record<string, unknown>) =>
    (params._meta as Record<string, unknown>)["io.modelcontextprotocol/logLevel"];
  assert.equal(level(forModernBackend(session, {}, fakeContext())), "debug");
  session.logLevel = "error";
  assert.equal(level(forModernBackend(session, {}, fakeContext())), "error");
});

Deno.test("relayModernNotification() relays log messages at or above the request's level only", async () => {
  const context = fakeContext({ "io.modelcontextprotocol/logLevel": "warning" });
  for (const level of ["debug", "info", "warning", "error"]) {
    await relayModernNotification(
      { method: "notifications/message", params: { level, data: level } },
      context,
    );
  }
  await relayModernNotification({
    method: "notifications/progress",
    params: { progress: 1, progressToken: 1 },
  }, context);
  assert.deepEqual(
    context.notified.map((notification) =>
      (notification as { params: { data?: string } }).params.data ?? "progress"
    ),
    ["warning", "error", "progress"],
  );
  const silent = fakeContext();
  await relayModernNotification({ method: "notifications/message", params: { level: "error" } }, silent);
  assert.deepEqual(silent.notified, [], "no level asked: no log messages");
});

Deno.test("relayAskingClient() asks a 2025-era client each input, then retries with answers and state", async () => {
  const sent: unknown[] = [];
  const asked: string[] = [];
  const result = await relayAskingClient(
    "wiki",
    { name: "book" },
    (params) => {
      sent.push(params);
      return Promise.resolve(
        sent.length === 1
          ? {
            resultType: "input_required",
            inputRequests: { when: { method: "elicitation/create", params: { message: "When?" } } },
            requestState: "opaque",
          }
          : { content: [{ type: "text", text: "booked" }] },
      );
    },
    (method) => {
      asked.push(method);
      return Promise.resolve({ action: "accept", content: { date: "today" } });
    },
  );
  assert.deepEqual(asked, ["elicitation/create"]);
  assert.deepEqual(sent[1], {
    name: "book",
    inputResponses: { when: { action: "accept", content: { date: "today" } } },
    requestState: "opaque",
  });
  assert.deepEqual(result, { content: [{ type: "text", text: "booked" }] });
});

Deno.test("relayAskingClient() gives up on a backend that keeps asking", async () => {
  let sends = 0;
  await assert.rejects(
    relayAskingClient(
      "wiki",
      {},
      () => {
        sends += 1;
        return Promise.resolve({ resultType: "input_required", inputRequests: {}, requestState: "again" });
      },
      () => Promise.resolve({}),
    ),
    (error: unknown) => error instanceof JsonRpcError && /kept asking/.test(error.message),
  );
  assert.equal(sends, MAX_INPUT_ROUNDS + 1);
});
