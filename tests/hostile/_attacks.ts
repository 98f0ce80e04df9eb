/**
 * The hostile-input suite's generated attacks, by class: each case is one request and the precise answer
 * the product contract (product.md §4, §5, §8) requires of it. Not a test file itself.
 */
import assert from "node:assert/strict";
import { JSONRPC } from "../../src/core/jsonrpc.ts";
import { base64url, importJWK, type JWK, SignJWT } from "jose";
import { join } from "node:path";
import {
  BACKEND,
  type HostileWorld,
  JSON_HEADERS,
  MAX_BODY_BYTES,
  type Prng,
  rawExchange,
  SERVICE,
} from "./_world.ts";

/** Every attacker payload carries this, so that a leak into the bystander's session can be seen. */
export const MARKER = "HOSTILE";

/** What came back for one case: the status, headers and body text (status 0: the socket was closed). */
export interface Answer {
  readonly status: number;
  readonly headers: Headers;
  readonly text: string;
}

export interface Case {
  /** Which class of attack, for the counts and for failure messages. */
  readonly kind: string;
  readonly label: string;
  send(): Promise<Answer>;
  check(answer: Answer): void;
}

/** The attacker's own state, made before the storm: a session of alice's and a session of bob's to steal. */
export interface Targets {
  readonly aliceSession: string;
  readonly bobSession: string;
}

async function fetchAnswer(url: string, init: RequestInit): Promise<Answer> {
  const response = await fetch(url, { ...init, redirect: "manual" });
  return { status: response.status, headers: response.headers, text: await response.text() };
}

async function rawAnswer(
  base: string,
  chunks: readonly (string | Uint8Array)[],
  pauseMs = 0,
): Promise<Answer> {
  const answer = await rawExchange(base, chunks, { pauseMs });
  return { status: answer.status, headers: new Headers(), text: answer.text };
}

/** The JSON-RPC messages of a body: one JSON document, or the `data:` lines of an SSE stream. */
export function messagesIn(answer: Answer): Record<string, unknown>[] {
  if (!(answer.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    return answer.text ? [JSON.parse(answer.text)].flat() : [];
  }
  return answer.text.split(/\r?\n\r?\n/).flatMap((event) => {
    const data = event.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5))
      .join("\n").trim();
    return data ? [JSON.parse(data)] : [];
  });
}

/** A JSON-RPC error answer, with HTTP `status` and error `code`; its id is null or `id`. */
function expectRpcError(answer: Answer, status: number, code: number, id: unknown = null): void {
  assert.equal(answer.status, status, answer.text.slice(0, 300));
  const messages = messagesIn(answer);
  assert.equal(messages.length, 1, answer.text.slice(0, 300));
  const message = messages[0] as {
    jsonrpc?: string;
    id?: unknown;
    error?: { code?: number; message?: string };
  };
  assert.equal(message.jsonrpc, "2.0");
  assert.equal(message.error?.code, code, answer.text.slice(0, 300));
  assert.equal(typeof message.error?.message, "string");
  // JSON-RPC 2.0 §5: null when the id could not be read, else the request's own id.
  assert.ok(message.id === null || message.id === id, `unexpected id in ${answer.text.slice(0, 300)}`);
}

/** An RFC 6749 §5.2-shaped error: `{error, error_description}` with `status`. */
function expectOAuthError(answer: Answer, status: number, error: string): void {
  assert.equal(answer.status, status, answer.text.slice(0, 300));
  const body = JSON.parse(answer.text) as { error?: string; error_description?: string };
  assert.equal(body.error, error, answer.text.slice(0, 300));
}

/** One of the gateway's HTML pages, with `status` and a title containing `title`. */
function expectPage(answer: Answer, status: number, title: string): void {
  assert.equal(answer.status, status, answer.text.slice(0, 300));
  assert.match(answer.headers.get("content-type") ?? "", /^text\/html/);
  assert.ok(
    answer.text.includes(`<title>${title}`),
    `expected the page "${title}": ${answer.text.slice(0, 300)}`,
  );
  assert.match(answer.headers.get("content-security-policy") ?? "", /frame-ancestors 'none'/);
}

/** RFC 6750 §3 / RFC 9728 §5.1: a 401 whose challenge points at the protected resource metadata. */
function expectChallenge(answer: Answer, base: string, path: string, invalidToken: boolean): void {
  expectRpcError(answer, 401, JSONRPC.authenticationRequired);
  const challenge = answer.headers.get("www-authenticate") ?? "";
  assert.ok(
    challenge.startsWith(`Bearer resource_metadata="${base}/.well-known/oauth-protected-resource${path}"`),
    `challenge: ${challenge}`,
  );
  assert.equal(challenge.includes('error="invalid_token"'), invalidToken, `challenge: ${challenge}`);
}

const initializeBody = (marker: string) =>
  JSON.stringify({
    jsonrpc: "2.0",
    id: 1,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: marker, version: "1" } },
  });

