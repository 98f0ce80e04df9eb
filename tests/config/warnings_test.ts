import assert from "node:assert/strict";
import { type ConfigProblem, formatWarning } from "../../src/config/errors.ts";
import { didYouMean } from "../../src/config/references.ts";
import { type Fixture, loadFixture, problem, problemsOf, yaml } from "./_helpers.ts";

/**
 * Registries that load, with the warnings they must bring. As in schema_errors_test.ts, each file is
 * written line by line, so that a warning at line N is the N-th argument of yaml(); columns are 1-based.
 * A rule's own position is where its mapping starts: the `{` of a flow mapping, the first key of a block.
 */
interface WarningCase extends Fixture {
  /** Completes "loadRegistry() warns of ..." (or "... warns of nothing for ..."). */
  name: string;
  expected: ConfigProblem[];
}

const SEARCH = ["backends:", "  search:", "    http: { url: https://search.example.test/mcp }"];
const TWO_BACKENDS = [
  "backends:",
  "  search:",
  "    http: { url: https://search.example.test/mcp }",
  "  files:",
  "    stdio: { command: files-mcp }",
];
const SHADOWED = (rule: string, by: string, at: string) =>
  `rule "${rule}" is shadowed by the earlier deny rule "${by}" (${at}), which covers everything it covers`;
const UNKNOWN = (name: string, closest?: string) =>
  `unknown backend "${name}": this entry matches nothing${closest ? `; did you mean "${closest}"?` : ""}`;
const NO_MATCH = (glob: string) => `backend glob "${glob}" matches no defined backend`;

