import assert from "node:assert/strict";
import { join } from "node:path";
import { interpolateEnvOnly, isTemplatePath } from "../../src/config/interpolate.ts";
import { loadRegistry } from "../../src/config/load.ts";
import { Template, type TemplateContext } from "../../src/config/template.ts";
import type { BackendSettings, Registry } from "../../src/config/types.ts";
import { problem, problemsOf, registryOf, withTempDir, writeFiles, yaml } from "./_helpers.ts";

function stdioEnv(backend: BackendSettings | undefined): Readonly<Record<string, Template>> {
  const transport = backend?.transport;
  if (transport?.kind !== "stdio") assert.fail("expected a stdio backend");
  return transport.env;
}

function httpHeaders(backend: BackendSettings | undefined): Readonly<Record<string, Template>> {
  const transport = backend?.transport;
  if (transport === undefined || transport.kind === "stdio") assert.fail("expected an http or sse backend");
  return transport.headers;
}

const alice: TemplateContext = {
  user: { id: "u-123", name: "alice", email: "alice@example.test", groups: ["admin", "staff"] },
  serviceToken: (service) => `token-of-alice-for-${service}`,
};

const SERVICES = yaml(
  "services:",
  "  github: { issuer: https://github.com/login/oauth, client_id: gh }",
  "  google: { issuer: https://accounts.example.test, client_id: google }",
);

// ${env:...}

Deno.test("loadRegistry() substitutes ${env:...} anywhere in a string, as often as it appears", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        '  public_url: "https://${env:HOST}:${env:PORT}/${env:HOST}"',
        "backends:",
        "  files:",
        '    stdio: { command: "${env:BIN}/files-mcp", args: ["--root=${env:ROOT}"] }',
      ),
    },
    env: { HOST: "mcp.example.test", PORT: "8443", BIN: "/opt/bin", ROOT: "/srv/files" },
  });
  assert.equal(registry.gateway.publicUrl, "https://mcp.example.test:8443/mcp.example.test");
  const transport = registry.backends.files!.transport;
  assert.equal(transport.kind, "stdio");
  if (transport.kind !== "stdio") return;
  assert.equal(transport.command, "/opt/bin/files-mcp");
  assert.deepEqual(transport.args, ["--root=/srv/files"]);
});

Deno.test("loadRegistry() accepts an env var set to the empty string where a value may be empty", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        '    description: "${env:EMPTY}"',
        "    stdio: { command: x }",
      ),
    },
    env: { EMPTY: "" },
  });
  assert.equal(registry.backends.files!.description, "");
});

Deno.test("loadRegistry() does not interpolate the value of an env var again", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        '    description: "${env:TRICKY}"',
        "    stdio: { command: x }",
      ),
    },
    env: { TRICKY: "${secret:nope} and $${HOME}" },
  });
  assert.equal(registry.backends.files!.description, "${secret:nope} and $${HOME}");
});

Deno.test("loadRegistry() substitutes ${env:...} in policy files", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml("gateway: {}"),
      "policies/admins.yaml": yaml(
        '- { id: admins, effect: allow, subjects: ["group:${env:ADMIN_GROUP}"], backends: ["*"] }',
      ),
    },
    env: { ADMIN_GROUP: "wheel" },
  });
  assert.deepEqual(registry.policies[0]!.subjects, ["group:wheel"]);
});

// ${secret:...}

Deno.test("loadRegistry() reads ${secret:...} from the data directory's secrets/, trimming one trailing newline", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "clients:",
        '  a: { secret: "${secret:lf}" }',
        '  b: { secret: "${secret:crlf}" }',
        '  c: { secret: "${secret:bare}" }',
        '  d: { secret: "${secret:multi}" }',
      ),
      "data/secrets/lf": "FAKE-lf\n",
      "data/secrets/crlf": "FAKE-crlf\r\n",
      "data/secrets/bare": "FAKE-bare",
      "data/secrets/multi": "FAKE-line-1\nFAKE-line-2\n",
    },
  });
  assert.equal(registry.clients.a!.secret, "FAKE-lf");
  assert.equal(registry.clients.b!.secret, "FAKE-crlf");
  assert.equal(registry.clients.c!.secret, "FAKE-bare");
  assert.equal(registry.clients.d!.secret, "FAKE-line-1\nFAKE-line-2");
});