/** Generates every class of attack for `world`, deterministic for a given PRNG. */
export async function generateAttacks(world: HostileWorld, targets: Targets, random: Prng): Promise<Case[]> {
  const { base, alice, bob } = world;
  const mcp = `${base}/mcp`;
  const aliceAuth = { authorization: `Bearer ${alice.token}` };
  const inSession = {
    ...JSON_HEADERS,
    ...aliceAuth,
    "mcp-session-id": targets.aliceSession,
    "mcp-protocol-version": "2025-11-25",
  };
  const cases: Case[] = [];
  const add = (kind: string, label: string, send: () => Promise<Answer>, check: (answer: Answer) => void) =>
    cases.push({ kind, label, send, check });
  const post = (url: string, headers: Record<string, string>, body: BodyInit) => () =>
    fetchAnswer(url, { method: "POST", headers, body });
  const ping = (id: number | string) => JSON.stringify({ jsonrpc: "2.0", id, method: "ping" });
  const endpoints = [mcp, `${mcp}/${BACKEND}`];

  // Broken JSON (§8 "malformed JSON"): the parse fails before anything else, session or not: 400/-32700.
  const validBodies = [
    initializeBody(MARKER),
    JSON.stringify({
      jsonrpc: "2.0",
      id: 7,
      method: "tools/call",
      params: { name: "mis__echo", arguments: {} },
    }),
    JSON.stringify([{ jsonrpc: "2.0", id: 1, method: "ping" }, { jsonrpc: "2.0", method: "x" }]),
  ];
  for (let index = 0; index < 150; index++) {
    let body: string | Uint8Array<ArrayBuffer>;
    const style = index % 5;
    if (style === 0 || style === 1) {
      // A strict prefix of a JSON object or array is never a JSON document.
      const whole = random.pick(validBodies);
      body = whole.slice(0, random.int(whole.length));
    } else if (style === 2) {
      const whole = random.pick(validBodies);
      const at = random.int(whole.length);
      body = `${whole.slice(0, at)}${random.pick(["}", "{", "]", ",", ":", '"', "\\", "\u0000"])}${
        whole.slice(at)
      }`;
    } else if (style === 3) {
      body = random.bytes(8 + random.int(200));
    } else {
      // Invalid UTF-8 inside an otherwise valid request: decoded with U+FFFD, still not JSON once broken.
      body = Uint8Array.from([0x7b, 0xff, 0xfe, ...new TextEncoder().encode(ping(index).slice(1))]);
    }
    const text = typeof body === "string" ? body : new TextDecoder().decode(body);
    if (isJson(text)) continue; // e.g. a random "7": not broken JSON, not this class
    const headers = random.int(2) === 0 ? inSession : { ...JSON_HEADERS, ...aliceAuth };
    add("broken_json", `#${index}`, post(random.pick(endpoints), headers, body), (answer) => {
      expectRpcError(answer, 400, -32700);
    });
  }

  // Huge JSON under the size limit: deep nesting and long arrays are not JSON-RPC messages: 400/-32600.
  for (let index = 0; index < 30; index++) {
    const depth = 1_000 + random.int(30_000);
    const shape = index % 3;
    const body = shape === 0
      ? "[".repeat(depth) + "]".repeat(depth)
      : shape === 1
      ? '{"a":'.repeat(Math.min(depth, 10_000)) + "1" + "}".repeat(Math.min(depth, 10_000))
      : JSON.stringify(Array.from({ length: 2_000 + random.int(8_000) }, (_, i) => i));
    assert.ok(body.length <= MAX_BODY_BYTES);
    add("huge_json", `shape ${shape} #${index}`, post(random.pick(endpoints), inSession, body), (answer) => {
      expectRpcError(answer, 400, -32600);
    });
  }
  // ...and a huge valid call is served whole: the echo comes back with all of it.
  for (let index = 0; index < 10; index++) {
    const message = `${MARKER}-${random.ascii(20_000 + random.int(30_000))}`;
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id: 100 + index,
      method: "tools/call",
      params: { name: "mis__echo", arguments: { message } },
    });
    add("huge_json", `valid echo #${index}`, post(mcp, inSession, body), (answer) => {
      assert.equal(answer.status, 200);
      const [result] = messagesIn(answer).filter((m) => m.id === 100 + index);
      const content = (result?.result as { content?: { text?: string }[] } | undefined)?.content;
      assert.equal(content?.[0]?.text, `${BACKEND}: ${message}`);
    });
  }

  // Oversize bodies (gateway.max_body_size), declared or chunked, on every POST route: 413 before any route,
  // as a JSON-RPC error on the MCP endpoints.
  const postRoutes = ["/mcp", `/mcp/${BACKEND}`, "/token", "/register", "/revoke", "/introspect", "/login"];
  for (let index = 0; index < 42; index++) {
    const size = MAX_BODY_BYTES + 1 + random.int(index % 2 === 0 ? 1024 : 2 * 1024 * 1024);
    const chunked = index % 3 === 0;
    const route = postRoutes[index % postRoutes.length]!;
    const bytes = new Uint8Array(size).fill(0x61);
    add(
      "oversize_body",
      `${route} ${size} B${chunked ? " chunked" : ""}`,
      () =>
        fetchAnswer(`${base}${route}`, {
          method: "POST",
          headers: { ...JSON_HEADERS, ...aliceAuth },
          body: chunked ? new Blob([bytes]).stream() : bytes,
        }),
      (answer) => {
        if (route.startsWith("/mcp")) expectRpcError(answer, 413, JSONRPC.invalidRequest);
        else expectOAuthError(answer, 413, "payload_too_large");
      },
    );
  }

  // JSON-RPC messages of the wrong shape (§8 "JSON-RPC without id/method"), in a session: 400/-32600.
  const badShapes: [string, unknown, unknown][] = [
    ["no method", { jsonrpc: "2.0", id: 5 }, 5],
    ["no method, no id", { jsonrpc: "2.0" }, null],
    ["method not a string", { jsonrpc: "2.0", id: 6, method: 42 }, 6],
    ["method null", { jsonrpc: "2.0", id: 6, method: null }, 6],
    ["jsonrpc 1.0", { jsonrpc: "1.0", id: 7, method: "ping" }, 7],
    ["no jsonrpc", { id: 8, method: "ping" }, 8],
    ["id an object", { jsonrpc: "2.0", id: { a: 1 }, method: "ping" }, null],
    ["id an array", { jsonrpc: "2.0", id: [1], method: "ping" }, null],
    ["id a boolean", { jsonrpc: "2.0", id: true, method: "ping" }, null],
    ["params a string", { jsonrpc: "2.0", id: 9, method: "tools/call", params: "x" }, 9],
    ["params a number", { jsonrpc: "2.0", id: 9, method: "tools/list", params: 3 }, 9],
    ["result and error", { jsonrpc: "2.0", id: 10, result: {}, error: { code: 1, message: "x" } }, 10],
    ["top-level null", null, null],
    ["top-level number", 42, null],
    ["top-level string", MARKER, null],
    ["top-level true", true, null],
    ["empty object", {}, null],
  ];
  for (let index = 0; index < 102; index++) {
    const [label, body, id] = badShapes[index % badShapes.length]!;
    const withSession = index % 2 === 0;
    add(
      "jsonrpc_shape",
      `${label}${withSession ? " (session)" : ""}`,
      post(
        random.pick(endpoints),
        withSession ? inSession : { ...JSON_HEADERS, ...aliceAuth },
        JSON.stringify(body),
      ),
      (answer) => expectRpcError(answer, 400, -32600, id),
    );
  }
  // A notification (no id) is valid JSON-RPC: the Streamable HTTP transport accepts it with 202 and no body.
  for (let index = 0; index < 10; index++) {
    const body = JSON.stringify({
      jsonrpc: "2.0",
      method: random.pick(["notifications/cancelled", "tools/list"]),
    });
    add("jsonrpc_shape", "notification", post(mcp, inSession, body), (answer) => {
      assert.equal(answer.status, 202, answer.text);
      assert.equal(answer.text, "");
    });
  }
  // Without a session, anything but initialize needs one: 400/-32000 (MCP 2025-11-25 Streamable HTTP).
  for (let index = 0; index < 10; index++) {
    add(
      "jsonrpc_shape",
      "no session",
      post(random.pick(endpoints), { ...JSON_HEADERS, ...aliceAuth }, ping(index)),
      (answer) => expectRpcError(answer, 400, JSONRPC.transportRefused),
    );
  }
  // An unknown method is refused, never passed through (§4): -32601 with the request's id.
  for (let index = 0; index < 10; index++) {
    const method = `${MARKER.toLowerCase()}/${random.ascii(8)}`;
    const body = JSON.stringify({ jsonrpc: "2.0", id: 300 + index, method, params: {} });
    add("jsonrpc_shape", `unknown method ${method}`, post(mcp, inSession, body), (answer) => {
      assert.equal(answer.status, 200);
      const [message] = messagesIn(answer);
      assert.deepEqual((message as { id: unknown }).id, 300 + index);
      assert.equal((message as { error?: { code: number } }).error?.code, -32601);
    });
  }

  // Wrong types in params of known methods: -32602 from the gateway's router, never a 500 or a pass-through.
  const wrongParams: [string, Record<string, unknown>][] = [
    ["tools/call", { name: 123 }],
    ["tools/call", { name: null }],
    ["tools/call", { name: ["mis__echo"] }],
    ["tools/call", { name: { toString: "mis__echo" } }],
    ["tools/call", { name: `${MARKER}__nothing` }],
    ["tools/call", {}],
    ["resources/read", { uri: 5 }],
    ["resources/read", { uri: "" }],
    ["resources/read", { uri: `not a uri ${MARKER}` }],
    ["prompts/get", { name: { a: 1 } }],
    ["prompts/get", { name: `${MARKER}__p` }],
  ];
  for (let index = 0; index < 66; index++) {
    const [method, params] = wrongParams[index % wrongParams.length]!;
    const id = 400 + index;
    const body = JSON.stringify({ jsonrpc: "2.0", id, method, params });
    add("wrong_params", `${method} ${JSON.stringify(params)}`, post(mcp, inSession, body), (answer) => {
      // The transport validates the envelope (params an object): the answer is a JSON-RPC error with the id.
      assert.equal(answer.status, 200, answer.text.slice(0, 300));
      const [message] = messagesIn(answer);
      assert.equal((message as { id: unknown }).id, id, answer.text.slice(0, 300));
      assert.equal((message as { error?: { code: number } }).error?.code, -32602, answer.text.slice(0, 300));
    });
  }
  // A tool's arguments of the wrong type reach the backend, whose answer is an isError result (MCP tools).
  for (let index = 0; index < 10; index++) {
    const id = 500 + index;
    const argument = random.pick([5, null, [MARKER], { a: MARKER }, true]);
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "mis__echo", arguments: { message: argument } },
    });
    add("wrong_params", `echo message ${JSON.stringify(argument)}`, post(mcp, inSession, body), (answer) => {
      assert.equal(answer.status, 200);
      const [message] = messagesIn(answer);
      assert.equal((message as { id: unknown }).id, id);
      assert.equal((message as { result?: { isError?: boolean } }).result?.isError, true, answer.text);
    });
  }

  // Batches: empty, or holding a message that is not JSON-RPC, are refused whole: 400/-32600.
  for (let index = 0; index < 20; index++) {
    const batch = index % 4 === 0 ? [] : [
      { jsonrpc: "2.0", id: 1, method: "ping" },
      ...Array.from({ length: random.int(5) }, () => random.pick<unknown>([1, "x", null, [], { id: 2 }])),
      random.pick<unknown>([MARKER, 0, { jsonrpc: "2.0" }]),
    ];
    add(
      "batch",
      `batch of ${batch.length}`,
      post(random.pick(endpoints), inSession, JSON.stringify(batch)),
      (answer) => expectRpcError(answer, 400, -32600),
    );
  }
  // ...and a batch of valid pings gets one answer per request, each with its own id.
  for (let index = 0; index < 20; index++) {
    const ids = Array.from({ length: 2 + random.int(15) }, (_, i) => `b${index}-${i}`);
    const body = JSON.stringify(ids.map((id) => ({ jsonrpc: "2.0", id, method: "ping" })));
    add("batch", `${ids.length} pings`, post(mcp, inSession, body), (answer) => {
      assert.equal(answer.status, 200, answer.text.slice(0, 300));
      const answered = messagesIn(answer).filter((m) => "result" in m).map((m) => m.id);
      assert.deepEqual(answered.sort(), [...ids].sort());
    });
  }

  // Wrong Content-Type on /mcp: 415 (§8 "wrong content types"), whatever the body.
  const wrongTypes = [
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/xml",
    "application/jsonp",
    "application/json-patch+json",
    "text/json",
    "",
    "*/*",
    "application/javascript",
  ];
  for (let index = 0; index < 40; index++) {
    const type = wrongTypes[index % wrongTypes.length]!;
    const headers: Record<string, string> = { ...inSession, "content-type": type };
    if (type === "") delete headers["content-type"];
    add(
      "content_type",
      `/mcp "${type}"`,
      post(random.pick(endpoints), headers, ping(index)),
      (answer) => expectRpcError(answer, 415, -32700),
    );
  }
  // ...on the form endpoints (RFC 6749 §4.1.3, §5.2: invalid_request) and on /register (RFC 7591 §3.1, §3.2.2).
  for (let index = 0; index < 30; index++) {
    const route = ["/token", "/revoke", "/introspect", "/register"][index % 4]!;
    const type = random.pick([
      "application/json",
      "text/plain",
      "application/x-www-form-urlencodedx",
      "text/html",
    ]);
    const formRoute = route !== "/register";
    // The right type for the other kind of endpoint is the wrong one here.
    const sentType = formRoute
      ? type
      : type === "application/json"
      ? "application/x-www-form-urlencoded"
      : type;
    const body = formRoute ? "grant_type=client_credentials&token=x" : JSON.stringify({
      client_name: MARKER,
      redirect_uris: ["http://127.0.0.1:9/cb"],
      token_endpoint_auth_method: "none",
    });
    add(
      "content_type",
      `${route} "${sentType}"`,
      post(`${base}${route}`, { "content-type": sentType }, body),
      (answer) => expectOAuthError(answer, 400, formRoute ? "invalid_request" : "invalid_client_metadata"),
    );
  }

  // Accept headers that rule out one of the two answers the transport may give: 406/-32000.
  for (let index = 0; index < 30; index++) {
    const get = index % 3 === 0;
    const accept = get
      ? random.pick(["application/json", "text/html", "*/x"])
      : random.pick(["application/json", "text/event-stream", "text/html", "application/xml"]);
    add("accept", `${get ? "GET" : "POST"} accept "${accept}"`, () =>
      fetchAnswer(mcp, {
        method: get ? "GET" : "POST",
        headers: { ...inSession, accept },
        body: get ? undefined : ping(600 + index),
      }), (answer) => expectRpcError(answer, 406, -32000, 600 + index));
  }

  // Methods /mcp does not serve (MCP Streamable HTTP: POST, GET, DELETE): 405 with Allow.
  for (let index = 0; index < 10; index++) {
    const method = random.pick(["PUT", "PATCH", "HEAD"]);
    const withSession = index % 2 === 0;
    add(
      "http_method",
      `${method} /mcp${withSession ? " (session)" : ""}`,
      () =>
        fetchAnswer(random.pick(endpoints), {
          method,
          headers: withSession ? inSession : { ...JSON_HEADERS, ...aliceAuth },
          body: method === "HEAD" ? undefined : ping(1),
        }),
      (answer) => {
        assert.equal(answer.status, 405, answer.text.slice(0, 300));
        assert.equal(answer.headers.get("allow"), "GET, POST, DELETE");
      },
    );
  }

  // Oversize headers (one huge value, or too many) are refused by the HTTP layer: 431 or 400, never served.
  for (let index = 0; index < 20; index++) {
    const many = index % 2 === 0;
    const head = many
      ? Array.from({ length: 120 + random.int(400) }, (_, i) => `X-${MARKER}-${i}: ${random.ascii(8)}`).join(
        "\r\n",
      )
      : `X-${MARKER}: ${random.ascii(128 * 1024 + random.int(512 * 1024))}`;
    add(
      "oversize_header",
      many ? "many headers" : "huge header",
      () =>
        rawAnswer(base, [`POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n${head}\r\nContent-Length: 2\r\n\r\n{}`]),
      (answer) => assert.ok(answer.status === 431 || answer.status === 400, answer.text.slice(0, 200)),
    );
  }
  // A huge bearer token that still fits is read and refused as a token: 401 invalid_token.
  for (let index = 0; index < 10; index++) {
    const token = `${random.ascii(2_000 + random.int(14_000))}.${random.ascii(100)}.${random.ascii(100)}`;
    add(
      "bad_token",
      `huge token (${token.length} B)`,
      post(mcp, { ...JSON_HEADERS, authorization: `Bearer ${token}` }, ping(1)),
      (answer) => expectChallenge(answer, base, "/mcp", true),
    );
  }

  // CR, LF, NUL and other control bytes inside header values or the request line: 400 from the HTTP layer.
  const controls = ["\r", "\u0000", "\u0001", "\u0008", "\u000b", "\u000c", "\u001f", "\u007f"];
  for (let index = 0; index < 48; index++) {
    const control = controls[index % controls.length]!;
    const where = index % 3;
    const request = where === 0
      ? `POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${alice.token}\r\nMcp-Session-Id: ${targets.aliceSession}${control}${MARKER}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}`
      : where === 1
      ? `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-${MARKER}: a${control}b\r\n\r\n`
      : `GET /mcp${control}/x HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`;
    add(
      "crlf_nul_header",
      `${JSON.stringify(control)} in ${["mcp-session-id", "a header", "the path"][where]}`,
      () => rawAnswer(base, [request]),
      (answer) => assert.equal(answer.status, 400, answer.text.slice(0, 200)),
    );
  }
  // A Host that is not the gateway's is refused on /mcp (DNS rebinding): 403/-32600.
  for (let index = 0; index < 10; index++) {
    const host = random.pick([`${MARKER.toLowerCase()}.example`, "127.0.0.1.nip.io", "evil:8740", "[::2]"]);
    const body = ping(1);
    add("bad_host", host, () =>
      rawAnswer(base, [
        `POST /mcp HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer ${alice.token}\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: ${body.length}\r\nConnection: close\r\n\r\n${body}`,
      ]), (answer) => {
      assert.equal(answer.status, 403, answer.text.slice(0, 200));
      assert.ok(answer.text.includes('"code":-32600'));
    });
  }

  // Backend names: traversal, odd encodings, NUL, very long, prototype keys. Signed in: unknown backend,
  // 404 unknownBackend; signed out: the 401 comes first and says nothing of what exists.
  const names = [
    "..%2f",
    "..%2f..%2fetc%2fpasswd",
    "%2e%2e%2f%2e%2e",
    "%00",
    "mis%00",
    "%2fmis",
    "mis%2f..",
    "..%5c..%5cwindows",
    "%252e%252e%252f",
    "%c0%ae%c0%ae%2f",
    "%",
    "%zz",
    "%E0%A4%A",
    "__proto__",
    "constructor",
    "hasOwnProperty",
    "toString",
    "%20mis",
    "MIS",
    "mis%0d%0aX-Injected:%201",
  ];
  for (let index = 0; index < 90; index++) {
    const name = index < names.length * 2 ? names[index % names.length]! : random.pick([
      () => "a".repeat(256 + random.int(7_000)),
      () => encodeURIComponent(random.ascii(1 + random.int(40), "abc./\\%\u0000\r\n:?#@é")),
      () => `${random.ascii(4)}%2f${random.ascii(4)}`,
    ])();
    const url = new URL(`${mcp}/${name}`);
    // The client's URL parser may normalise dot segments away: what reaches the gateway is `url.pathname`.
    const segment = /^\/mcp\/([^/]+)$/.exec(url.pathname)?.[1];
    const signedIn = index % 2 === 0;
    add(
      "backend_name",
      `${signedIn ? "" : "signed out "}${name.slice(0, 40)}`,
      post(url.href, signedIn ? { ...JSON_HEADERS, ...aliceAuth } : JSON_HEADERS, ping(1)),
      (answer) => {
        if (segment === undefined) return expectOAuthError(answer, 404, "not_found");
        assert.notEqual(
          decodeURIComponentSafe(segment),
          BACKEND,
          "a spelling of the real backend is not hostile",
        );
        if (!signedIn) return expectRpcError(answer, 401, JSONRPC.authenticationRequired);
        expectRpcError(answer, 404, JSONRPC.unknownBackend);
      },
    );
    if (segment !== undefined && index % 3 === 0) {
      add(
        "backend_name",
        `metadata of ${name.slice(0, 40)}`,
        () => fetchAnswer(`${base}/.well-known/oauth-protected-resource/mcp/${name}`, {}),
        (answer) => expectOAuthError(answer, 404, "not_found"),
      );
    }
  }

  // Unknown and forged Mcp-Session-Id values, on every method: 404 sessionNotFound (§8 "unknown sessions (404)").
  for (let index = 0; index < 60; index++) {
    const forged = random.pick([
      () => crypto.randomUUID(),
      () => `${targets.aliceSession.slice(0, -1)}${targets.aliceSession.endsWith("0") ? "1" : "0"}`,
      () => random.ascii(1 + random.int(64)),
      () => "x".repeat(1_000 + random.int(7_000)),
      () => `${targets.aliceSession} `.repeat(2).trim(),
      () => `../${targets.aliceSession}`,
    ])();
    const method = random.pick(["POST", "GET", "DELETE"]);
    add("forged_session", `${method} ${forged.slice(0, 40)}`, () =>
      fetchAnswer(random.pick(endpoints), {
        method,
        headers: { ...inSession, "mcp-session-id": forged },
        body: method === "POST" ? ping(1) : undefined,
      }), (answer) => expectRpcError(answer, 404, JSONRPC.sessionNotFound));
  }
  // Bob's session id in alice's hands (or on another endpoint in bob's): as unknown as a made-up one. DELETE
  // included: bob's session must survive it (checked by the bystander).
  for (let index = 0; index < 30; index++) {
    const method = ["POST", "GET", "DELETE"][index % 3]!;
    const asBob = index % 5 === 4;
    add(
      "stolen_session",
      `${method} as ${asBob ? "bob on /mcp/mis" : "alice"}`,
      () =>
        fetchAnswer(asBob ? `${mcp}/${BACKEND}` : mcp, {
          method,
          headers: {
            ...JSON_HEADERS,
            authorization: `Bearer ${asBob ? bob.token : alice.token}`,
            "mcp-session-id": targets.bobSession,
            "mcp-protocol-version": "2025-11-25",
          },
          body: method === "POST"
            ? JSON.stringify({
              jsonrpc: "2.0",
              id: 1,
              method: "tools/call",
              params: { name: "mis__log", arguments: { message: MARKER } },
            })
            : undefined,
        }),
      (answer) => expectRpcError(answer, 404, JSONRPC.sessionNotFound),
    );
  }

  // Tokens with every broken part: 401 with the RFC 9728 challenge and error="invalid_token" (§5).
  cases.push(...await tokenAttacks(world, random));

  // Forged requestState (2026-07-28): a state the gateway never made is refused with -32602.
  const modernHeaders = {
    ...JSON_HEADERS,
    ...aliceAuth,
    "mcp-protocol-version": "2026-07-28",
    "mcp-method": "tools/call",
    "mcp-name": "mis__echo",
  };
  const envelope = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": { name: MARKER, version: "1" },
    "io.modelcontextprotocol/clientCapabilities": {},
  };
  for (let index = 0; index < 30; index++) {
    const forgedString = index % 2 === 0;
    const state = forgedString
      ? `gatehouse-parked:${random.pick([crypto.randomUUID(), random.ascii(200), ""])}`
      : random.pick<unknown>([42, null, true, { parked: MARKER }, ["gatehouse-parked:x"]]);
    const id = 700 + index;
    const body = JSON.stringify({
      jsonrpc: "2.0",
      id,
      method: "tools/call",
      params: { name: "mis__echo", arguments: { message: MARKER }, requestState: state, _meta: envelope },
    });
    add(
      "forged_request_state",
      JSON.stringify(state).slice(0, 40),
      post(mcp, modernHeaders, body),
      (answer) => {
        // A state that is not a string is a malformed request (400); a string the gateway never issued is
        // refused once the call is routed (200 with the JSON-RPC error), as the SDK answers stateless errors.
        expectRpcError(answer, forgedString ? 200 : 400, -32602, id);
      },
    );
  }

  // Forged consent-link tickets and forged service callbacks (§6): alice's browser is signed in.
  for (let index = 0; index < 40; index++) {
    const kind = index % 5;
    const ticket = random.pick([random.ascii(43), "", "x".repeat(4_000), `${MARKER}%00`]);
    const path = kind === 0
      ? `/connect/${SERVICE}?ticket=${ticket}`
      : kind === 1
      ? `/connect/${SERVICE}/callback?state=${random.ascii(32)}&code=${MARKER}`
      : kind === 2
      ? `/connect/${random.pick(["nope", "%00", "..%2f", "a".repeat(300)])}?ticket=${ticket}`
      : kind === 3
      ? `/connect/${SERVICE}?ticket=a&ticket=b`
      : `/connect/${SERVICE}/callback?code=x`;
    add("forged_ticket", path.slice(0, 60), async () => {
      const response = await alice.browser.fetch(`${base}${path}`);
      return { status: response.status, headers: response.headers, text: await response.text() };
    }, (answer) => expectPage(answer, 400, "Cannot"));
  }
  // The same links in a browser with no Gatehouse session: the sign-in page, nothing spent.
  for (let index = 0; index < 10; index++) {
    add(
      "forged_ticket",
      "signed out",
      () => fetchAnswer(`${base}/connect/${SERVICE}?ticket=${random.ascii(43)}`, {}),
      (answer) => expectPage(answer, 200, "Sign in"),
    );
  }

  // The OAuth endpoints with forged or broken input (§5): each its RFC's error.
  const form = { "content-type": "application/x-www-form-urlencoded" };
  for (let index = 0; index < 60; index++) {
    const kind = index % 10;
    const id = alice.clientId;
    const [route, body, status, error] = ([
      ["/token", `grant_type=client_credentials&client_id=${random.ascii(22)}`, 401, "invalid_client"],
      [
        "/token",
        `grant_type=authorization_code&client_id=${id}&code=${random.ascii(43)}&code_verifier=${
          random.ascii(43)
        }&redirect_uri=http%3A%2F%2F127.0.0.1%3A53682%2Fcallback`,
        400,
        "invalid_grant",
      ],
      [
        "/token",
        `grant_type=refresh_token&client_id=${id}&refresh_token=${random.ascii(43)}`,
        400,
        "invalid_grant",
      ],
      [
        "/token",
        `grant_type=refresh_token&grant_type=authorization_code&client_id=${id}`,
        400,
        "invalid_request",
      ],
      ["/token", `grant_type=${MARKER}&client_id=${id}`, 400, "unauthorized_client"],
      ["/revoke", `client_id=${id}`, 400, "invalid_request"],
      ["/introspect", `client_id=${id}&token=${random.ascii(20)}`, 401, "invalid_client"],
      [
        "/register",
        random.pick(["[]", "null", "42", `"${MARKER}"`, "{", ""]),
        400,
        "invalid_client_metadata",
      ],
      ["/register", JSON.stringify({ client_name: random.ascii(17_000) }), 400, "invalid_client_metadata"],
      [
        "/login",
        `return_to=${
          encodeURIComponent(random.pick(["https://evil.example/", "//evil", "/mcp", ""]))
        }&username=a&password=b`,
        400,
        "invalid_request",
      ],
    ] as const)[kind]!;
    const headers = route === "/register" ? { "content-type": "application/json" } : form;
    add(
      "oauth_forged",
      `${route} #${kind}`,
      post(`${base}${route}`, headers, body),
      (answer) => expectOAuthError(answer, status, error),
    );
  }
  for (let index = 0; index < 20; index++) {
    const kind = index % 4;
    add(
      "oauth_forged",
      `registration management / authorize #${kind}`,
      () =>
        kind === 0
          ? fetchAnswer(`${base}/register/${alice.clientId}`, {
            headers: { authorization: `Bearer ${random.ascii(43)}` },
          })
          : kind === 1
          ? fetchAnswer(`${base}/register/${random.ascii(22)}`, { method: "DELETE" })
          : kind === 2
          ? fetchAnswer(`${base}/authorize?client_id=${random.ascii(10)}&response_type=token`, {})
          : fetchAnswer(`${base}/authorize/consent`, {
            method: "POST",
            headers: form,
            body: `request=${random.ascii(20)}&csrf=x&decision=allow`,
          }),
      (answer) => {
        if (kind <= 1) return expectOAuthError(answer, 401, "invalid_token");
        if (kind === 2) return expectPage(answer, 400, "Cannot sign in");
        expectPage(answer, 403, "Cannot continue");
      },
    );
  }

  // Status, metrics and health with the wrong method, no session or a forwarded address (§7).
  for (let index = 0; index < 30; index++) {
    const kind = index % 6;
    add("other_endpoints", `#${kind}`, () => {
      switch (kind) {
        case 0:
          return fetchAnswer(`${base}/status.json`, {
            headers: { cookie: `gatehouse_session=${random.ascii(43)}` },
          });
        case 1:
          return fetchAnswer(`${base}/metrics`, {
            headers: { "x-forwarded-for": "203.0.113.7", authorization: `Bearer ${random.ascii(30)}` },
          });
        case 2:
          return fetchAnswer(`${base}/${random.pick(["healthz", "readyz", "metrics", "status"])}`, {
            method: "POST",
            body: MARKER,
          });
        case 3:
          return fetchAnswer(`${base}/connections`, {
            headers: { cookie: `gatehouse_session=${random.ascii(43)}` },
          });
        case 4:
          return fetchAnswer(
            `${base}/${random.pick(["..%2f..%2fetc%2fpasswd", "%00", "mcp%2f..%2fhealthz", ".git/config"])}`,
            {},
          );
        default:
          return fetchAnswer(`${base}/logout`, { method: "POST", headers: form, body: `csrf=${MARKER}` });
      }
    }, (answer) => {
      if (kind === 0) return expectOAuthError(answer, 401, "sign_in_required");
      if (kind === 1) return assert.equal(answer.status, 403);
      if (kind === 2 || kind === 4) return expectOAuthError(answer, 404, "not_found");
      if (kind === 3) return expectPage(answer, 200, "Sign in");
      // No session: nothing to end, so nothing to protect with the csrf token either.
      expectPage(answer, 200, "Signed out");
    });
  }
  return cases;
}

