/**
 * Issue 14, hostile-input suite: one real gateway process takes well over 1,000 generated malformed
 * requests on every endpoint. Each gets its precise error (product.md §4, §5, §8), none a 500; the
 * process stays up, its memory returns near its baseline, and a bystander's open session keeps working
 * and hears nothing of the attacker's.
 */
import assert from "node:assert/strict";
import { type Answer, type Case, generateAttacks, MARKER, messagesIn } from "./_attacks.ts";
import {
  BACKEND,
  type HostileWorld,
  JSON_HEADERS,
  openSession,
  Prng,
  rawExchange,
  startHostileWorld,
  within,
} from "./_world.ts";

/** Replay a failing run with HOSTILE_SEED=<the seed in its messages>. */
const SEED = Number(Deno.env.get("HOSTILE_SEED") ?? 20_261_205);
const CONCURRENCY = 8;
/** Resident memory may grow this much over the storm and stay grown (caches, allocator slack). */
const RSS_ALLOWANCE_BYTES = 50 * 1024 * 1024;

/** Bob's session: a GET stream listening to everything the gateway sends him, and calls on demand. */
class Bystander {
  readonly received: string[] = [];
  readonly #url: string;
  readonly #headers: Record<string, string>;
  readonly #stream = new AbortController();
  readonly #listening: Promise<void>;
  #calls = 0;

  constructor(url: string, token: string, sessionId: string, opened: Response) {
    this.#url = url;
    this.#headers = {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    };
    this.#listening = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of opened.body!) this.received.push(decoder.decode(chunk, { stream: true }));
      } catch {
        // Aborted at the end of the test.
      }
    })();
  }

  static async open(url: string, token: string): Promise<Bystander> {
    const sessionId = await openSession(url, token);
    const stream = new AbortController();
    const opened = await fetch(url, {
      headers: {
        accept: "text/event-stream",
        authorization: `Bearer ${token}`,
        "mcp-session-id": sessionId,
        "mcp-protocol-version": "2025-11-25",
      },
      signal: stream.signal,
    });
    assert.equal(opened.status, 200, "bob's GET stream opens");
    const bystander = new Bystander(url, token, sessionId, opened);
    bystander.#stream.signal.addEventListener("abort", () => stream.abort());
    return bystander;
  }

  get sessionId(): string {
    return this.#headers["mcp-session-id"]!;
  }

  /** One echo call on bob's session; it must come back with bob's own message and nothing else. */
  async call(): Promise<void> {
    const id = ++this.#calls;
    const message = `bob-${id}`;
    const response = await fetch(this.#url, {
      method: "POST",
      headers: this.#headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: `${BACKEND}__echo`, arguments: { message } },
      }),
    });
    const answer = { status: response.status, headers: response.headers, text: await response.text() };
    assert.equal(answer.status, 200, `bob's call ${id}: ${answer.text}`);
    assert.ok(!answer.text.includes(MARKER), `bob's call ${id} carried the attacker's data: ${answer.text}`);
    const messages = messagesIn(answer);
    const result = messages.find((m) => m.id === id)?.result as { content?: { text?: string }[] } | undefined;
    assert.equal(result?.content?.[0]?.text, `${BACKEND}: ${message}`, answer.text);
  }

  async close(): Promise<void> {
    this.#stream.abort();
    await this.#listening;
  }
}

/** Runs the cases `CONCURRENCY` at a time; every failure is collected with its class, label and seed. */
async function storm(cases: readonly Case[], failures: string[], counts: Map<string, number>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < cases.length) {
      const item = cases[next++]!;
      counts.set(item.kind, (counts.get(item.kind) ?? 0) + 1);
      let answer: Answer | undefined;
      try {
        answer = await within(15_000, item.send(), `${item.kind} ${item.label}`);
        assert.notEqual(answer.status, 500, "a 500");
        item.check(answer);
      } catch (error) {
        failures.push(
          `[${item.kind}] ${item.label} (seed ${SEED}): ${(error as Error).message.slice(0, 400)}` +
            (answer ? ` — got ${answer.status} ${answer.text.slice(0, 200)}` : ""),
        );
      }
    }
  };
  await Promise.all(Array.from({ length: CONCURRENCY }, worker));
}

