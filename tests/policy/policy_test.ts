import assert from "node:assert/strict";
import type { PolicyRule } from "../../src/config/types.ts";
import { type Decision, Policy, type PolicyObject, type PolicySubject } from "../../src/policy/policy.ts";

let nextLine = 1;

/** A rule as the loader resolves it, with the fields a test does not care about filled. */
function rule(
  fields: Pick<PolicyRule, "id" | "effect" | "subjects" | "backends"> & Partial<PolicyRule>,
): PolicyRule {
  return {
    description: undefined,
    tools: undefined,
    prompts: undefined,
    resources: undefined,
    readOnly: false,
    source: { file: "policies/test.yaml", line: nextLine++, col: 3 },
    ...fields,
  };
}

const allowed = (by: PolicyRule): Decision => ({ allowed: true, rule: by });
const deniedBy = (by: PolicyRule): Decision => ({ allowed: false, rule: by });
const DEFAULT_DENY: Decision = { allowed: false, rule: undefined };

/** The caller of the matrix: a user with two groups, through a client, signed in with a provider. */
const CALLER: PolicySubject = { id: "alice", groups: ["staff", "ops"], clientId: "app", provider: "corp" };

/** Each subject form: one that names the caller, and one of the same form that does not. */
const SUBJECTS = [
  { form: "*", matching: "*", other: undefined },
  { form: "user", matching: "user:alice", other: "user:bob" },
  { form: "group", matching: "group:ops", other: "group:interns" },
  { form: "client", matching: "client:app", other: "client:other-app" },
  { form: "provider", matching: "provider:corp", other: "provider:github" },
] as const;

/**
 * Each object kind: what a rule names to cover it, an object it covers (asked), and one of the same kind
 * it does not cover (missed). The backend is "wiki".
 */
const OBJECTS: {
  kind: string;
  covers: Partial<PolicyRule>;
  asked: PolicyObject;
  missed: PolicyObject;
}[] = [
  {
    kind: "tool",
    covers: { tools: ["search_*"] },
    asked: { kind: "tool", name: "search_web", readOnly: false },
    missed: { kind: "tool", name: "fetch_web", readOnly: false },
  },
  {
    kind: "prompt",
    covers: { prompts: ["summari?e"] },
    asked: { kind: "prompt", name: "summarize" },
    missed: { kind: "prompt", name: "search_web" },
  },
  {
    kind: "resource",
    covers: { resources: ["file:///srv/*"] },
    asked: { kind: "resource", uri: "file:///srv/notes/a.md" },
    missed: { kind: "resource", uri: "file:///etc/passwd" },
  },
  {
    kind: "read-only tool",
    covers: { tools: ["get_*"], readOnly: true },
    asked: { kind: "tool", name: "get_page", readOnly: true },
    missed: { kind: "tool", name: "get_page", readOnly: false },
  },
  {
    kind: "read-only tool, by read_only alone",
    covers: { readOnly: true },
    asked: { kind: "tool", name: "list_pages", readOnly: true },
    missed: { kind: "prompt", name: "list_pages" },
  },
  {
    kind: "whole backend",
    covers: {},
    asked: { kind: "prompt", name: "anything" },
    missed: { kind: "resource", uri: "mail://inbox" },
  },
];

