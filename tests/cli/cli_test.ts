import assert from "node:assert/strict";
import { join } from "node:path";
import { COMMANDS } from "../../src/cli/main.ts";
import { verifyPassword } from "../../src/login/password.ts";
import { VERSION } from "../../src/version.ts";
import { ROOT, runGatehouse, startTaskFlags } from "../helpers/gatehouse_process.ts";

Deno.test("gatehouse version prints the version and exits 0", async () => {
  const { code, stdout } = await runGatehouse(["version"]);
  assert.equal(code, 0);
  assert.match(stdout, new RegExp(`^gatehouse ${VERSION.replaceAll(".", "\\.")} \\(deno `));
});

Deno.test("gatehouse --help lists every command", async () => {
  const { code, stdout } = await runGatehouse(["--help"]);
  assert.equal(code, 0);
  for (const command of COMMANDS) {
    assert.ok(
      stdout.split("\n").some((line) =>
        line.startsWith(`  ${command.name} `) && line.endsWith(command.summary)
      ),
    );
  }
});

Deno.test("gatehouse <command> --help prints that command's usage and exits 0", async () => {
  for (const command of COMMANDS) {
    const { code, stdout } = await runGatehouse([command.name, "--help"]);
    assert.equal(code, 0, command.name);
    assert.match(stdout, new RegExp(`^Usage: gatehouse ${command.name}`), command.name);
  }
});

Deno.test("gatehouse rejects an unknown command or option with exit 1", async () => {
  const unknown = await runGatehouse(["frobnicate"]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /unknown command 'frobnicate'/);
  const option = await runGatehouse(["version", "--bogus"]);
  assert.equal(option.code, 1);
  assert.match(option.stderr, /gatehouse version: Unknown option '--bogus'/);
  assert.match(option.stderr, /Run "gatehouse version --help"/);
});

Deno.test("gatehouse check accepts the example registry", async () => {
  const { code, stdout } = await runGatehouse(["check", "registry.yaml"]);
  assert.equal(code, 0);
  assert.match(
    stdout,
    /^registry\.yaml: ok \(1 backend, 0 services, \d+ rules?, \d+ limits?, \d+ policy files?\)/,
  );
});