Deno.test("loadRegistry() reads ${secret:...} from $CREDENTIALS_DIRECTORY first, then from the data directory", async () => {
  await withTempDir(async (dir) => {
    await writeFiles(dir, {
      "registry.yaml": yaml(
        "clients:",
        '  a: { secret: "${secret:both}" }',
        '  b: { secret: "${secret:data_only}" }',
      ),
      "credentials/both": "FAKE-from-credentials\n",
      "data/secrets/both": "FAKE-from-data\n",
      "data/secrets/data_only": "FAKE-data-only\n",
    });
    const env: Record<string, string> = { CREDENTIALS_DIRECTORY: join(dir, "credentials") };
    const result = await loadRegistry(join(dir, "registry.yaml"), { env: (name) => env[name], cwd: dir });
    assert.ok(result.ok);
    assert.equal(result.registry.clients.a!.secret, "FAKE-from-credentials");
    assert.equal(result.registry.clients.b!.secret, "FAKE-data-only");
  });
});

Deno.test("loadRegistry() looks for secrets under gateway.data_dir, itself relative to the registry", async () => {
  await withTempDir(async (dir) => {
    await writeFiles(dir, {
      "conf/registry.yaml": yaml(
        "gateway:",
        "  data_dir: ../state",
        "clients:",
        '  a: { secret: "${secret:a}" }',
      ),
      "state/secrets/a": "FAKE-state\n",
    });
    const result = await loadRegistry("conf/registry.yaml", { env: () => undefined, cwd: dir });
    assert.ok(result.ok);
    assert.equal(result.registry.clients.a!.secret, "FAKE-state");
    assert.equal(result.registry.gateway.dataDir, join(dir, "state"));
  });
});

Deno.test("loadRegistry() reads ${env:...} in gateway.data_dir before looking for secrets", async () => {
  await withTempDir(async (dir) => {
    await writeFiles(dir, {
      "registry.yaml": yaml(
        "gateway:",
        '  data_dir: "${env:STATE_DIRECTORY}"',
        "clients:",
        '  a: { secret: "${secret:a}" }',
      ),
      "var/lib/gatehouse/secrets/a": "FAKE-from-state-directory\n",
    });
    const env: Record<string, string> = { STATE_DIRECTORY: join(dir, "var/lib/gatehouse") };
    const result = await loadRegistry(join(dir, "registry.yaml"), { env: (name) => env[name], cwd: dir });
    assert.ok(result.ok);
    assert.equal(result.registry.gateway.dataDir, join(dir, "var/lib/gatehouse"));
    assert.equal(result.registry.clients.a!.secret, "FAKE-from-state-directory");
  });
});

Deno.test("loadRegistry() reads through the injected readTextFile and readDirNames", async () => {
  const files: Record<string, string> = {
    "/virtual/registry.yaml": yaml("clients:", '  a: { secret: "${secret:a}" }'),
    "/virtual/data/secrets/a": "FAKE-virtual\n",
    "/virtual/policies/all.yaml": yaml('- { id: all, effect: allow, subjects: ["*"], backends: ["*"] }'),
  };
  const read: string[] = [];
  const result = await loadRegistry("/virtual/registry.yaml", {
    env: () => undefined,
    cwd: "/virtual",
    readTextFile: (path) => {
      read.push(path);
      const text = files[path];
      return text === undefined ? Promise.reject(new Deno.errors.NotFound(path)) : Promise.resolve(text);
    },
    readDirNames: (path) =>
      Promise.resolve(path === "/virtual/policies" ? ["all.yaml", "notes.txt"] : undefined),
  });
  assert.ok(result.ok);
  assert.equal(result.registry.clients.a!.secret, "FAKE-virtual");
  assert.deepEqual(result.registry.files, ["/virtual/registry.yaml", "/virtual/policies/all.yaml"]);
  assert.deepEqual(read.sort(), [
    "/virtual/data/secrets/a",
    "/virtual/policies/all.yaml",
    "/virtual/registry.yaml",
  ]);
});

// $${ escapes

