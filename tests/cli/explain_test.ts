import assert from "node:assert/strict";
import { join } from "node:path";
import { insertLocalUser } from "../../src/store/local_users.ts";
import { insertProviderAccount } from "../../src/store/provider_accounts.ts";
import { openStore } from "../../src/store/store.ts";
import { runGatehouse } from "../helpers/gatehouse_process.ts";

const HASH = "$argon2id$v=19$m=19456,t=2,p=1$ZmFrZXNhbHQ$ZmFrZWhhc2g";

/** Line N of the file is the N-th line here: the registry's one rule starts at 17:5. */
const REGISTRY = [
  "login:",
  "  users:",
  `    alice: { password_hash: "${HASH}", groups: [admin] }`,
  `    bob: { password_hash: "${HASH}" }`,
  "  providers:",
  "    github: { type: github, client_id: gatehouse, client_secret: not-a-real-secret, allow: { orgs: [acme] } }",
  "backends:",
  "  files:",
  "    stdio: { command: files-mcp }",
  "  search:",
  "    http: { url: https://search.example.test/mcp }",
  "  wiki:",
  "    http: { url: https://wiki.example.test/mcp }",
  "  vault:",
  "    http: { url: https://vault.example.test/mcp }",
  "policies:",
  "  - id: admins-everything",
  "    effect: allow",
  '    subjects: ["group:admin"]',
  '    backends: ["*"]',
].join("\n") + "\n";

/** Rule N starts at line N, column 3. */
const RULES = [
  '- { id: everyone-search, effect: allow, subjects: ["*"], backends: [search] }',
  '- { id: bob-reads-files, effect: allow, subjects: ["user:bob"], backends: [files], tools: ["read_*", list], read_only: true }',
  '- { id: ci-client, effect: allow, subjects: ["client:ci-bot"], backends: [files], tools: ["*"] }',
  '- { id: github-wiki, effect: allow, subjects: ["provider:github"], backends: [wiki], prompts: ["summarise*"], resources: ["wiki://pages/*"] }',
  '- { id: octocat-wiki, effect: allow, subjects: ["user:github:octocat"], backends: [wiki] }',
  '- { id: no-secret-pages, effect: deny, subjects: ["*"], backends: ["w?ki"], resources: ["wiki://pages/secret-[0-9]"] }',
  '- { id: staff-files, effect: allow, subjects: ["group:staff"], backends: [files] }',
  '- { id: no-admin-tools, effect: deny, subjects: ["*"], backends: ["*"], tools: ["*_admin"] }',
  '- { id: no-interns-files, effect: deny, subjects: ["group:interns"], backends: [files] }',
  '- { id: carol-files, effect: allow, subjects: ["user:carol"], backends: [files], tools: [file.read], prompts: ["[!x]*"], resources: ["file:///srv/a?.txt"] }',
].join("\n") + "\n";

/** The users the registry above knows: in login.users, or named by a user: subject. */
const KNOWN_USERS = new Set(["alice", "bob", "carol", "github:octocat"]);

const rule = (effect: "allow" | "deny", id: string, where: string) => `${effect}: rule ${id} (${where})\n`;
const inRules = (line: number) => `policies/10-rules.yaml:${line}:3`;
const DEFAULT_DENY = "deny: no rule allows it (nothing allowed means denied)\n";

interface AnswerCase {
  name: string;
  args: string[];
  stdout: string;
}