Deno.test("gatehouse check prints every problem as file:line:col, exits 1 and writes nothing", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-check-" });
  try {
    await Deno.mkdir(join(dir, "policies"));
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      [
        "gateway:",
        "  listen: 127.0.0.1:99999",
        "  colour: blue",
        "backends:",
        "  api:",
        "    http: { url: http://127.0.0.1:9/mcp, headers: { Authorization: 'Bearer ${service:nope}' } }",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "policies", "bad.yaml"),
      "- { id: r, effect: perhaps, subjects: ['*'], backends: [api] }\n",
    );
    const { code, stderr } = await runGatehouse(["check", "registry.yaml"], { cwd: dir });
    assert.equal(code, 1);
    const lines = stderr.trim().split("\n");
    assert.deepEqual(lines, [
      'policies/bad.yaml:1:20: [0].effect: must be "allow" or "deny"',
      "registry.yaml:2:11: gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740",
      'registry.yaml:3:3: gateway: unknown key "colour"',
      'registry.yaml:6:68: unknown service "nope": define it under services:',
      "4 problems found",
    ]);
    const entries = [...Deno.readDirSync(dir)].map((entry) => entry.name).sort();
    assert.deepEqual(entries, ["policies", "registry.yaml"], "check creates no data dir");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse check prints warnings as file:line:col: warning: and exits 0 when there are only warnings", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-check-" });
  try {
    await Deno.mkdir(join(dir, "policies"));
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      [
        "backends:",
        "  api:",
        "    http: { url: http://127.0.0.1:9/mcp }",
        "policies:",
        "  - { id: nobody, effect: deny, subjects: ['*'], backends: ['*'] }",
      ].join("\n"),
    );
    await Deno.writeTextFile(
      join(dir, "policies", "team.yaml"),
      "- { id: team, effect: allow, subjects: ['group:team'], backends: [api, old-api, 'v2-*'] }\n",
    );
    const { code, stdout, stderr } = await runGatehouse(["check", "registry.yaml"], { cwd: dir });
    assert.equal(code, 0);
    assert.deepEqual(stderr.trim().split("\n"), [
      'policies/team.yaml:1:3: warning: rule "team" is shadowed by the earlier deny rule "nobody" ' +
      "(registry.yaml:5:5), which covers everything it covers",
      'policies/team.yaml:1:72: warning: unknown backend "old-api": this entry matches nothing',
      'policies/team.yaml:1:81: warning: backend glob "v2-*" matches no defined backend',
    ]);
    assert.equal(
      stdout,
      "registry.yaml: ok (1 backend, 0 services, 2 rules, 0 limits, 1 policy file, 3 warnings)\n",
    );

    // With a problem as well, the warnings are printed among the problems, by position, and counted.
    await Deno.writeTextFile(
      join(dir, "policies", "team.yaml"),
      "- { id: team, effect: allow, subjects: ['group:team'], backends: [old-api], tools: 7 }\n",
    );
    const rejected = await runGatehouse(["check", "registry.yaml"], { cwd: dir });
    assert.equal(rejected.code, 1);
    assert.equal(rejected.stdout, "");
    assert.deepEqual(rejected.stderr.trim().split("\n"), [
      'policies/team.yaml:1:67: warning: unknown backend "old-api": this entry matches nothing',
      "policies/team.yaml:1:84: [0].tools: expected a list, not a number",
      "1 problem and 1 warning found",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse check suggests the backend a rule misspells, and fails on it with --strict", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-check-" });
  try {
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      [
        "backends:",
        "  everything: { http: { url: http://127.0.0.1:9/mcp } }",
        "policies:",
        "  - { id: all, effect: allow, subjects: ['*'], backends: [everythng] }",
      ].join("\n"),
    );
    const warning = 'registry.yaml:4:59: warning: unknown backend "everythng": this entry matches nothing; ' +
      'did you mean "everything"?';
    const lenient = await runGatehouse(["check", "registry.yaml"], { cwd: dir });
    assert.equal(lenient.code, 0);
    assert.equal(lenient.stderr, `${warning}\n`);
    assert.match(lenient.stdout, /^registry\.yaml: ok \(.*, 1 warning\)\n$/);

    const strict = await runGatehouse(["check", "--strict", "registry.yaml"], { cwd: dir });
    assert.equal(strict.code, 1);
    assert.equal(strict.stdout, "");
    assert.deepEqual(strict.stderr.trim().split("\n"), [
      warning,
      "1 warning found; --strict fails on warnings",
    ]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse check never prints a secret's value", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-check-" });
  try {
    await Deno.mkdir(join(dir, "data", "secrets"), { recursive: true });
    await Deno.writeTextFile(join(dir, "data", "secrets", "ci"), "TOP-SECRET-VALUE\n");
    await Deno.writeTextFile(
      join(dir, "registry.yaml"),
      "clients:\n  ci: { secret: '${secret:ci}', grant_types: [authorization_code] }\n",
    );
    const { code, stdout, stderr } = await runGatehouse(["check"], {
      cwd: dir,
      env: { API_KEY: "ENV-SECRET" },
    });
    assert.equal(code, 1);
    assert.match(stderr, /registry\.yaml:2:7: clients\.ci: authorization_code needs redirect_uris/);
    assert.equal((stdout + stderr).includes("TOP-SECRET-VALUE"), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("gatehouse hash-password prints an argon2id hash of stdin that verifies", async () => {
  const { code, stdout } = await runGatehouse(["hash-password"], { stdin: "correct horse\n" });
  assert.equal(code, 0);
  const hash = stdout.trim();
  assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await verifyPassword(hash, "correct horse"), true);
  assert.equal(await verifyPassword(hash, "correct horse\n"), false);
});

Deno.test("gatehouse hash-password refuses an empty password with exit 1", async () => {
  const { code, stdout, stderr } = await runGatehouse(["hash-password"], { stdin: "" });
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.match(stderr, /it is empty/);
});

Deno.test("gatehouse systemd-unit prints a hardened unit", async () => {
  const { code, stdout } = await runGatehouse([
    "systemd-unit",
    "--binary",
    "/opt/gatehouse",
    "--registry",
    "/etc/g/r.yaml",
  ]);
  assert.equal(code, 0);
  for (
    const line of [
      "ExecStart=/opt/gatehouse serve --registry /etc/g/r.yaml --data ${STATE_DIRECTORY}",
      "ExecReload=/bin/kill -HUP $MAINPID",
      "DynamicUser=yes",
      "StateDirectory=gatehouse",
      "ProtectSystem=strict",
      "NoNewPrivileges=yes",
      "LimitNOFILE=65536",
      "#LoadCredential=github:/etc/gatehouse/secrets/github",
      "WantedBy=multi-user.target",
    ]
  ) assert.ok(stdout.split("\n").includes(line), line);
});

Deno.test("deno task compile builds both targets with the start task's permission and V8 flags", async () => {
  const config = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json")));
  const flags = await startTaskFlags();
  assert.ok(flags.length > 0);
  const targets = {
    "compile:x86_64": "x86_64-unknown-linux-gnu",
    "compile:aarch64": "aarch64-unknown-linux-gnu",
  };
  for (const [task, target] of Object.entries(targets)) {
    const words: string[] = config.tasks[task].split(/\s+/);
    assert.deepEqual(
      words.filter((word) => word.startsWith("--allow-") || word.startsWith("--v8-flags=")),
      flags,
      task,
    );
    // The password worker is loaded by a URL deno compile cannot follow: it is included by name.
    assert.equal(words[words.indexOf("--include") + 1], "src/login/password_worker.ts", task);
    assert.ok(words.includes(`dist/gatehouse-${target}`), task);
    assert.equal(words[words.indexOf("--target") + 1], target, task);
    assert.equal(words.at(-1), "main.ts");
  }
  assert.match(config.tasks.compile, /compile:x86_64/);
  assert.match(config.tasks.compile, /compile:aarch64/);
  assert.deepEqual(
    config.tasks.gatehouse.split(/\s+/).filter((word: string) =>
      word.startsWith("--allow-") || word.startsWith("--v8-flags=")
    ),
    flags,
  );
});