Deno.test("loadRegistry() turns $${ into a literal ${ outside templates", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  shell:",
        '    description: "prints $${HOME}, $${env:HOME} and $${secret:none} literally"',
        '    stdio: { command: sh, args: [-c, "echo $${HOME}"] }',
      ),
    },
  });
  const shell = registry.backends.shell!;
  assert.equal(shell.description, "prints ${HOME}, ${env:HOME} and ${secret:none} literally");
  assert.equal(shell.transport.kind === "stdio" && shell.transport.args[1], "echo ${HOME}");
});

Deno.test("loadRegistry() keeps $${ escaped in a template's source form and literal when rendered", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  shell:",
        '    stdio: { command: sh, env: { PS1: "$${USER}@${user:name}> ", PLAIN: "cost: $$5" } }',
      ),
    },
  });
  const env = stdioEnv(registry.backends.shell);
  assert.equal(env.PS1!.render(alice), "${USER}@alice> ");
  assert.equal(env.PS1!.toJSON(), "$${USER}@${user:name}> ");
  // "$$" not followed by "{" is not an escape.
  assert.equal(env.PLAIN!.render(), "cost: $$5");
  assert.equal(env.PLAIN!.toJSON(), "cost: $$5");
});

// Templates

Deno.test("loadRegistry() makes templates of backend env and headers", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": SERVICES + yaml(
        "backends:",
        "  github:",
        "    stdio:",
        "      command: github-mcp-server",
        "      env:",
        '        GITHUB_TOKEN: "${service:github}"',
        '        WHO: "${user:name} <${user:email}> in ${user:groups} as ${user:id}"',
        "        MODE: read-only",
        "  search:",
        "    http:",
        "      url: https://search.example.test/mcp",
        "      headers:",
        '        Authorization: "Bearer ${service:google}"',
        '        X-Both: "${service:github}+${service:google}"',
      ),
    },
  });
  const env = stdioEnv(registry.backends.github);
  assert.ok(env.GITHUB_TOKEN instanceof Template);
  assert.equal(env.GITHUB_TOKEN.perUser, true);
  assert.deepEqual(env.GITHUB_TOKEN.services, ["github"]);
  assert.equal(env.GITHUB_TOKEN.render(alice), "token-of-alice-for-github");
  assert.equal(env.WHO!.perUser, true);
  assert.deepEqual(env.WHO!.services, []);
  assert.equal(env.WHO!.render(alice), "alice <alice@example.test> in admin,staff as u-123");
  assert.equal(env.MODE!.perUser, false);
  assert.equal(env.MODE!.render(), "read-only");

  const headers = httpHeaders(registry.backends.search);
  assert.equal(headers.Authorization!.render(alice), "Bearer token-of-alice-for-google");
  assert.deepEqual(headers["X-Both"]!.services, ["github", "google"]);
  assert.equal(headers["X-Both"]!.render(alice), "token-of-alice-for-github+token-of-alice-for-google");

  assert.deepEqual(registry.backends.github!.services, ["github"]);
  assert.equal(registry.backends.github!.perUser, true);
  assert.deepEqual(registry.backends.search!.services, ["github", "google"]);
});

Deno.test("Template.render() fills a missing email with the empty string", () => {
  const template = new Template([{ kind: "text", text: "<", source: "<" }, { kind: "user", field: "email" }, {
    kind: "text",
    text: ">",
    source: ">",
  }]);
  assert.equal(template.render({ user: { id: "u", name: "bob", groups: [] }, serviceToken: () => "" }), "<>");
});

Deno.test("Template.render() needs a context only when the template has placeholders", () => {
  const fixed = new Template([{ kind: "text", text: "fixed", source: "fixed" }]);
  assert.equal(fixed.render(), "fixed");
  const perUser = new Template([{ kind: "user", field: "id" }]);
  assert.throws(() => perUser.render(), {
    name: "TypeError",
    message: "Cannot render template: it needs a user context",
  });
});