const answers: AnswerCase[] = [
  // Whether the backend may be used at all.
  {
    name: '"*" allows a backend to anyone, even a name no registry lists',
    args: ["--user", "nobody", "--backend", "search"],
    stdout: rule("allow", "everyone-search", inRules(1)),
  },
  {
    name: "a backend no rule names is denied by default",
    args: ["--user", "bob", "--backend", "vault"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a local user's groups in login.users count",
    args: ["--user", "alice", "--backend", "vault"],
    stdout: rule("allow", "admins-everything", "registry.yaml:17:5"),
  },
  {
    name: "--group counts for a user that is not local",
    args: ["--user", "dave", "--group", "admin", "--backend", "vault"],
    stdout: rule("allow", "admins-everything", "registry.yaml:17:5"),
  },
  {
    name: "a group the rules do not name changes nothing",
    args: ["--user", "dave", "--group", "staff", "--backend", "vault"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a whole-backend deny for one of several groups wins over an allow for another",
    args: ["--user", "dave", "--group", "staff", "--group", "interns", "--backend", "files"],
    stdout: rule("deny", "no-interns-files", inRules(9)),
  },
  {
    name: "an allow of some tools makes the backend usable",
    args: ["--user", "bob", "--backend", "files"],
    stdout: rule("allow", "bob-reads-files", inRules(2)),
  },
  {
    name: "a deny of some tools does not refuse the backend",
    args: ["--user", "dave", "--group", "staff", "--backend", "files"],
    stdout: rule("allow", "staff-files", inRules(7)),
  },
  {
    name: "a user named like an Object.prototype member is just a user",
    args: ["--user", "constructor", "--backend", "search"],
    stdout: rule("allow", "everyone-search", inRules(1)),
  },

  // Tools, read_only.
  {
    name: "a read_only rule allows a tool annotated readOnlyHint that its globs match",
    args: ["--user", "bob", "--backend", "files", "--tool", "read_notes", "--read-only"],
    stdout: rule("allow", "bob-reads-files", inRules(2)),
  },
  {
    name: "a read_only rule does not allow the same tool without the annotation",
    args: ["--user", "bob", "--backend", "files", "--tool", "read_notes"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a read_only rule does not allow a read-only tool its globs do not match",
    args: ["--user", "bob", "--backend", "files", "--tool", "write", "--read-only"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a client subject allows the tools of its rule",
    args: ["--user", "svc", "--client", "ci-bot", "--backend", "files", "--tool", "write"],
    stdout: rule("allow", "ci-client", inRules(3)),
  },
  {
    name: "another client is not that client",
    args: ["--user", "svc", "--client", "ci-bot-2", "--backend", "files", "--tool", "write"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a deny of tools overrides an earlier allow for the client",
    args: ["--user", "svc", "--client", "ci-bot", "--backend", "files", "--tool", "reset_admin"],
    stdout: rule("deny", "no-admin-tools", inRules(8)),
  },
  {
    name: "a deny of tools overrides an allow of everything for a group",
    args: ["--user", "alice", "--backend", "vault", "--tool", "purge_admin", "--read-only"],
    stdout: rule("deny", "no-admin-tools", inRules(8)),
  },
  {
    name: "a whole-backend allow covers any tool",
    args: ["--user", "alice", "--backend", "vault", "--tool", "purge"],
    stdout: rule("allow", "admins-everything", "registry.yaml:17:5"),
  },
  {
    name: "a dot in a tool glob is a literal dot",
    args: ["--user", "carol", "--backend", "files", "--tool", "file.read"],
    stdout: rule("allow", "carol-files", inRules(10)),
  },
  {
    name: "a dot in a tool glob matches no other character",
    args: ["--user", "carol", "--backend", "files", "--tool", "fileXread"],
    stdout: DEFAULT_DENY,
  },

  // Providers, prompts, resources.
  {
    name: "a provider subject matches a user whose id names the provider",
    args: ["--user", "github:someone", "--backend", "wiki", "--prompt", "summarise_page"],
    stdout: rule("allow", "github-wiki", inRules(4)),
  },
  {
    name: "--provider may say the same as the id",
    args: ["--user", "github:someone", "--provider", "github", "--backend", "wiki", "--prompt", "summarise"],
    stdout: rule("allow", "github-wiki", inRules(4)),
  },
  {
    name: "a prompt the provider's rule does not match is denied",
    args: ["--user", "github:someone", "--backend", "wiki", "--prompt", "translate"],
    stdout: DEFAULT_DENY,
  },
  {
    name: "a user: subject names an upstream user by provider:login",
    args: ["--user", "github:octocat", "--backend", "wiki", "--prompt", "translate"],
    stdout: rule("allow", "octocat-wiki", inRules(5)),
  },
  {
    name: "a resource URI matched by a glob with slashes",
    args: ["--user", "github:someone", "--backend", "wiki", "--resource", "wiki://pages/home"],
    stdout: rule("allow", "github-wiki", inRules(4)),
  },
  {
    name: "a resource deny with a backend glob and a character range overrides the allows",
    args: ["--user", "github:octocat", "--backend", "wiki", "--resource", "wiki://pages/secret-7"],
    stdout: rule("deny", "no-secret-pages", inRules(6)),
  },
  {
    name: "when two allows match, the first in registry order is reported",
    args: ["--user", "github:octocat", "--backend", "wiki", "--resource", "wiki://pages/secret-x"],
    stdout: rule("allow", "github-wiki", inRules(4)),
  },
  {
    name: "a resource outside every glob is denied",
    args: ["--user", "github:someone", "--backend", "wiki", "--resource", "wiki://drafts/home"],
    stdout: DEFAULT_DENY,
  },
  {
    name: '"?" in a resource glob matches one character',
    args: ["--user", "carol", "--backend", "files", "--resource", "file:///srv/ab.txt"],
    stdout: rule("allow", "carol-files", inRules(10)),
  },
  {
    name: '"?" in a resource glob matches no more than one character',
    args: ["--user", "carol", "--backend", "files", "--resource", "file:///srv/abc.txt"],
    stdout: DEFAULT_DENY,
  },
  {
    name: '"[!x]*" allows a prompt that does not start with x',
    args: ["--user", "carol", "--backend", "files", "--prompt", "hello"],
    stdout: rule("allow", "carol-files", inRules(10)),
  },
  {
    name: '"[!x]*" does not allow a prompt that starts with x',
    args: ["--user", "carol", "--backend", "files", "--prompt", "xray"],
    stdout: DEFAULT_DENY,
  },
];

interface MistakeCase {
  name: string;
  args: string[];
  stderr: RegExp;
}

const mistakes: MistakeCase[] = [
  {
    name: "without --user",
    args: ["--backend", "search"],
    stderr: /^gatehouse explain: --user is required\nRun "gatehouse explain --help" for usage\.\n$/,
  },
  { name: "without --backend", args: ["--user", "bob"], stderr: /--backend is required/ },
  {
    name: "with an empty --user",
    args: ["--user", "", "--backend", "search"],
    stderr: /--user must not be empty/,
  },
  {
    name: "with both --tool and --prompt",
    args: ["--user", "bob", "--backend", "files", "--tool", "t", "--prompt", "p"],
    stderr: /Give only one of --tool, --prompt and --resource/,
  },
  {
    name: "with both --prompt and --resource",
    args: ["--user", "bob", "--backend", "files", "--prompt", "p", "--resource", "file:///x"],
    stderr: /Give only one of --tool, --prompt and --resource/,
  },
  {
    name: "with --read-only but no --tool",
    args: ["--user", "bob", "--backend", "files", "--prompt", "p", "--read-only"],
    stderr: /--read-only needs --tool/,
  },
  {
    name: "with an unknown option",
    args: ["--user", "bob", "--backend", "files", "--method", "tools/call"],
    stderr: /Unknown option '--method'/,
  },
  {
    name: "with a backend the registry does not define",
    args: ["--user", "bob", "--backend", "serach"],
    stderr:
      /^gatehouse explain: unknown backend "serach": the registry defines "files", "search", "wiki", "vault"\n$/,
  },
  {
    name: "with a backend that only exists on Object.prototype",
    args: ["--user", "bob", "--backend", "constructor"],
    stderr: /unknown backend "constructor"/,
  },
  {
    name: "with a provider the registry does not define",
    args: ["--user", "gitlab:someone", "--provider", "gitlab", "--backend", "wiki"],
    stderr: /unknown provider "gitlab": the registry defines "github"/,
  },
  {
    name: "with a user id naming a provider the registry does not define",
    args: ["--user", "gitlab:someone", "--backend", "wiki"],
    stderr: /user "gitlab:someone" would sign in with provider "gitlab", which the registry does not define/,
  },
  {
    name: "with --provider for a user whose id does not name it",
    args: ["--user", "bob", "--provider", "github", "--backend", "wiki"],
    stderr:
      /user "bob" cannot have signed in with provider "github": its users' ids look like "github:LOGIN"/,
  },
  {
    name: "with a registry file that does not exist",
    args: ["--registry", "elsewhere.yaml", "--user", "bob", "--backend", "wiki"],
    stderr: /^elsewhere\.yaml: no such file\n$/,
  },
];

/** Runs at most `limit` of the tasks at once, keeping their order in the results. */
async function inBatches<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const results: T[] = new Array(tasks.length);
  let next = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const index = next++;
      results[index] = await tasks[index]!();
    }
  };
  await Promise.all(Array.from({ length: limit }, worker));
  return results;
}

async function withRegistry(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-explain-" });
  try {
    await Deno.mkdir(join(dir, "policies"));
    await Deno.writeTextFile(join(dir, "registry.yaml"), REGISTRY);
    await Deno.writeTextFile(join(dir, "policies", "10-rules.yaml"), RULES);
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("gatehouse explain prints allow or deny and the deciding rule, and exits 0", async (t) => {
  await withRegistry(async (dir) => {
    const runs = await inBatches(
      answers.map(({ args }) => () => runGatehouse(["explain", ...args], { cwd: dir })),
      6,
    );
    for (const [index, { name, args, stdout }] of answers.entries()) {
      await t.step(name, () => {
        const run = runs[index]!;
        // A user the registry does not know is answered for, with a warning on stderr.
        const user = args[args.indexOf("--user") + 1]!;
        if (KNOWN_USERS.has(user)) assert.equal(run.stderr, "");
        else {assert.ok(
            run.stderr.startsWith(`gatehouse explain: warning: user "${user}" is unknown: `),
            run.stderr,
          );}
        assert.equal(run.stdout, stdout);
        assert.equal(run.code, 0);
      });
    }
  });
});

Deno.test("gatehouse explain exits 1 on a mistake, saying what it is", async (t) => {
  await withRegistry(async (dir) => {
    const runs = await inBatches(
      mistakes.map(({ args }) => () => runGatehouse(["explain", ...args], { cwd: dir })),
      6,
    );
    for (const [index, { name, stderr }] of mistakes.entries()) {
      await t.step(name, () => {
        const run = runs[index]!;
        assert.equal(run.stdout, "");
        assert.match(run.stderr, stderr);
        assert.equal(run.code, 1);
      });
    }
  });
});

Deno.test("gatehouse explain --registry locates rules relative to the registry, from any directory", async () => {
  await withRegistry(async (dir) => {
    const { code, stdout } = await runGatehouse([
      "explain",
      "--registry",
      join(dir, "registry.yaml"),
      "--user",
      "svc",
      "--client",
      "ci-bot",
      "--backend",
      "files",
      "--tool",
      "reset_admin",
    ]);
    assert.equal(code, 0);
    assert.equal(stdout, rule("deny", "no-admin-tools", inRules(8)));
  });
});

Deno.test("gatehouse explain prints the problems of an invalid registry and exits 1", async () => {
  await withRegistry(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "policies", "20-broken.yaml"),
      '- { id: broken, effect: perhaps, subjects: ["*"], backends: [files] }\n',
    );
    const { code, stdout, stderr } = await runGatehouse(["explain", "--user", "bob", "--backend", "files"], {
      cwd: dir,
    });
    assert.equal(code, 1);
    assert.equal(stdout, "");
    assert.equal(
      stderr,
      'policies/20-broken.yaml:1:25: [0].effect: must be "allow" or "deny"\n',
    );
  });
});

Deno.test("gatehouse explain answers for a registry that only has warnings", async () => {
  await withRegistry(async (dir) => {
    await Deno.writeTextFile(
      join(dir, "policies", "20-old.yaml"),
      '- { id: old-backend, effect: allow, subjects: ["*"], backends: [files, retired] }\n',
    );
    const { code, stdout } = await runGatehouse(["explain", "--user", "eve", "--backend", "files"], {
      cwd: dir,
    });
    assert.equal(code, 0);
    assert.equal(stdout, rule("allow", "old-backend", "policies/20-old.yaml:1:3"));
  });
});

Deno.test("gatehouse explain warns of a user who exists nowhere, and not of one the registry or the store knows", async () => {
  await withRegistry(async (dir) => {
    const explainFor = (user: string) =>
      runGatehouse(["explain", "--user", user, "--backend", "search"], { cwd: dir });
    const answer = rule("allow", "everyone-search", inRules(1));
    const store = join(dir, "data", "gatehouse.db");

    const misspelt = await explainFor("alcie");
    assert.equal(misspelt.code, 0);
    assert.equal(misspelt.stdout, answer);
    assert.equal(
      misspelt.stderr,
      'gatehouse explain: warning: user "alcie" is unknown: not in login.users, named by no user: subject or ' +
        `client, and no store yet (${store}); did you mean "alice"?\n`,
    );
    assert.equal((await explainFor("alice")).stderr, "", "a local user");
    assert.equal((await explainFor("github:octocat")).stderr, "", "a user a rule names");
    assert.equal((await Array.fromAsync(Deno.readDir(dir))).some((entry) => entry.name === "data"), false);

    // The first-start admin and a provider account that signed in live in the store.
    const opened = openStore(join(dir, "data"));
    insertLocalUser(opened, { name: "admin", passwordHash: "$argon2id$x", groups: "[]", createdAt: 0 });
    insertProviderAccount(opened, { userId: "github:mona", accountId: "583231", firstSeen: 0 });
    opened.close();
    assert.equal((await explainFor("admin")).stderr, "", "the first-start admin");
    assert.equal((await explainFor("github:mona")).stderr, "", "a provider account");
    const stranger = await explainFor("github:nobody");
    assert.equal(stranger.stdout, answer);
    assert.equal(
      stranger.stderr,
      'gatehouse explain: warning: user "github:nobody" is unknown: not in login.users, named by no user: ' +
        `subject or client, and no account in the store (${store}); check the spelling\n`,
    );
  });
});