/** Slow clients: bodies and heads sent a byte or a line at a time, with pauses (bounded: ~2 s each). */
function slowClients(world: HostileWorld, aliceSession: string): Case[] {
  const url = new URL(world.base);
  const cases: Case[] = [];
  const head = (body: string, session: boolean) =>
    `POST /mcp HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${world.alice.token}\r\n` +
    `Content-Type: application/json\r\nAccept: application/json, text/event-stream\r\n` +
    (session ? `Mcp-Session-Id: ${aliceSession}\r\nMcp-Protocol-Version: 2025-11-25\r\n` : "") +
    `Content-Length: ${new TextEncoder().encode(body).length}\r\nConnection: close\r\n\r\n`;
  for (let index = 0; index < 6; index++) {
    const valid = index % 2 === 0;
    const body = valid
      ? JSON.stringify({ jsonrpc: "2.0", id: 900 + index, method: "ping" })
      : `{"${MARKER}": [1, 2,`;
    const byLine = index >= 4;
    const chunks = byLine
      ? [...head(body, valid).split(/(?<=\r\n)/), body]
      : [head(body, valid), ...body.split("")];
    cases.push({
      kind: "slow_client",
      label: `${byLine ? "head line by line" : "body byte by byte"}, ${valid ? "valid ping" : "broken JSON"}`,
      async send() {
        const answer = await rawExchange(world.base, chunks, { pauseMs: byLine ? 150 : 40, readMs: 10_000 });
        return { status: answer.status, headers: new Headers(), text: answer.text };
      },
      check(answer) {
        assert.equal(answer.status, valid ? 200 : 400, answer.text.slice(0, 300));
        if (valid) assert.ok(answer.text.includes(`"id":${900 + index}`), answer.text.slice(0, 300));
        else assert.ok(answer.text.includes('"code":-32700'), answer.text.slice(0, 300));
      },
    });
  }
  return cases;
}

/**
 * Clients that go away: mid-body, mid-call (a slow tool) and mid-stream (GET, and a call's SSE answer).
 * There is no answer to check: what counts is that the gateway carries on (checked after the storm).
 */
async function disconnects(world: HostileWorld, aliceSession: string, random: Prng): Promise<number> {
  const mcp = `${world.base}/mcp`;
  const url = new URL(world.base);
  const headers = {
    ...JSON_HEADERS,
    authorization: `Bearer ${world.alice.token}`,
    "mcp-session-id": aliceSession,
    "mcp-protocol-version": "2025-11-25",
  };
  const tasks: Promise<void>[] = [];
  for (let index = 0; index < 10; index++) {
    // Headers promise a body that never comes whole.
    const declared = 1_000 + random.int(50_000);
    const [path, type, start] = ([
      ["/mcp", "application/json", `{"jsonrpc":"2.0","id":1,"method":"${MARKER}`],
      ["/token", "application/x-www-form-urlencoded", `grant_type=client_credentials&client_id=${MARKER}`],
      ["/register", "application/json", `{"client_name":"${MARKER}`],
    ] as const)[index % 3]!;
    tasks.push(
      rawExchange(world.base, [
        `POST ${path} HTTP/1.1\r\nHost: ${url.host}\r\nAuthorization: Bearer ${world.alice.token}\r\nContent-Type: ${type}\r\nContent-Length: ${declared}\r\n\r\n`,
        start,
      ], { pauseMs: 20, closeAfterSend: true }).then(() => {}),
    );
  }
  const abortAfterHead = async (init: RequestInit, target = mcp) => {
    const controller = new AbortController();
    const response = await fetch(target, { ...init, signal: controller.signal });
    assert.equal(response.status, 200, `the stream to abandon opened (${response.status})`);
    const reader = response.body!.getReader();
    // Read the first event (the SSE priming event), then vanish.
    await reader.read();
    controller.abort();
    await reader.cancel().catch(() => {});
  };
  for (let index = 0; index < 10; index++) {
    // A slow tool call whose SSE answer the client abandons: the call is cancelled, the session lives on.
    tasks.push(abortAfterHead({
      method: "POST",
      headers,
      body: JSON.stringify({
        jsonrpc: "2.0",
        id: 1_000 + index,
        method: "tools/call",
        params: {
          name: `${BACKEND}__progress`,
          arguments: { steps: 5, intervalMs: 200 },
          _meta: { progressToken: `${MARKER}-${index}` },
        },
      }),
    }));
  }
  for (let index = 0; index < 5; index++) {
    // Alice's own GET stream, opened and dropped, again and again (each replaces the previous one).
    tasks.push(
      abortAfterHead({ headers: { ...headers, accept: "text/event-stream" } }).catch((error) => {
        // A second GET stream on one session is refused with 409 while another is open (MCP SDK).
        if (!String(error).includes("(409)")) throw error;
      }),
    );
  }
  for (let index = 0; index < 5; index++) {
    // A 2026-07-28 call abandoned mid-way: closing the response cancels the request.
    const controller = new AbortController();
    tasks.push((async () => {
      const pending = fetch(mcp, {
        method: "POST",
        signal: controller.signal,
        headers: {
          ...JSON_HEADERS,
          authorization: `Bearer ${world.alice.token}`,
          "mcp-protocol-version": "2026-07-28",
          "mcp-method": "tools/call",
          "mcp-name": `${BACKEND}__slow`,
        },
        body: JSON.stringify({
          jsonrpc: "2.0",
          id: 1_100 + index,
          method: "tools/call",
          params: {
            name: `${BACKEND}__slow`,
            arguments: { ms: 2_000 },
            _meta: {
              "io.modelcontextprotocol/protocolVersion": "2026-07-28",
              "io.modelcontextprotocol/clientInfo": { name: MARKER, version: "1" },
              "io.modelcontextprotocol/clientCapabilities": {},
            },
          },
        }),
      });
      setTimeout(() => controller.abort(), 100 + random.int(300));
      await pending.then((response) => response.body?.cancel()).catch(() => {});
    })());
  }
  await within(20_000, Promise.all(tasks), "disconnecting clients");
  return tasks.length;
}