for (const subject of SUBJECTS) {
  for (const object of OBJECTS) {
    const wholeBackend = object.kind === "whole backend";
    const target = (effect: "allow" | "deny", subjects: string[]) =>
      rule({ id: "target", effect, subjects, backends: ["wiki"], ...object.covers });

    Deno.test(`Policy allows by a ${subject.form} rule that covers a ${object.kind}`, () => {
      const allow = target("allow", [subject.matching]);
      const policy = new Policy([allow]);
      assert.deepEqual(policy.decide(CALLER, "wiki", object.asked), allowed(allow));
      // The backend can be used as soon as anything in it is allowed.
      assert.equal(policy.usesBackend(CALLER, "wiki"), true);
      assert.deepEqual(policy.decide(CALLER, "mail", object.asked), DEFAULT_DENY);
      assert.equal(policy.usesBackend(CALLER, "mail"), false);
      if (!wholeBackend) assert.deepEqual(policy.decide(CALLER, "wiki", object.missed), DEFAULT_DENY);
    });

    Deno.test(`Policy denies by a ${subject.form} rule that covers a ${object.kind}, over a later allow`, () => {
      const deny = target("deny", [subject.matching]);
      const base = rule({ id: "base", effect: "allow", subjects: ["*"], backends: ["*"] });
      const policy = new Policy([deny, base]);
      assert.deepEqual(policy.decide(CALLER, "wiki", object.asked), deniedBy(deny));
      // Only a deny of the whole backend hides it; a deny of some objects leaves the rest usable.
      assert.equal(policy.usesBackend(CALLER, "wiki"), !wholeBackend);
      assert.deepEqual(policy.decide(CALLER, "mail", object.asked), allowed(base));
      if (!wholeBackend) assert.deepEqual(policy.decide(CALLER, "wiki", object.missed), allowed(base));
    });

    Deno.test(`Policy denies by default when no ${subject.form} rule names the caller for a ${object.kind}`, () => {
      const rules = subject.other === undefined ? [] : [target("allow", [subject.other])];
      const policy = new Policy(rules);
      assert.deepEqual(policy.decide(CALLER, "wiki", object.asked), DEFAULT_DENY);
      assert.equal(policy.usesBackend(CALLER, "wiki"), false);
    });
  }
}

Deno.test("Policy.decide() lets deny override allow whatever their order, and reports the first deny", () => {
  const allowAll = rule({ id: "allow-all", effect: "allow", subjects: ["*"], backends: ["*"] });
  const denyTools = rule({
    id: "deny-tools",
    effect: "deny",
    subjects: ["group:ops"],
    backends: ["wiki"],
    tools: ["*"],
  });
  const denyAll = rule({ id: "deny-all", effect: "deny", subjects: ["user:alice"], backends: ["*"] });
  const tool: PolicyObject = { kind: "tool", name: "edit", readOnly: false };
  assert.deepEqual(new Policy([allowAll, denyTools]).decide(CALLER, "wiki", tool), deniedBy(denyTools));
  assert.deepEqual(new Policy([denyTools, allowAll]).decide(CALLER, "wiki", tool), deniedBy(denyTools));
  assert.deepEqual(
    new Policy([allowAll, denyAll, denyTools]).decide(CALLER, "wiki", tool),
    deniedBy(denyAll),
  );
  assert.deepEqual(
    new Policy([allowAll, denyTools, denyAll]).decide(CALLER, "wiki", tool),
    deniedBy(denyTools),
  );
  // A prompt is not a tool: only the whole-backend deny covers it.
  const prompt: PolicyObject = { kind: "prompt", name: "edit" };
  assert.deepEqual(new Policy([allowAll, denyTools]).decide(CALLER, "wiki", prompt), allowed(allowAll));
  assert.deepEqual(
    new Policy([allowAll, denyTools, denyAll]).decide(CALLER, "wiki", prompt),
    deniedBy(denyAll),
  );
});

Deno.test("Policy.decide() reports the first of several allows, in rule order", () => {
  const first = rule({
    id: "first",
    effect: "allow",
    subjects: ["group:staff"],
    backends: ["w*"],
    tools: ["edit"],
  });
  const second = rule({ id: "second", effect: "allow", subjects: ["*"], backends: ["wiki"] });
  const tool: PolicyObject = { kind: "tool", name: "edit", readOnly: false };
  assert.deepEqual(new Policy([first, second]).decide(CALLER, "wiki", tool), allowed(first));
  assert.deepEqual(new Policy([second, first]).decide(CALLER, "wiki", tool), allowed(second));
  // Where the first does not apply, the second decides.
  const other: PolicyObject = { kind: "tool", name: "delete", readOnly: false };
  assert.deepEqual(new Policy([first, second]).decide(CALLER, "wiki", other), allowed(second));
});