function isJson(text: string): boolean {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

function decodeURIComponentSafe(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}

/** Access tokens broken in every part, each sent to /mcp or /mcp/{backend}. */
async function tokenAttacks(world: HostileWorld, random: Prng): Promise<Case[]> {
  const { base, alice } = world;
  const privateJwk = JSON.parse(await Deno.readTextFile(join(world.dir, "data", "signing-key.json"))) as JWK;
  const realKey = await importJWK(privateJwk, "ES256");
  const realKid = JSON.parse(new TextDecoder().decode(base64url.decode(alice.token.split(".")[0]!)))
    .kid as string;
  const { privateKey: otherKey } = await crypto.subtle.generateKey(
    { name: "ECDSA", namedCurve: "P-256" },
    true,
    [
      "sign",
      "verify",
    ],
  ) as CryptoKeyPair;
  const now = Math.floor(Date.now() / 1000);
  const claims = (extra: Record<string, unknown> = {}) => ({
    iss: base,
    sub: "alice",
    aud: `${base}/mcp`,
    client_id: alice.clientId,
    scope: "mcp",
    name: "alice",
    groups: ["staff"],
    iat: now,
    exp: now + 600,
    jti: crypto.randomUUID(),
    ...extra,
  });
  const sign = (
    payload: Record<string, unknown>,
    header: Record<string, unknown> = {},
    key: CryptoKey | Uint8Array = realKey as CryptoKey,
  ) =>
    new SignJWT(payload).setProtectedHeader({ alg: "ES256", kid: realKid, typ: "at+jwt", ...header }).sign(
      key,
    );
  const encode = (value: unknown) => base64url.encode(new TextEncoder().encode(JSON.stringify(value)));
  const [head, body, signature] = alice.token.split(".") as [string, string, string];
  const flip = (text: string, at: number) =>
    `${text.slice(0, at)}${text[at] === "A" ? "B" : "A"}${text.slice(at + 1)}`;

  // Each maker returns a token that must fail; the good signature of one part never carries another.
  const makers: [string, () => Promise<string> | string][] = [
    ["bad base64 header", () => `${head.slice(0, 5)}*!${head.slice(7)}.${body}.${signature}`],
    ["bad base64 payload", () => `${head}.%%%${body}.${signature}`],
    ["two parts", () => `${head}.${body}`],
    ["four parts", () => `${alice.token}.${signature}`],
    ["empty parts", () => ".."],
    ["alg none", () => `${encode({ alg: "none", typ: "at+jwt" })}.${encode(claims())}.`],
    [
      "alg none, signature kept",
      () => `${encode({ alg: "none", typ: "at+jwt", kid: realKid })}.${body}.${signature}`,
    ],
    [
      "HS256 with the public key",
      () =>
        new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: realKid, typ: "at+jwt" }).sign(
          new TextEncoder().encode(JSON.stringify({ ...privateJwk, d: undefined })),
        ),
    ],
    ["wrong kid", () => sign(claims(), { kid: random.ascii(43) })],
    ["no kid, other key", () => sign(claims(), { kid: undefined }, otherKey)],
    ["right kid, other key", () => sign(claims(), {}, otherKey)],
    ["expired", () => sign(claims({ iat: now - 7200, exp: now - 3600 }))],
    ["not yet valid", () => sign(claims({ nbf: now + 3600 }))],
    ["wrong audience", () => sign(claims({ aud: `${base}/elsewhere` }))],
    ["audience of another backend", () => sign(claims({ aud: `${base}/mcp/${MARKER}` }))],
    ["wrong issuer", () => sign(claims({ iss: "https://evil.example" }))],
    ["wrong typ", () => sign(claims(), { typ: "JWT" })],
    ["no jti", () => sign(claims({ jti: undefined }))],
    ["truncated signature", () => alice.token.slice(0, alice.token.length - 1 - random.int(40))],
    ["flipped signature byte", () => `${head}.${body}.${flip(signature, random.int(signature.length))}`],
    [
      "payload swapped for bob's",
      () =>
        `${head}.${
          encode({ ...JSON.parse(new TextDecoder().decode(base64url.decode(body))), sub: "bob" })
        }.${signature}`,
    ],
    ["empty signature", () => `${head}.${body}.`],
  ];
  const cases: Case[] = [];
  for (let index = 0; index < 132; index++) {
    const [label, make] = makers[index % makers.length]!;
    const path = index % 4 === 3 ? `/mcp/${BACKEND}` : "/mcp";
    cases.push({
      kind: "bad_token",
      label,
      async send() {
        const token = await make();
        return await fetchAnswer(`${base}${path}`, {
          method: "POST",
          headers: { ...JSON_HEADERS, authorization: `Bearer ${token}` },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
        });
      },
      check: (answer) => expectChallenge(answer, base, path, true),
    });
  }
  // No bearer token at all, or another scheme: the bare challenge, with no error code (RFC 6750 §3.1).
  for (let index = 0; index < 12; index++) {
    const authorization = random.pick([
      undefined,
      "",
      "Bearer",
      `Basic ${btoa("alice:x")}`,
      `Token ${alice.token}`,
      "Bearer",
    ]);
    cases.push({
      kind: "bad_token",
      label: `authorization ${JSON.stringify(authorization)}`,
      send: () =>
        fetchAnswer(`${base}/mcp`, {
          method: "POST",
          headers: { ...JSON_HEADERS, ...(authorization === undefined ? {} : { authorization }) },
          body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "ping" }),
        }),
      check: (answer) => expectChallenge(answer, base, "/mcp", false),
    });
  }
  return cases;
}