Deno.test("gatehouse serve answers 1,000+ hostile requests precisely, stays up and keeps other users' sessions", async () => {
  const world = await startHostileWorld();
  const random = new Prng(SEED);
  const failures: string[] = [];
  const counts = new Map<string, number>();
  let bystander: Bystander | undefined;
  try {
    const mcp = `${world.base}/mcp`;
    bystander = await Bystander.open(mcp, world.bob.token);
    await bystander.call();
    const aliceSession = await openSession(mcp, world.alice.token);
    const cases = [
      ...await generateAttacks(world, { aliceSession, bobSession: bystander.sessionId }, random),
      ...slowClients(world, aliceSession),
    ];
    // Shuffled (Fisher-Yates, seeded), so that classes interleave as they would in a real storm.
    for (let index = cases.length - 1; index > 0; index--) {
      const other = random.int(index + 1);
      [cases[index], cases[other]] = [cases[other]!, cases[index]!];
    }
    const baselineRss = await world.rssBytes();

    // Bob keeps calling through the storm; every call must succeed with his own answer.
    let stormOver = false;
    const bobDuring = (async () => {
      let calls = 0;
      while (!stormOver) {
        await bystander!.call();
        calls++;
      }
      return calls;
    })();
    const started = performance.now();
    const [, disconnected] = await Promise.all([
      storm(cases, failures, counts),
      disconnects(world, aliceSession, random),
    ]);
    counts.set("disconnect", disconnected);
    stormOver = true;
    const bobCalls = await within(15_000, bobDuring, "bob's calls during the storm");
    const stormSeconds = (performance.now() - started) / 1000;

    const total = [...counts.values()].reduce((sum, count) => sum + count, 0);
    // The counts by class are the suite's report (issue 14 asks for them): printed, not asserted.
    // deno-lint-ignore no-console
    console.log(
      `hostile storm (seed ${SEED}): ${total} requests in ${
        stormSeconds.toFixed(1)
      } s, bob made ${bobCalls} calls\n` +
        [...counts].sort().map(([kind, count]) => `  ${kind}: ${count}`).join("\n"),
    );
    assert.deepEqual(failures, [], `${failures.length} of ${total} hostile requests got the wrong answer`);
    assert.ok(total >= 1_000, `only ${total} hostile requests`);
    assert.ok(bobCalls >= 1, "bob called during the storm");

    // The process is up and ready, serves bob, and alice's own session survived her abandoned streams.
    const health = await fetch(`${world.base}/healthz`);
    assert.deepEqual([health.status, await health.json()], [200, { status: "ok" }]);
    const ready = await fetch(`${world.base}/readyz`);
    assert.equal(ready.status, 200);
    await ready.body?.cancel();
    await bystander.call();
    const alicePing = await fetch(mcp, {
      method: "POST",
      headers: {
        ...JSON_HEADERS,
        authorization: `Bearer ${world.alice.token}`,
        "mcp-session-id": aliceSession,
        "mcp-protocol-version": "2025-11-25",
      },
      body: JSON.stringify({ jsonrpc: "2.0", id: "after", method: "ping" }),
    });
    assert.equal(alicePing.status, 200);
    await alicePing.body?.cancel();

    // Nothing of the attacker's reached bob's stream.
    await bystander.close();
    const heard = bystander.received.join("");
    assert.ok(
      !heard.includes(MARKER),
      `bob's GET stream carried the attacker's data: ${heard.slice(0, 500)}`,
    );

    // No request ended in an internal error, or an error the gateway did not expect.
    const errors = world.process.lines.filter((line) => line.includes('"level":"error"'));
    assert.deepEqual(errors, [], "the gateway logged errors");

    // Memory: back near the baseline once the storm is over (it is not forced; the allowance is generous).
    const limit = baselineRss + RSS_ALLOWANCE_BYTES;
    // V8 hands freed memory back once the process idles (its memory reducer): ~20 s after the storm here.
    let rss = await world.rssBytes();
    const deadline = Date.now() + 45_000;
    while (rss > limit && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 250));
      rss = await world.rssBytes();
    }
    // deno-lint-ignore no-console
    console.log(`gateway RSS: baseline ${mb(baselineRss)}, after the storm ${mb(rss)}`);
    assert.ok(rss <= limit, `RSS ${mb(rss)} is more than ${mb(RSS_ALLOWANCE_BYTES)} over ${mb(baselineRss)}`);
  } finally {
    await bystander?.close();
    await world.close();
  }
});

function mb(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}