const cases: WarningCase[] = [
  // Backends that rules and limits name.
  {
    name: "an unknown backend in a rule",
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "policies:",
        "  - id: searchers",
        "    effect: allow",
        '    subjects: ["*"]',
        "    backends: [search, serach]",
      ),
    },
    expected: [problem(8, 24, UNKNOWN("serach", "search"))],
  },
  {
    name: "an unknown backend in a limit",
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "limits:",
        '  - { subjects: ["*"], backends: [serach], requests_per_minute: 60 }',
      ),
    },
    expected: [problem(5, 35, UNKNOWN("serach", "search"))],
  },
  {
    // Backends are looked up as own keys: "constructor" is not a backend just because objects have one.
    name: "a rule naming a backend that only exists on Object.prototype",
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "policies:",
        '  - { id: proto, effect: allow, subjects: ["*"], backends: [constructor] }',
      ),
    },
    expected: [problem(5, 61, UNKNOWN("constructor"))],
  },
  {
    name: "an unknown backend in a policy file, at its position in that file",
    files: {
      "registry.yaml": yaml(...SEARCH),
      "policies/team.yaml": yaml(
        "policies:",
        '  - { id: team, effect: allow, subjects: ["group:team"], backends: [search] }',
        "limits:",
        '  - { subjects: ["group:team"], backends: [search, files], requests_per_minute: 60 }',
      ),
    },
    expected: [problem(4, 52, UNKNOWN("files"), "policies/team.yaml")],
  },
  {
    name: "a backend glob that matches no defined backend, in a rule and in a limit",
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "policies:",
        '  - { id: git, effect: allow, subjects: ["*"], backends: ["git*", "search"] }',
        "limits:",
        '  - { subjects: ["*"], backends: ["[!s]earch", "?"], requests_per_minute: 60 }',
      ),
    },
    expected: [
      problem(5, 59, NO_MATCH("git*")),
      problem(7, 35, NO_MATCH("[!s]earch")),
      problem(7, 48, NO_MATCH("?")),
    ],
  },
  {
    name: 'the glob "*" when no backend is defined',
    files: {
      "registry.yaml": yaml("policies:", '  - { id: all, effect: allow, subjects: ["*"], backends: ["*"] }'),
    },
    expected: [problem(2, 59, NO_MATCH("*"))],
  },
  {
    name: "nothing for backend globs that match a defined backend",
    files: {
      "registry.yaml": yaml(
        ...TWO_BACKENDS,
        "policies:",
        '  - { id: globs, effect: allow, subjects: ["*"], backends: ["*", "sea*", "?iles", "[fs]*", "[!x]earch"] }',
      ),
    },
    expected: [],
  },

  // Rules shadowed by an earlier deny.
  {
    name: "a rule after a deny of everything to everyone, in another file",
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "policies:",
        "  - id: lockdown",
        "    effect: deny",
        '    subjects: ["*"]',
        '    backends: ["*"]',
      ),
      "policies/a.yaml": yaml(
        '- { id: searchers, effect: allow, subjects: ["group:staff"], backends: [search], tools: [query] }',
        '- { id: no-files, effect: deny, subjects: ["user:bob"], backends: [search], prompts: ["*"] }',
      ),
    },
    expected: [
      problem(1, 3, SHADOWED("searchers", "lockdown", "registry.yaml:5:5"), "policies/a.yaml"),
      problem(2, 3, SHADOWED("no-files", "lockdown", "registry.yaml:5:5"), "policies/a.yaml"),
    ],
  },
  {
    name: 'a rule naming only tools after a deny of tools: ["*"], but not one that also names prompts',
    files: {
      "registry.yaml": yaml(...TWO_BACKENDS),
      "policies/a.yaml": yaml(
        '- { id: no-tools, effect: deny, subjects: ["*"], backends: ["*"], tools: ["*"] }',
        '- { id: some-tools, effect: allow, subjects: ["user:ann"], backends: [files], tools: [read, "w*"] }',
        '- { id: read-only, effect: allow, subjects: ["user:ann"], backends: [files], read_only: true }',
        '- { id: tools-and-prompts, effect: allow, subjects: ["*"], backends: [files], tools: [read], prompts: [p] }',
        '- { id: whole, effect: allow, subjects: ["*"], backends: [files] }',
      ),
    },
    expected: [
      problem(2, 3, SHADOWED("some-tools", "no-tools", "policies/a.yaml:1:3"), "policies/a.yaml"),
      problem(3, 3, SHADOWED("read-only", "no-tools", "policies/a.yaml:1:3"), "policies/a.yaml"),
    ],
  },
  {
    name: "a rule whose literal names an earlier deny's globs match, but not one with a glob of its own",
    files: {
      "registry.yaml": yaml(...TWO_BACKENDS),
      "policies/a.yaml": yaml(
        '- { id: no-admin, effect: deny, subjects: ["*"], backends: ["s*"], tools: ["*_admin", "drop_?"], resources: ["file:///etc/*"] }',
        '- { id: admin, effect: allow, subjects: ["*"], backends: [search], tools: [user_admin, drop_x] }',
        '- { id: passwd, effect: allow, subjects: ["*"], backends: [search], resources: ["file:///etc/passwd"] }',
        '- { id: glob-tool, effect: allow, subjects: ["*"], backends: [search], tools: ["x*_admin"] }',
        '- { id: glob-backend, effect: allow, subjects: ["*"], backends: ["se*"], tools: [user_admin] }',
        '- { id: other-tool, effect: allow, subjects: ["*"], backends: [search], tools: [drop_xy] }',
        '- { id: other-backend, effect: allow, subjects: ["*"], backends: [files], tools: [user_admin] }',
        '- { id: same-glob, effect: allow, subjects: ["*"], backends: ["s*"], tools: ["*_admin"] }',
      ),
    },
    expected: [
      problem(2, 3, SHADOWED("admin", "no-admin", "policies/a.yaml:1:3"), "policies/a.yaml"),
      problem(3, 3, SHADOWED("passwd", "no-admin", "policies/a.yaml:1:3"), "policies/a.yaml"),
      problem(8, 3, SHADOWED("same-glob", "no-admin", "policies/a.yaml:1:3"), "policies/a.yaml"),
    ],
  },
  {
    name: "a rule whose subjects an earlier deny lists, but not one with a subject of its own",
    files: {
      "registry.yaml": yaml(
        "login:",
        "  providers:",
        "    corp: { type: oidc, issuer: https://id.example.test, client_id: gatehouse, allow: {} }",
        ...TWO_BACKENDS,
      ),
      "policies/a.yaml": yaml(
        '- { id: no-interns, effect: deny, subjects: ["group:interns", "client:bot", "provider:corp"], backends: [files] }',
        '- { id: interns, effect: allow, subjects: ["group:interns"], backends: [files] }',
        '- { id: bot-and-corp, effect: allow, subjects: ["provider:corp", "client:bot"], backends: [files] }',
        '- { id: interns-and-ann, effect: allow, subjects: ["group:interns", "user:ann"], backends: [files] }',
        '- { id: anyone, effect: allow, subjects: ["*"], backends: [files] }',
        '- { id: other-group, effect: allow, subjects: ["group:intern"], backends: [files] }',
      ),
    },
    expected: [
      problem(2, 3, SHADOWED("interns", "no-interns", "policies/a.yaml:1:3"), "policies/a.yaml"),
      problem(3, 3, SHADOWED("bot-and-corp", "no-interns", "policies/a.yaml:1:3"), "policies/a.yaml"),
    ],
  },
  {
    name: "nothing for a rule covered by an earlier allow, or by a later deny",
    files: {
      "registry.yaml": yaml(
        ...TWO_BACKENDS,
        "policies:",
        '  - { id: allow-all, effect: allow, subjects: ["*"], backends: ["*"] }',
        '  - { id: ann, effect: allow, subjects: ["user:ann"], backends: [files] }',
        '  - { id: deny-all, effect: deny, subjects: ["*"], backends: ["*"] }',
      ),
    },
    expected: [],
  },
  {
    name: "a read_only rule after a read_only deny, but not a rule covering other tools",
    files: {
      "registry.yaml": yaml(...TWO_BACKENDS),
      "policies/a.yaml": yaml(
        '- { id: no-reads, effect: deny, subjects: ["*"], backends: [files], read_only: true }',
        '- { id: read, effect: allow, subjects: ["*"], backends: [files], tools: [cat], read_only: true }',
        '- { id: write, effect: allow, subjects: ["*"], backends: [files], tools: [cat] }',
        '- { id: prompt, effect: allow, subjects: ["*"], backends: [files], prompts: [p] }',
      ),
    },
    expected: [problem(2, 3, SHADOWED("read", "no-reads", "policies/a.yaml:1:3"), "policies/a.yaml")],
  },
  {
    name: "a rule covered by two earlier denies once, naming the first",
    files: {
      "registry.yaml": yaml(...TWO_BACKENDS),
      "policies/a.yaml": yaml(
        '- { id: first, effect: deny, subjects: ["*"], backends: [files], prompts: ["*"] }',
        '- { id: second, effect: deny, subjects: ["*"], backends: ["*"], prompts: ["*"] }',
        '- { id: later, effect: allow, subjects: ["user:ann"], backends: [files], prompts: [greet] }',
      ),
    },
    expected: [
      problem(3, 3, SHADOWED("later", "first", "policies/a.yaml:1:3"), "policies/a.yaml"),
    ],
  },
  {
    name: "rules in registry order: registry.yaml first, then policy files by name",
    files: {
      "registry.yaml": yaml(
        ...TWO_BACKENDS,
        "policies:",
        '  - { id: inline, effect: allow, subjects: ["*"], backends: [files] }',
      ),
      "policies/b.yaml": yaml('- { id: b, effect: allow, subjects: ["*"], backends: [files] }'),
      "policies/a.yaml": yaml('- { id: a, effect: deny, subjects: ["*"], backends: [files] }'),
    },
    expected: [problem(1, 3, SHADOWED("b", "a", "policies/a.yaml:1:3"), "policies/b.yaml")],
  },
];

