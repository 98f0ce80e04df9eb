/**
 * `/metrics`: Prometheus text that a strict reading of the exposition format accepts, counters that move
 * with traffic, and who may read it (loopback, or the bearer token; not a request a proxy forwarded).
 */
import assert from "node:assert/strict";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { misbehaving, registryWith, startTestGateway } from "../helpers/mcp_clients.ts";

interface Sample {
  readonly name: string;
  readonly labels: Record<string, string>;
  readonly value: number;
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;

/**
 * Reads the text exposition format (version 0.0.4) strictly: HELP and TYPE before a family's samples, each
 * sample `name{label="value",...} number`, histogram buckets cumulative and ending in `le="+Inf"` equal to
 * `_count`. Throws on anything else.
 */
function parseExposition(text: string): { types: Map<string, string>; samples: Sample[] } {
  assert.ok(text.endsWith("\n"), "ends with a newline");
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const line of text.slice(0, -1).split("\n")) {
    const comment = /^# (HELP|TYPE) (\S+) (.+)$/.exec(line);
    if (comment) {
      assert.match(comment[2]!, NAME, line);
      if (comment[1] === "TYPE") {
        assert.ok(["counter", "gauge", "histogram", "summary", "untyped"].includes(comment[3]!), line);
        assert.ok(!types.has(comment[2]!), `one TYPE per family: ${line}`);
        types.set(comment[2]!, comment[3]!);
      }
      continue;
    }
    const sample = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    assert.ok(sample, `a sample line: ${JSON.stringify(line)}`);
    const labels: Record<string, string> = {};
    if (sample[2]) {
      const pattern = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)/gy;
      let end = 0;
      for (const match of sample[2].matchAll(pattern)) {
        labels[match[1]!] = match[2]!.replace(/\\(.)/g, (_, char) => char === "n" ? "\n" : char);
        end = match.index! + match[0].length;
      }
      assert.equal(end, sample[2].length, `labels: ${line}`);
    }
    const value = sample[3] === "+Inf" ? Infinity : Number(sample[3]);
    assert.ok(!Number.isNaN(value), `a number: ${line}`);
    const family = sample[1]!.replace(/_(bucket|sum|count)$/, "");
    assert.ok(types.has(sample[1]!) || types.get(family) === "histogram", `TYPE before samples: ${line}`);
    samples.push({ name: sample[1]!, labels, value });
  }
  // Histograms: cumulative buckets, +Inf last and equal to _count.
  for (const [family, type] of types) {
    if (type !== "histogram") continue;
    const series = new Map<string, Sample[]>();
    for (const sample of samples.filter((s) => s.name === `${family}_bucket`)) {
      const { le: _le, ...rest } = sample.labels;
      const key = JSON.stringify(rest);
      series.set(key, [...(series.get(key) ?? []), sample]);
    }
    for (const [key, buckets] of series) {
      for (let index = 1; index < buckets.length; index++) {
        assert.ok(buckets[index]!.value >= buckets[index - 1]!.value, `cumulative buckets ${key}`);
      }
      assert.equal(buckets.at(-1)!.labels.le, "+Inf");
      const count = samples.find((s) => s.name === `${family}_count` && JSON.stringify(s.labels) === key);
      assert.equal(count?.value, buckets.at(-1)!.value, `+Inf bucket equals _count for ${key}`);
    }
  }
  return { types, samples };
}

const valueOf = (samples: Sample[], name: string, labels: Record<string, string> = {}) =>
  samples.filter((sample) =>
    sample.name === name && Object.entries(labels).every(([key, value]) => sample.labels[key] === value)
  ).reduce((sum, sample) => sum + sample.value, 0);