Deno.test("Policy.usesBackend() is refused by a whole-backend deny, wherever it is in the rules", () => {
  const allow = rule({ id: "allow", effect: "allow", subjects: ["*"], backends: ["*"] });
  const deny = rule({ id: "deny", effect: "deny", subjects: ["client:app"], backends: ["wiki"] });
  assert.equal(new Policy([allow, deny]).usesBackend(CALLER, "wiki"), false);
  assert.equal(new Policy([deny, allow]).usesBackend(CALLER, "wiki"), false);
  assert.equal(new Policy([deny, allow]).usesBackend(CALLER, "mail"), true);
  assert.equal(new Policy([deny, allow]).usesBackend({ ...CALLER, clientId: "cli" }, "wiki"), true);
});

Deno.test("Policy matches user: subjects on the user id, which is provider:login for upstream users", () => {
  const octocat = rule({
    id: "octocat",
    effect: "allow",
    subjects: ["user:github:octocat"],
    backends: ["*"],
  });
  const policy = new Policy([octocat]);
  const upstream: PolicySubject = {
    id: "github:octocat",
    groups: [],
    clientId: undefined,
    provider: "github",
  };
  const local: PolicySubject = { id: "octocat", groups: [], clientId: undefined, provider: undefined };
  assert.equal(policy.usesBackend(upstream, "wiki"), true);
  assert.equal(policy.usesBackend(local, "wiki"), false);
});

Deno.test("Policy answers each subject for itself when one policy serves many", () => {
  const staff = rule({ id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["wiki"] });
  const policy = new Policy([staff]);
  const prompt: PolicyObject = { kind: "prompt", name: "p" };
  const outsider: PolicySubject = { ...CALLER, groups: ["ops"] };
  for (let round = 0; round < 2; round++) {
    assert.deepEqual(policy.decide(CALLER, "wiki", prompt), allowed(staff));
    assert.deepEqual(policy.decide(outsider, "wiki", prompt), DEFAULT_DENY);
    assert.deepEqual(policy.decide({ ...CALLER, groups: ["ops", "staff"] }, "wiki", prompt), allowed(staff));
  }
});

Deno.test('Policy matches "*" for the anonymous user of auth: none, and nothing else for it', () => {
  const anyone = rule({ id: "anyone", effect: "allow", subjects: ["*"], backends: ["wiki"] });
  const named = rule({
    id: "named",
    effect: "allow",
    subjects: ["user:alice", "group:staff"],
    backends: ["mail"],
  });
  const anonymous: PolicySubject = { id: "anonymous", groups: [], clientId: undefined, provider: undefined };
  const policy = new Policy([anyone, named]);
  assert.equal(policy.usesBackend(anonymous, "wiki"), true);
  assert.equal(policy.usesBackend(anonymous, "mail"), false);
});

Deno.test("Policy matches backends by glob", () => {
  const globs = rule({ id: "globs", effect: "allow", subjects: ["*"], backends: ["wi*", "[mn]ail", "db-?"] });
  const policy = new Policy([globs]);
  const expected: [string, boolean][] = [
    ["wiki", true],
    ["wi", true],
    ["mail", true],
    ["nail", true],
    ["fail", false],
    ["db-1", true],
    ["db-12", false],
    ["awiki", false],
  ];
  for (const [backend, usable] of expected) {
    assert.equal(policy.usesBackend(CALLER, backend), usable, backend);
  }
});

Deno.test("Policy.readsAnnotations is true only when some rule has read_only", () => {
  const plain = rule({ id: "plain", effect: "allow", subjects: ["*"], backends: ["*"], tools: ["get_*"] });
  const readOnly = rule({ id: "ro", effect: "deny", subjects: ["*"], backends: ["*"], readOnly: true });
  assert.equal(new Policy([plain]).readsAnnotations, false);
  assert.equal(new Policy([plain, readOnly]).readsAnnotations, true);
});