for (const { name, expected, ...fixture } of cases) {
  Deno.test(`loadRegistry() warns of ${name}`, async () => {
    const result = await loadFixture(fixture);
    if (!result.ok) assert.fail(`expected the registry to load, got ${JSON.stringify(result.problems)}`);
    assert.deepEqual(result.warnings, expected);
  });
}

Deno.test("loadRegistry() reports backend warnings with the problems of a rejected registry", async () => {
  const result = await loadFixture({
    files: {
      "registry.yaml": yaml(
        ...SEARCH,
        "policies:",
        '  - { id: a, effect: deny, subjects: ["*"], backends: ["*"] }',
        '  - { id: b, effect: maybe, subjects: ["*"], backends: [serach] }',
      ),
    },
  });
  if (result.ok) assert.fail("expected the registry to be rejected");
  assert.deepEqual(result.problems, [
    problem(6, 22, 'policies[1].effect: must be "allow" or "deny"'),
  ]);
  // Shadowing needs valid rules, so only what references find is reported.
  assert.deepEqual(result.warnings, [problem(6, 57, UNKNOWN("serach", "search"))]);
});

Deno.test("formatWarning() writes file:line:col: warning: message", () => {
  assert.equal(
    formatWarning(problem(4, 52, UNKNOWN("files"), "policies/team.yaml")),
    'policies/team.yaml:4:52: warning: unknown backend "files": this entry matches nothing',
  );
});

Deno.test("didYouMean() suggests the closest name only when it is a likely misspelling", () => {
  const backends = ["everything", "search", "files"];
  assert.equal(didYouMean("everythng", backends), '; did you mean "everything"?');
  assert.equal(didYouMean("Serach", backends), '; did you mean "search"?');
  assert.equal(didYouMean("fils", backends), '; did you mean "files"?');
  assert.equal(didYouMean("old-api", backends), "");
  assert.equal(didYouMean("x", backends), "");
  assert.equal(didYouMean("search", []), "");
  assert.equal(didYouMean("crop", ["corp"]), '; did you mean "corp"?', "a swap of two letters is one edit");
});

Deno.test("loadRegistry() suggests the service or provider a misspelled reference means", async () => {
  const problems = await problemsOf({
    files: {
      "registry.yaml": yaml(
        "login:",
        "  providers:",
        "    corp: { type: oidc, issuer: https://id.example.test, client_id: gh, allow: { groups: [staff] } }",
        "services:",
        "  github: { issuer: https://github.example.test, client_id: gh }",
        "backends:",
        '  gh: { http: { url: https://gh.example.test/mcp, headers: { Authorization: "${service:gihtub}" } } }',
        "policies:",
        '  - { id: staff, effect: allow, subjects: ["provider:crop"], backends: [gh] }',
      ),
    },
  });
  assert.deepEqual(problems.map((problem) => problem.message), [
    'unknown service "gihtub": did you mean "github"?',
    'unknown provider "crop" in subject; did you mean "corp"?',
  ]);
});