Deno.test("metrics: Prometheus text whose counters move with traffic", async () => {
  const gateway = await startTestGateway(registryWith({ mis: misbehaving("mis") }));
  try {
    const scrape = async () => {
      const response = await fetch(`${gateway.gateway.url}/metrics`);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /^text\/plain; version=0\.0\.4/);
      return parseExposition(await response.text());
    };
    const before = await scrape();
    assert.equal(before.types.get("gatehouse_mcp_request_duration_seconds"), "histogram");
    assert.equal(before.types.get("gatehouse_mcp_requests_total"), "counter");
    assert.equal(valueOf(before.samples, "gatehouse_mcp_requests_total"), 0);

    const client = new Client({ name: "metrics-test", version: "1.0.0" });
    await client.connect(new StreamableHTTPClientTransport(new URL(gateway.mcpUrl)));
    try {
      await client.listTools();
      for (let call = 0; call < 3; call++) {
        await client.callTool({ name: "mis__echo", arguments: { message: `m${call}` } });
      }
      const after = await scrape();
      assert.equal(
        valueOf(after.samples, "gatehouse_mcp_requests_total", {
          backend: "mis",
          method: "tools/call",
          outcome: "ok",
        }),
        3,
      );
      assert.equal(
        valueOf(after.samples, "gatehouse_mcp_request_duration_seconds_count", {
          backend: "mis",
          method: "tools/call",
        }),
        3,
      );
      assert.ok(valueOf(after.samples, "gatehouse_mcp_request_duration_seconds_sum", { backend: "mis" }) > 0);
      assert.equal(valueOf(after.samples, "gatehouse_backend_processes", { backend: "mis" }), 1);
      assert.equal(valueOf(after.samples, "gatehouse_backend_up", { backend: "mis" }), 1);
      assert.equal(valueOf(after.samples, "gatehouse_sessions", { era: "legacy" }), 1);

      // A reload that is rejected, then one that applies.
      await Deno.writeTextFile(`${gateway.dir}/registry.yaml`, "gateway: { nope: 1 }\n");
      assert.equal(await gateway.gateway.watcher!.reload(), false);
      await gateway.reload(registryWith({ mis: misbehaving("mis"), other: misbehaving("other") }));
      const reloaded = await scrape();
      assert.ok(valueOf(reloaded.samples, "gatehouse_registry_reloads_total", { outcome: "rejected" }) >= 1);
      assert.ok(valueOf(reloaded.samples, "gatehouse_registry_reloads_total", { outcome: "applied" }) >= 1);
    } finally {
      await client.close();
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("metrics: auth failures are counted; /metrics needs loopback or the bearer token", async () => {
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s", metrics_token: "metrics-token-for-tests" },
    backends: { mis: misbehaving("mis") },
  });
  try {
    const base = gateway.gateway.url;
    for (let attempt = 0; attempt < 2; attempt++) {
      const refused = await fetch(`${base}/mcp`, {
        method: "POST",
        headers: { authorization: "Bearer nope" },
      });
      assert.equal(refused.status, 401);
      await refused.body?.cancel();
    }
    const scraped = parseExposition(await (await fetch(`${base}/metrics`)).text());
    assert.equal(valueOf(scraped.samples, "gatehouse_auth_failures_total"), 2);

    // What a local reverse proxy forwards (not in trusted_proxies) is not local: it needs the token.
    const forwarded = await fetch(`${base}/metrics`, { headers: { "x-forwarded-for": "203.0.113.9" } });
    assert.equal(forwarded.status, 403);
    await forwarded.body?.cancel();
    const wrongToken = await fetch(`${base}/metrics`, {
      headers: { "x-forwarded-for": "203.0.113.9", authorization: "Bearer wrong" },
    });
    assert.equal(wrongToken.status, 403);
    await wrongToken.body?.cancel();
    const withToken = await fetch(`${base}/metrics`, {
      headers: { "x-forwarded-for": "203.0.113.9", authorization: "Bearer metrics-token-for-tests" },
    });
    assert.equal(withToken.status, 200);
    parseExposition(await withToken.text());
  } finally {
    await gateway.close();
  }
});

Deno.test("metrics: the exposition reader refuses what is not Prometheus text", () => {
  assert.throws(() => parseExposition("gatehouse_x 1\n"), /TYPE before samples/);
  assert.throws(() => parseExposition("# TYPE a counter\na{b=c} 1\n"), /sample line|labels/);
  assert.throws(() => parseExposition("# TYPE a counter\na one\n"), /a number/);
  assert.deepEqual(parseExposition('# TYPE a counter\na{b="x\\"y"} 2\n').samples, [
    { name: "a", labels: { b: 'x"y' }, value: 2 },
  ]);
});
