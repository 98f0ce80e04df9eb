/**
 * Unit tests of the backend transports' environment: a stdio backend inherits what the SDK's own stdio
 * transport would give it, and nothing else of the gateway's environment.
 */
import assert from "node:assert/strict";
import { getDefaultEnvironment } from "@modelcontextprotocol/client/stdio";
import { inheritedEnvironment } from "../../src/mcp/backends/transports.ts";

/** Runs `body` with `values` in the environment (undefined: unset), then puts the environment back. */
function withEnv(values: Record<string, string | undefined>, body: () => void): void {
  const saved = Object.fromEntries(Object.keys(values).map((name) => [name, Deno.env.get(name)]));
  const apply = (entries: Record<string, string | undefined>) => {
    for (const [name, value] of Object.entries(entries)) {
      if (value === undefined) Deno.env.delete(name);
      else Deno.env.set(name, value);
    }
  };
  apply(values);
  try {
    body();
  } finally {
    apply(saved);
  }
}

const ENV = {
  HOME: "/home/gatehouse",
  USER: "gatehouse",
  LOGNAME: undefined,
  SHELL: "() { :; }; echo not a shell",
  TERM: "xterm",
  GATEHOUSE_TEST_SECRET: "not inherited",
};

Deno.test("inheritedEnvironment() picks what the SDK's getDefaultEnvironment() picks", () => {
  withEnv(ENV, () => assert.deepEqual(inheritedEnvironment(), getDefaultEnvironment()));
});

Deno.test("inheritedEnvironment() keeps a few safe variables, never a shell function or anything else", () => {
  withEnv(ENV, () => {
    const env = inheritedEnvironment();
    assert.equal(env.HOME, "/home/gatehouse");
    assert.equal(env.USER, "gatehouse");
    assert.equal(env.TERM, "xterm");
    assert.equal(env.PATH, Deno.env.get("PATH"));
    assert.equal("LOGNAME" in env, false);
    assert.equal("SHELL" in env, false);
    assert.equal("GATEHOUSE_TEST_SECRET" in env, false);
  });
});