Deno.test("Template.toJSON() gives the source form, never what ${env:} or ${secret:} resolved to", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": SERVICES + yaml(
        "backends:",
        "  search:",
        "    http:",
        "      url: https://search.example.test/mcp",
        "      headers:",
        '        Authorization: "Bearer ${secret:search_token}"',
        '        X-Region: "${env:REGION}"',
        '        X-User: "${user:id} via ${service:google}"',
      ),
      "data/secrets/search_token": "FAKE-search-token\n",
    },
    env: { REGION: "eu-test-1" },
  });
  const headers = httpHeaders(registry.backends.search);
  assert.equal(headers.Authorization!.render(), "Bearer FAKE-search-token");
  assert.equal(headers.Authorization!.toJSON(), "Bearer ${secret:search_token}");
  assert.equal(headers["X-Region"]!.render(), "eu-test-1");
  assert.equal(headers["X-Region"]!.toJSON(), "${env:REGION}");
  assert.equal(headers["X-User"]!.toJSON(), "${user:id} via ${service:google}");
  const text = JSON.stringify(registry);
  assert.ok(text.includes('"Authorization":"Bearer ${secret:search_token}"'));
  assert.ok(!text.includes("FAKE-search-token"));
});

Deno.test("Template.identity() follows the rendered value, not the source", () => {
  const text = (text: string, source: string) => new Template([{ kind: "text", text, source }]);
  // Same source, different secret value: different identity.
  assert.notEqual(text("FAKE-1", "${secret:k}").identity(), text("FAKE-2", "${secret:k}").identity());
  // Different source, same value: same identity.
  assert.equal(text("eu-test-1", "${env:REGION}").identity(), text("eu-test-1", "eu-test-1").identity());
  // Placeholders count.
  assert.notEqual(
    new Template([{ kind: "user", field: "id" }]).identity(),
    new Template([{ kind: "user", field: "name" }]).identity(),
  );
  assert.notEqual(
    new Template([{ kind: "service", service: "github" }]).identity(),
    new Template([{ kind: "service", service: "google" }]).identity(),
  );
});

Deno.test("Template is immutable", () => {
  const template = new Template([{ kind: "service", service: "github" }]);
  assert.ok(Object.isFrozen(template));
  assert.ok(Object.isFrozen(template.parts));
  assert.ok(Object.isFrozen(template.parts[0]));
});

Deno.test("loadRegistry() turns numbers and booleans in env and headers into strings", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio:",
        "      command: files-mcp",
        "      args: [--port, 3001, --ratio, 0.5]",
        "      env: { PORT: 8080, DEBUG: true, RATIO: 0.5, OFF: false }",
        "  search:",
        "    http: { url: https://search.example.test/mcp, headers: { X-Version: 2 } }",
      ),
    },
  });
  const env = stdioEnv(registry.backends.files);
  assert.deepEqual(
    Object.fromEntries(Object.entries(env).map(([key, template]) => [key, template.render()])),
    { PORT: "8080", DEBUG: "true", RATIO: "0.5", OFF: "false" },
  );
  assert.equal(env.PORT!.toJSON(), "8080");
  const files = registry.backends.files!.transport;
  assert.deepEqual(files.kind === "stdio" && files.args, ["--port", "3001", "--ratio", "0.5"]);
  assert.equal(httpHeaders(registry.backends.search)["X-Version"]!.render(), "2");
});

Deno.test("loadRegistry() rejects a null value in env", async () => {
  const problems = await problemsOf({
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio:",
        "      command: files-mcp",
        "      env: { ROOT: }",
      ),
    },
  });
  assert.deepEqual(problems, [problem(5, 20, "backends.files.stdio.env.ROOT: expected a string")]);
});

// Command-line overrides

Deno.test("loadRegistry() lets LoadOptions.dataDir (--data) win over gateway.data_dir, relative to the cwd", async () => {
  await withTempDir(async (dir) => {
    await writeFiles(dir, {
      "conf/registry.yaml": yaml(
        "gateway:",
        "  data_dir: ./data",
        "clients:",
        '  a: { secret: "${secret:a}" }',
      ),
      "conf/data/secrets/a": "FAKE-from-gateway-data-dir\n",
      "elsewhere/secrets/a": "FAKE-from-command-line\n",
    });
    const result = await loadRegistry("conf/registry.yaml", {
      env: () => undefined,
      cwd: dir,
      dataDir: "elsewhere",
    });
    assert.ok(result.ok);
    assert.equal(result.registry.gateway.dataDir, join(dir, "elsewhere"));
    assert.equal(result.registry.clients.a!.secret, "FAKE-from-command-line");
  });
});

