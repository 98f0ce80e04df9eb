/** Unit tests of resource URI canonicalisation and template matching. */
import assert from "node:assert/strict";
import { canonicalListedUri, canonicalResourceUri, templateMatcher } from "../../../src/mcp/relay/uri.ts";
import { JsonRpcError } from "../../../src/core/jsonrpc.ts";
import type { PolicyRule } from "../../../src/config/types.ts";
import { Policy } from "../../../src/policy/policy.ts";

Deno.test("canonicalResourceUri() gives every spelling of a URI one form", () => {
  for (
    const spelling of [
      "demo://x/doc.md",
      "DEMO://x/doc.md",
      "demo://x/./doc.md",
      "demo://x/a/../doc.md",
      "demo://x/%2e/doc.md",
      "demo://x/a/%2E%2e/doc.md",
      "  demo://x/doc.md\n",
      "demo://x:/doc.md",
    ]
  ) {
    assert.equal(canonicalResourceUri(spelling), "demo://x/doc.md", JSON.stringify(spelling));
  }
  // The authority is not a path segment: `..` cannot climb into another host.
  assert.equal(canonicalResourceUri("demo://y/../x/doc.md"), "demo://y/x/doc.md");
  assert.equal(canonicalResourceUri("file:///a/../b"), "file:///b");
  assert.equal(canonicalResourceUri("HTTP://EX.com:80/a/./b"), "http://ex.com/a/b");
});

Deno.test("canonicalResourceUri() refuses what does not parse with -32602", () => {
  for (const raw of ["not a uri", "", "://x", 42, undefined, null, { uri: "demo://x" }]) {
    assert.throws(
      () => canonicalResourceUri(raw),
      (error: unknown) => error instanceof JsonRpcError && error.code === -32602,
      JSON.stringify(raw),
    );
  }
});

Deno.test("canonicalListedUri() keeps what does not parse as listed", () => {
  assert.equal(canonicalListedUri("DEMO://x/./a"), "demo://x/a");
  assert.equal(canonicalListedUri("no uri"), "no uri");
});

Deno.test("templateMatcher() matches canonical URIs under the template only", () => {
  const items = templateMatcher("demo://x/items/{id}");
  assert.ok(items.test("demo://x/items/a"));
  assert.ok(items.test("demo://x/items/a/b"));
  assert.ok(!items.test("demo://x/items/"));
  assert.ok(!items.test("demo://x/doc.md"));
  // A dot segment is resolved before matching, so it cannot leave the prefix.
  assert.ok(!items.test(canonicalResourceUri("demo://x/items/../doc.md")));
  assert.ok(!items.test(canonicalResourceUri("demo://x/items/%2e%2e/doc.md")));
  assert.ok(!items.test("demo://x/items/a?x=1"));
  assert.ok(templateMatcher("demo://x/{a}.{ext}").test("demo://x/doc.md"));
});

Deno.test("Policy.decide() matches a rule's resource URI in its canonical form", () => {
  const rule = (resources: string[]) =>
    new Policy([
      {
        id: "r",
        description: undefined,
        effect: "deny",
        subjects: ["*"],
        backends: ["*"],
        tools: undefined,
        prompts: undefined,
        resources,
        readOnly: false,
        source: { file: "registry.yaml", line: 1, col: 1 },
      } satisfies PolicyRule,
    ]);
  const subject = { id: "alice", groups: [], clientId: undefined, provider: undefined };
  const object = { kind: "resource" as const, uri: canonicalResourceUri("demo://x/doc.md") };
  for (const written of ["DEMO://x/./doc.md", "demo://x:/doc.md", "Demo://x/*", "demo://x/doc.md"]) {
    assert.equal(rule([written]).decide(subject, "b", object).rule?.id, "r", written);
  }
  assert.equal(rule(["demo://x/other.md"]).decide(subject, "b", object).rule, undefined);
});