Deno.test("loadRegistry() lets LoadOptions.listen (--listen) win over gateway.listen", async () => {
  const registry = await registryOf({
    files: { "registry.yaml": yaml("gateway:", "  listen: 127.0.0.1:8740") },
    options: { listen: "[::1]:0" },
  });
  assert.deepEqual(registry.gateway.listen, { hostname: "::1", port: 0 });
  const withoutGateway = await registryOf({
    files: { "registry.yaml": yaml("backends: {}") },
    options: { listen: "localhost:9000" },
  });
  assert.deepEqual(withoutGateway.gateway.listen, { hostname: "localhost", port: 9000 });
});

Deno.test("loadRegistry() rejects auth: none when --listen moves it off loopback, naming the flag", async () => {
  const problems = await problemsOf({
    files: { "registry.yaml": yaml("gateway:", "  listen: 127.0.0.1:8740", "  auth: none") },
    options: { listen: "0.0.0.0:8740" },
  });
  assert.deepEqual(problems, [
    problem(
      0,
      0,
      '0.0.0.0:8740 is not a loopback address, and gateway.auth is "none" (registry.yaml:3:9), which is ' +
        "only allowed on a loopback listener (localhost, 127.x.x.x or ::1): give --listen 127.0.0.1:PORT, " +
        "or use auth: oauth",
      "--listen",
    ),
  ]);
  // Without the flag, the file's own listener is the cause: the problem points into the file.
  const fromFile = await problemsOf({
    files: { "registry.yaml": yaml("gateway:", "  listen: 0.0.0.0:8740", "  auth: none") },
  });
  assert.deepEqual(fromFile, [
    problem(
      3,
      9,
      'gateway.auth: "none" is only allowed on a loopback listener (localhost, 127.x.x.x or ::1)',
    ),
  ]);
});

Deno.test("loadRegistry() accepts auth: none on every loopback form", async () => {
  for (const listen of ["127.0.0.1:8740", "127.1.2.3:8740", "[::1]:8740", "localhost:8740"]) {
    const registry: Registry = await registryOf({
      files: { "registry.yaml": yaml("gateway:", `  listen: "${listen}"`, "  auth: none") },
    });
    assert.equal(registry.gateway.auth, "none", listen);
  }
});

Deno.test("loadRegistry() does not read registry.yaml as a policy file when policies_dir is its directory", async () => {
  const registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  policies_dir: .",
        "policies:",
        '  - { id: inline, effect: allow, subjects: ["*"], backends: ["*"] }',
      ),
      "rules.yaml": yaml('- { id: beside, effect: deny, subjects: ["group:interns"], backends: ["*"] }'),
    },
  });
  assert.deepEqual(registry.policies.map((rule) => `${rule.id}@${rule.source.file}`), [
    "inline@registry.yaml",
    "beside@rules.yaml",
  ]);
  assert.equal(registry.files.length, 2);
});

// Helpers exported by interpolate.ts

Deno.test("interpolateEnvOnly() substitutes env references and gives up on anything else", () => {
  const env = (name: string) => ({ HOME: "/home/gh", EMPTY: "" } as Record<string, string>)[name];
  assert.equal(interpolateEnvOnly("${env:HOME}/data", env), "/home/gh/data");
  assert.equal(interpolateEnvOnly("a${env:EMPTY}b", env), "ab");
  assert.equal(interpolateEnvOnly("$${env:HOME}", env), "${env:HOME}");
  assert.equal(interpolateEnvOnly("${env:MISSING}", env), undefined);
  assert.equal(interpolateEnvOnly("${secret:x}", env), undefined);
  assert.equal(interpolateEnvOnly("${env:HOME", env), undefined);
});

Deno.test("isTemplatePath() is true only for values of backend env and headers", () => {
  assert.equal(isTemplatePath(["backends", "b", "stdio", "env", "TOKEN"]), true);
  assert.equal(isTemplatePath(["backends", "b", "http", "headers", "Authorization"]), true);
  assert.equal(isTemplatePath(["backends", "b", "sse", "headers", "Authorization"]), true);
  assert.equal(isTemplatePath(["backends", "b", "stdio", "args", 0]), false);
  assert.equal(isTemplatePath(["backends", "b", "http", "url"]), false);
  assert.equal(isTemplatePath(["backends", "b", "stdio", "env"]), false);
  assert.equal(isTemplatePath(["services", "b", "stdio", "env", "TOKEN"]), false);
  assert.equal(isTemplatePath(["backends", "b", "http", "env", "TOKEN"]), false);
});
