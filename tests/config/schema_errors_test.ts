import assert from "node:assert/strict";
import { ConfigError, type ConfigProblem, formatProblem } from "../../src/config/errors.ts";
import { loadRegistry } from "../../src/config/load.ts";
import { type Fixture, problem, problemsOf, withTempDir, writeFiles, yaml } from "./_helpers.ts";

/**
 * One rejected registry per rule. Each fixture is written line by line, so that a problem at line N is
 * the N-th argument of yaml(); columns are 1-based and point at the value (or at the key, for unknown
 * and duplicate keys).
 */
interface RejectionCase extends Fixture {
  /** Completes "loadRegistry() rejects ...". */
  name: string;
  expected: ConfigProblem[];
}

const HASH = "$argon2id$v=19$m=19456,t=2,p=1$ZmFrZXNhbHQ$ZmFrZWhhc2g";
const NOT_FOUND = (name: string) =>
  `secret "${name}" not found (a file named "${name}" in $CREDENTIALS_DIRECTORY or in the data directory's secrets/)`;

const cases: RejectionCase[] = [
  // Unknown keys, at every level.
  {
    name: "an unknown top-level key",
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  listen: 127.0.0.1:8740",
        "backend:",
        "  files: { stdio: { command: files-mcp } }",
      ),
    },
    expected: [problem(3, 1, 'unknown key "backend"')],
  },
  {
    name: "an unknown key in gateway",
    files: { "registry.yaml": yaml("gateway:", "  listen: 127.0.0.1:8740", "  colour: blue") },
    expected: [problem(3, 3, 'gateway: unknown key "colour"')],
  },
  {
    name: "an unknown key in a backend",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    restart: always",
      ),
    },
    expected: [problem(4, 5, 'backends.files: unknown key "restart"')],
  },
  {
    name: "an unknown key in a stdio block",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio:",
        "      command: files-mcp",
        "      environment: { ROOT: /srv }",
      ),
    },
    expected: [problem(5, 7, 'backends.files.stdio: unknown key "environment"')],
  },
  {
    name: "an unknown key in a login provider",
    files: {
      "registry.yaml": yaml(
        "login:",
        "  providers:",
        "    github:",
        "      type: github",
        "      client_id: gh-client",
        "      client_secret: gh-secret",
        "      allow: { orgs: [acme] }",
        "      scopes: [read:org]",
      ),
    },
    expected: [problem(8, 7, 'login.providers.github: unknown key "scopes"')],
  },
  {
    name: "an unknown key in a rule",
    files: {
      "registry.yaml": yaml(
        "policies:",
        "  - id: readers",
        "    effect: allow",
        '    subjects: ["*"]',
        '    backends: ["*"]',
        "    tool: [search]",
      ),
    },
    expected: [problem(6, 5, 'policies[0]: unknown key "tool"')],
  },
  {
    name: "an unknown key in a rule of a policy file",
    files: {
      "registry.yaml": yaml("gateway: {}"),
      "policies/team.yaml": yaml(
        "- id: team",
        "  effect: allow",
        '  subjects: ["group:team"]',
        '  backends: ["*"]',
        "  when: weekdays",
      ),
    },
    expected: [problem(5, 3, '[0]: unknown key "when"', "policies/team.yaml")],
  },
  {
    name: "an unknown key at the top of a policy file",
    files: {
      "registry.yaml": yaml("gateway: {}"),
      "policies/team.yaml": yaml(
        "rules:",
        '  - { id: team, effect: allow, subjects: ["*"], backends: ["*"] }',
      ),
    },
    expected: [problem(1, 1, 'unknown key "rules"', "policies/team.yaml")],
  },

  // Wrong types.
  {
    name: "a number where a string is expected",
    files: { "registry.yaml": yaml("gateway:", "  listen: 8740") },
    expected: [problem(2, 11, "gateway.listen: expected a string, not a number")],
  },
  {
    name: "a string where a number is expected",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        '    max_processes: "3"',
      ),
    },
    expected: [problem(4, 20, "backends.files.max_processes: expected a number, not a string")],
  },
  {
    name: "a fraction where an integer is expected",
    files: {
      "registry.yaml": yaml("limits:", '  - { subjects: ["*"], requests_per_minute: 1.5 }'),
    },
    expected: [problem(2, 45, "limits[0].requests_per_minute: expected a whole number")],
  },
  {
    name: "a string where a boolean is expected",
    files: {
      "registry.yaml": yaml(
        "policies:",
        "  - id: readers",
        "    effect: allow",
        '    subjects: ["*"]',
        '    backends: ["*"]',
        '    read_only: "yes"',
      ),
    },
    expected: [problem(6, 16, "policies[0].read_only: expected true or false, not a string")],
  },
  {
    name: "a string where a list is expected",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    tools: { include: search_* }",
      ),
    },
    expected: [problem(4, 23, "backends.files.tools.include: expected a list, not a string")],
  },
  {
    name: "a mapping where a list of rules is expected",
    files: {
      "registry.yaml": yaml("policies:", '  readers: { effect: allow, subjects: ["*"], backends: ["*"] }'),
    },
    expected: [problem(2, 3, "policies: expected a list, not a mapping")],
  },
  {
    name: "an empty section",
    files: { "registry.yaml": yaml("gateway:") },
    expected: [problem(1, 9, "gateway: expected a mapping, not an empty value")],
  },
  {
    name: "a registry that is a list",
    files: { "registry.yaml": yaml("- gateway: {}") },
    expected: [problem(1, 1, "expected a mapping, not a list")],
  },

  // Bad enum values.
  {
    name: "a bad gateway.auth",
    files: { "registry.yaml": yaml("gateway:", "  auth: maybe") },
    expected: [problem(2, 9, 'gateway.auth: must be "oauth" or "none"')],
  },
  {
    name: "a bad gateway.status_page",
    files: { "registry.yaml": yaml("gateway:", "  status_page: everyone") },
    expected: [
      problem(2, 16, 'gateway.status_page: must be "public", "users" or "admins"'),
    ],
  },
  {
    name: "a bad isolation",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    isolation: process",
      ),
    },
    expected: [
      problem(4, 16, 'backends.files.isolation: must be "shared", "user" or "session"'),
    ],
  },
  {
    name: "a bad rule effect",
    files: {
      "registry.yaml": yaml(
        "policies:",
        "  - id: readers",
        "    effect: permit",
        '    subjects: ["*"]',
        '    backends: ["*"]',
      ),
    },
    expected: [problem(3, 13, 'policies[0].effect: must be "allow" or "deny"')],
  },
  {
    name: "a bad grant type",
    files: { "registry.yaml": yaml("clients:", "  ci-bot: { secret: s3, grant_types: [password] }") },
    expected: [
      problem(
        2,
        39,
        'clients.ci-bot.grant_types[0]: must be "client_credentials", "authorization_code" or "refresh_token"',
      ),
    ],
  },
  {
    name: "an empty list of grant types",
    files: { "registry.yaml": yaml("clients:", "  ci-bot: { secret: s3, grant_types: [] }") },
    expected: [problem(2, 38, "clients.ci-bot.grant_types: must not be empty")],
  },
  {
    name: "a bad provider type",
    files: {
      "registry.yaml": yaml(
        "login:",
        "  providers:",
        "    lab:",
        "      type: gitlab",
        "      client_id: lab-client",
        "      allow: {}",
      ),
    },
    expected: [problem(4, 13, 'login.providers.lab.type: expected a provider with type "github" or "oidc"')],
  },

  // Durations and sizes.
  {
    name: "a duration with a spelled-out unit",
    files: { "registry.yaml": yaml("gateway:", "  access_token_ttl: 1 hour") },
    expected: [problem(2, 21, "gateway.access_token_ttl: expected a duration such as 30s, 10m, 1h or 30d")],
  },
  {
    name: "a zero duration",
    files: { "registry.yaml": yaml("gateway:", "  access_token_ttl: 0s") },
    expected: [problem(2, 21, "gateway.access_token_ttl: must be longer than zero")],
  },
  {
    name: "a negative duration",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    idle_timeout: -5m",
      ),
    },
    expected: [
      problem(4, 19, "backends.files.idle_timeout: expected a duration such as 30s, 10m, 1h or 30d"),
    ],
  },
  {
    name: "a size with an unknown unit",
    files: { "registry.yaml": yaml("gateway:", "  max_body_size: 4 megabytes") },
    expected: [problem(2, 18, "gateway.max_body_size: expected a size such as 4MiB, 512KiB or a byte count")],
  },
  {
    name: "a size of zero",
    files: { "registry.yaml": yaml("gateway:", "  max_body_size: 0") },
    expected: [problem(2, 18, "gateway.max_body_size: expected a size such as 4MiB, 512KiB or a byte count")],
  },

  // Listen addresses and URLs.
  {
    name: "a listen address without a port",
    files: { "registry.yaml": yaml("gateway:", "  listen: localhost") },
    expected: [problem(2, 11, "gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740")],
  },
  {
    name: "a listen port above 65535",
    files: { "registry.yaml": yaml("gateway:", "  listen: 127.0.0.1:70000") },
    expected: [problem(2, 11, "gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740")],
  },
  {
    name: "an IPv6 listen address without brackets",
    files: { "registry.yaml": yaml("gateway:", '  listen: "::1:8740"') },
    expected: [problem(2, 11, "gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740")],
  },
  {
    name: "a public_url without a scheme",
    files: { "registry.yaml": yaml("gateway:", "  public_url: mcp.example.test") },
    expected: [problem(2, 15, "gateway.public_url: expected an absolute http:// or https:// URL")],
  },
  {
    name: "a backend URL that is not http(s)",
    files: {
      "registry.yaml": yaml("backends:", "  search:", '    http: { url: "ftp://search.example.test/mcp" }'),
    },
    expected: [problem(3, 18, "backends.search.http.url: expected an absolute http:// or https:// URL")],
  },
  {
    name: "a relative redirect URI",
    files: {
      "registry.yaml": yaml("clients:", "  web-app:", "    redirect_uris: [/callback]"),
    },
    expected: [
      problem(3, 21, "clients.web-app.redirect_uris[0]: expected an absolute http:// or https:// URL"),
    ],
  },

  // Missing required keys.
  {
    name: "a stdio block without command",
    files: { "registry.yaml": yaml("backends:", "  files:", "    stdio: { args: [--root, /srv] }") },
    expected: [problem(3, 12, "backends.files.stdio.command: missing required key")],
  },
  {
    name: "a rule without effect",
    files: {
      "registry.yaml": yaml("policies:", "  - id: readers", '    subjects: ["*"]', '    backends: ["*"]'),
    },
    expected: [problem(2, 5, "policies[0].effect: missing required key")],
  },
  {
    name: "a service without client_id",
    files: { "registry.yaml": yaml("services:", "  github:", "    issuer: https://github.com/login/oauth") },
    expected: [problem(3, 5, "services.github.client_id: missing required key")],
  },
  {
    name: "a limit without requests_per_minute",
    files: { "registry.yaml": yaml("limits:", '  - { subjects: ["*"] }') },
    expected: [problem(2, 5, "limits[0].requests_per_minute: missing required key")],
  },
  {
    name: "a GitHub provider without allow",
    files: {
      "registry.yaml": yaml(
        "login:",
        "  providers:",
        "    github: { type: github, client_id: gh-client, client_secret: gh-secret }",
      ),
    },
    expected: [problem(3, 13, "login.providers.github.allow: missing required key")],
  },
  {
    name: "a rule with no subjects",
    files: {
      "registry.yaml": yaml("policies:", '  - { id: nobody, effect: allow, subjects: [], backends: ["*"] }'),
    },
    expected: [problem(2, 44, "policies[0].subjects: list at least one subject")],
  },

  // Names.
  {
    name: "a backend name with a space",
    files: { "registry.yaml": yaml("backends:", '  "files server":', "    stdio: { command: files-mcp }") },
    expected: [problem(2, 3, "backends.files server: names use letters, digits, '_', '-' and '.'")],
  },
  {
    name: "an environment variable name that starts with a digit",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio:",
        "      command: files-mcp",
        "      env: { 1ROOT: /srv }",
      ),
    },
    expected: [problem(5, 14, "backends.files.stdio.env.1ROOT: invalid environment variable name")],
  },
  {
    name: "a group name with a space",
    files: {
      "registry.yaml": yaml(
        "login:",
        "  users:",
        "    alice:",
        `      password_hash: "${HASH}"`,
        '      groups: [admin, "night shift"]',
      ),
    },
    expected: [problem(5, 23, "login.users.alice.groups[1]: names use letters, digits, '_', '-' and '.'")],
  },
  {
    name: "a rule id with a space",
    files: {
      "registry.yaml": yaml(
        "policies:",
        '  - { id: "read only", effect: allow, subjects: ["*"], backends: ["*"] }',
      ),
    },
    expected: [problem(2, 11, "policies[0].id: names use letters, digits, '_', '-' and '.'")],
  },
  {
    name: "a subject without a kind",
    files: {
      "registry.yaml": yaml("policies:", '  - { id: bob, effect: allow, subjects: [bob], backends: ["*"] }'),
    },
    expected: [
      problem(
        2,
        42,
        'policies[0].subjects[0]: expected "*", "user:NAME", "group:NAME", "client:ID" or "provider:NAME"',
      ),
    ],
  },
  {
    name: "a prefix with a space",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        '    prefix: "my files"',
      ),
    },
    expected: [problem(4, 13, "backends.files.prefix: a prefix uses letters, digits, '_' and '-'")],
  },
  {
    name: "a prefix containing '__'",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    prefix: my__files",
      ),
    },
    expected: [problem(4, 13, "backends.files.prefix: a prefix must not contain '__'")],
  },
  {
    // The aggregate endpoint names tools `{prefix}__{tool}`; the default prefix is the backend name.
    name: "a backend name containing '__' when no prefix is given",
    files: { "registry.yaml": yaml("backends:", "  my__files:", "    stdio: { command: files-mcp }") },
    expected: [
      problem(
        2,
        3,
        "backends.my__files: a prefix must not contain '__' (set prefix:, since the default is the backend name)",
      ),
    ],
  },

  // YAML itself.
  {
    name: "a duplicate YAML key",
    files: { "registry.yaml": yaml("gateway:", "  auth: oauth", "  auth: none") },
    expected: [problem(3, 3, 'gateway: duplicate key "auth" (first written at line 2)')],
  },
  {
    name: "a YAML syntax error",
    files: { "registry.yaml": yaml("gateway:", "  trusted_proxies: [10.0.0.1", "  auth: oauth") },
    expected: [
      problem(3, 3, "Flow sequence in block collection must be sufficiently indented and end with a ]"),
    ],
  },
  {
    name: "tab indentation",
    files: { "registry.yaml": "gateway:\n\tauth: oauth\n" },
    expected: [problem(2, 1, "Tabs are not allowed as indentation")],
  },

  // Policy files.
  {
    name: "a policy file that is neither a list nor a mapping",
    files: { "registry.yaml": yaml("gateway: {}"), "policies/notes.yaml": yaml("allow everyone") },
    expected: [
      problem(
        1,
        1,
        "expected a list of rules, or a mapping with policies: and/or limits:",
        "policies/notes.yaml",
      ),
    ],
  },
  {
    name: "a rule id used in the registry and in a policy file",
    files: {
      "registry.yaml": yaml(
        "policies:",
        '  - { id: readers, effect: allow, subjects: ["*"], backends: ["*"] }',
      ),
      "policies/team.yaml": yaml(
        '- { id: readers, effect: deny, subjects: ["group:interns"], backends: ["*"] }',
      ),
    },
    expected: [problem(1, 9, 'rule id "readers" is already used in registry.yaml', "policies/team.yaml")],
  },
  {
    name: "a rule id used in two policy files",
    files: {
      "registry.yaml": yaml("gateway: {}"),
      "policies/a.yaml": yaml('- { id: readers, effect: allow, subjects: ["*"], backends: ["*"] }'),
      "policies/b.yaml": yaml(
        "policies:",
        '  - { id: readers, effect: deny, subjects: ["group:interns"], backends: ["*"] }',
      ),
    },
    expected: [problem(2, 11, 'rule id "readers" is already used in policies/a.yaml', "policies/b.yaml")],
  },

  // Cross-references.
  {
    name: "an unknown provider in a subject",
    files: {
      "registry.yaml": yaml(
        "policies:",
        "  - id: corp-staff",
        "    effect: allow",
        '    subjects: ["provider:corp"]',
        '    backends: ["*"]',
      ),
    },
    expected: [problem(4, 16, 'unknown provider "corp" in subject')],
  },
  {
    // The policy compiles globs into regular expressions; one that cannot compile must not load.
    name: "a glob whose character range is out of order",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  b:",
        "    http: { url: https://b.example.test/mcp }",
        "policies:",
        '  - { id: r, effect: deny, subjects: ["*"], backends: ["[z-a]*"], tools: [ok, "[9-0]"] }',
        "limits:",
        '  - { subjects: ["*"], backends: ["b[!z-a]"], requests_per_minute: 5 }',
      ),
    },
    expected: [
      problem(5, 56, 'invalid glob "[z-a]*": Range out of order in character class'),
      problem(5, 79, 'invalid glob "[9-0]": Range out of order in character class'),
      problem(7, 35, 'invalid glob "b[!z-a]": Range out of order in character class'),
    ],
  },
  {
    name: "an unknown service in a backend env",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  github:",
        "    stdio:",
        "      command: github-mcp-server",
        '      env: { GITHUB_TOKEN: "${service:github}" }',
      ),
    },
    expected: [problem(5, 28, 'unknown service "github": define it under services:')],
  },
  {
    name: "an unknown service in a backend header",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  search:",
        "    http:",
        "      url: https://search.example.test/mcp",
        '      headers: { Authorization: "Bearer ${service:google}" }',
      ),
    },
    expected: [problem(5, 33, 'unknown service "google": define it under services:')],
  },

  // References.
  {
    name: "${service:...} outside backend env and headers",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  github: { issuer: https://github.com/login/oauth, client_id: gh }",
        "backends:",
        "  github:",
        "    stdio:",
        "      command: github-mcp-server",
        '      args: [stdio, --token, "${service:github}"]',
      ),
    },
    expected: [
      problem(7, 30, "${service:github} is only allowed in a backend's stdio env or http/sse headers"),
    ],
  },
  {
    name: "${user:...} outside backend env and headers",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  notes:",
        '    description: "Notes of ${user:name}"',
        "    stdio: { command: notes-mcp }",
      ),
    },
    expected: [problem(3, 18, "${user:name} is only allowed in a backend's stdio env or http/sse headers")],
  },
  {
    name: "an unknown ${user:...} field",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  notes:",
        "    stdio:",
        "      command: notes-mcp",
        '      env: { NOTES_USER: "${user:login}" }',
      ),
    },
    expected: [problem(5, 26, 'unknown user field "login": use id, name, email, groups')],
  },
  {
    name: "an unknown reference kind",
    files: { "registry.yaml": yaml("clients:", "  ci-bot:", '    secret: "${vault:ci_bot}"') },
    expected: [problem(3, 13, 'unknown reference "${vault:ci_bot}": use env:, secret:, service: or user:')],
  },
  {
    name: "a reference without a kind",
    files: { "registry.yaml": yaml("clients:", "  ci-bot:", '    secret: "${CI_BOT_SECRET}"') },
    expected: [problem(3, 13, 'unknown reference "${CI_BOT_SECRET}": use env:, secret:, service: or user:')],
  },
  {
    name: "an unterminated reference",
    files: { "registry.yaml": yaml("gateway:", '  data_dir: "${env:STATE_DIRECTORY"') },
    expected: [problem(2, 13, "unterminated reference: missing '}'")],
  },
  {
    name: "a reference with an empty name",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  linear:",
        "    issuer: https://linear.example.test",
        '    client_id: "${env:}"',
      ),
    },
    expected: [problem(4, 16, 'invalid name in reference "${env:}"')],
  },
  {
    name: "a secret name that leaves the secrets directory",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  linear:",
        "    issuer: https://linear.example.test",
        "    client_id: linear",
        '    client_secret: "${secret:../../etc/passwd}"',
      ),
    },
    expected: [problem(5, 20, 'invalid name in reference "${secret:../../etc/passwd}"')],
  },
  {
    name: "a missing environment variable",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  linear:",
        "    issuer: https://linear.example.test",
        '    client_id: "${env:LINEAR_ID}"',
      ),
    },
    expected: [problem(4, 16, 'environment variable "LINEAR_ID" is not set')],
  },
  {
    name: "a missing secret",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  linear:",
        "    issuer: https://linear.example.test",
        "    client_id: linear",
        '    client_secret: "${secret:linear}"',
      ),
    },
    expected: [problem(5, 20, NOT_FOUND("linear"))],
  },
  {
    name: "a missing environment variable inside a backend env template",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio:",
        "      command: files-mcp",
        '      env: { ROOT: "${env:FILES_ROOT}/shared" }',
      ),
    },
    expected: [problem(5, 20, 'environment variable "FILES_ROOT" is not set')],
  },

  {
    // data_dir locates the secrets, so it cannot depend on one.
    name: "a ${secret:...} in gateway.data_dir",
    files: {
      "registry.yaml": yaml("gateway:", '  data_dir: "${secret:state}"'),
      "data/secrets/state": "/var/lib/FAKE\n",
    },
    expected: [problem(2, 13, "gateway.data_dir: only ${env:...} references are allowed here")],
  },

  // Rules between keys.
  {
    name: "auth: none on a non-loopback listener",
    files: { "registry.yaml": yaml("gateway:", "  listen: 0.0.0.0:8740", "  auth: none") },
    expected: [
      problem(
        3,
        9,
        'gateway.auth: "none" is only allowed on a loopback listener (localhost, 127.x.x.x or ::1)',
      ),
    ],
  },
  {
    name: "a backend without a transport",
    files: { "registry.yaml": yaml("backends:", "  files:", "    description: Files on the server") },
    expected: [problem(3, 5, "backends.files: give exactly one of stdio, http or sse")],
  },
  {
    name: "a backend with two transports",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  files:",
        "    stdio: { command: files-mcp }",
        "    http: { url: http://127.0.0.1:9000/mcp }",
      ),
    },
    expected: [problem(3, 5, "backends.files: give exactly one of stdio, http or sse")],
  },
  {
    name: "isolation, idle_timeout and max_processes on an http backend",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  search:",
        "    http: { url: https://search.example.test/mcp }",
        "    isolation: user",
        "    idle_timeout: 10m",
        "    max_processes: 4",
      ),
    },
    expected: [
      problem(4, 16, "backends.search.isolation: only stdio backends have processes to manage"),
      problem(5, 19, "backends.search.idle_timeout: only stdio backends have processes to manage"),
      problem(6, 20, "backends.search.max_processes: only stdio backends have processes to manage"),
    ],
  },
  {
    name: "protocol auto on an sse backend",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  old:",
        "    sse: { url: http://127.0.0.1:9000/sse }",
        "    protocol: auto",
      ),
    },
    expected: [problem(4, 15, "backends.old.protocol: an sse backend speaks the 2024-11-05 protocol only")],
  },
  {
    name: "isolation on an sse backend",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  old:",
        "    sse: { url: http://127.0.0.1:9000/sse }",
        "    isolation: session",
      ),
    },
    expected: [problem(4, 16, "backends.old.isolation: only stdio backends have processes to manage")],
  },
  {
    name: "isolation: shared with ${service:...} in env",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  github: { issuer: https://github.com/login/oauth, client_id: gh }",
        "backends:",
        "  github:",
        "    stdio:",
        "      command: github-mcp-server",
        '      env: { GITHUB_TOKEN: "${service:github}" }',
        "    isolation: shared",
      ),
    },
    expected: [
      problem(
        8,
        16,
        'backends.github.isolation: "shared" is not allowed: env uses ${service:...} or ${user:...}, so each user needs a process',
      ),
    ],
  },
  {
    name: "isolation: shared with ${user:...} in env",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  notes:",
        '    stdio: { command: notes-mcp, env: { NOTES_USER: "${user:id}" } }',
        "    isolation: shared",
      ),
    },
    expected: [
      problem(
        4,
        16,
        'backends.notes.isolation: "shared" is not allowed: env uses ${service:...} or ${user:...}, so each user needs a process',
      ),
    ],
  },
  {
    name: "two backends with the same explicit prefix",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  github:",
        "    stdio: { command: github-mcp-server }",
        "  gh:",
        "    http: { url: https://gh.example.test/mcp }",
        "    prefix: github",
      ),
    },
    expected: [problem(4, 3, 'backends.gh: prefix "github" is already used by backend "github"')],
  },
  {
    name: "two backends whose default prefixes collide",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  web.search:",
        "    stdio: { command: search-a }",
        "  web-search:",
        "    stdio: { command: search-b }",
      ),
    },
    expected: [
      problem(4, 3, 'backends.web-search: prefix "web-search" is already used by backend "web.search"'),
    ],
  },
  {
    name: "a client_credentials client without a secret",
    files: {
      "registry.yaml": yaml("clients:", "  ci-bot:", "    grant_types: [client_credentials]", "    user: ci"),
    },
    expected: [problem(3, 5, "clients.ci-bot: client_credentials needs a secret")],
  },
  {
    name: "a client without redirect URIs or a secret (client_credentials by default)",
    files: { "registry.yaml": yaml("clients:", "  reporter: { groups: [bots] }") },
    expected: [problem(2, 13, "clients.reporter: client_credentials needs a secret")],
  },
  {
    name: "an authorization_code client without redirect_uris",
    files: {
      "registry.yaml": yaml(
        "clients:",
        "  web-app:",
        "    secret: web-secret",
        "    grant_types: [authorization_code, refresh_token]",
      ),
    },
    expected: [problem(3, 5, "clients.web-app: authorization_code needs redirect_uris")],
  },
  {
    name: "a service without issuer or endpoints",
    files: {
      "registry.yaml": yaml("services:", "  linear:", "    client_id: linear-client"),
    },
    expected: [
      problem(
        3,
        5,
        "services.linear: give an issuer (for discovery) or both authorization_endpoint and token_endpoint",
      ),
    ],
  },
  {
    name: "a service with an authorization_endpoint but no token_endpoint",
    files: {
      "registry.yaml": yaml(
        "services:",
        "  linear:",
        "    authorization_endpoint: https://linear.example.test/oauth/authorize",
        "    client_id: linear-client",
      ),
    },
    expected: [
      problem(
        3,
        5,
        "services.linear: give an issuer (for discovery) or both authorization_endpoint and token_endpoint",
      ),
    ],
  },
  // Remote backends with their own OAuth (http.oauth), and replicas on one store (gateway.store).
  {
    name: "oauth on an sse backend",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  remote:",
        "    sse:",
        "      url: https://mcp.example.com/sse",
        "      oauth: true",
      ),
    },
    expected: [problem(5, 7, 'backends.remote.sse: unknown key "oauth"')],
  },
  {
    name: "oauth beside an Authorization header",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  remote:",
        "    http:",
        "      url: https://mcp.example.com/mcp",
        "      oauth: true",
        '      headers: { Authorization: "Bearer x" }',
      ),
    },
    expected: [
      problem(
        6,
        33,
        "backends.remote.http.headers.Authorization: with oauth, each user's token goes in Authorization: " +
          "remove this header",
      ),
    ],
  },
  {
    name: "an oauth client_secret without its client_id",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  remote:",
        "    http:",
        "      url: https://mcp.example.com/mcp",
        "      oauth: { client_secret: s }",
      ),
    },
    expected: [
      problem(5, 31, "backends.remote.http.oauth.client_secret: a client_secret needs its client_id"),
    ],
  },
  {
    name: "oauth: false",
    files: {
      "registry.yaml": yaml(
        "backends:",
        "  remote:",
        "    http:",
        "      url: https://mcp.example.com/mcp",
        "      oauth: false",
      ),
    },
    expected: [
      problem(
        5,
        14,
        "backends.remote.http.oauth: expected true or a mapping with client_id, client_secret, scopes, resource",
      ),
    ],
  },
  {
    name: "a store without the public_url and vault_key replicas share",
    files: { "registry.yaml": yaml("gateway:", "  store: postgres://u:p@db:5432/g") },
    expected: [
      problem(
        2,
        10,
        "gateway.store: replicas on one store need gateway.public_url, the same on every replica (the issuer)",
      ),
      problem(
        2,
        10,
        "gateway.store: replicas on one store need gateway.vault_key, the same on every replica (usually " +
          "${secret:...})",
      ),
    ],
  },
];

for (const { name, expected, ...fixture } of cases) {
  Deno.test(`loadRegistry() rejects ${name}`, async () => {
    assert.deepEqual(await problemsOf(fixture), expected);
  });
}

Deno.test("loadRegistry() words every problem in the registry's terms, never in zod's", () => {
  // zod's own phrases: "Invalid option: expected one of "a"|"b"", "expected string, received number".
  const zodWording = /Invalid (input|option|type)|expected one of|received|\|"|too_(small|big)/;
  for (const { name, expected } of cases) {
    for (const { message } of expected) assert.doesNotMatch(message, zodWording, name);
  }
});

Deno.test("loadRegistry() words a value of the wrong kind where a duration is expected", async () => {
  assert.deepEqual(
    await problemsOf({ files: { "registry.yaml": yaml("gateway:", "  access_token_ttl: [1h]") } }),
    [
      problem(2, 21, "gateway.access_token_ttl: expected a duration such as 30s, 10m, 1h or 30d"),
    ],
  );
});

Deno.test("loadRegistry() reports a duplicate key together with every other problem", async () => {
  const problems = await problemsOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  auth: none",
        "  colour: blue",
        "  auth: oauth",
        "backends:",
        "  files: { stdio: { command: files-mcp } }",
        "policies:",
        '  - { id: all, effect: alow, subjects: ["*"], backends: [files] }',
      ),
      "policies/team.yaml": yaml(
        "- id: team",
        "  effect: allow",
        "  effect: deny",
        '  subjects: ["group:team"]',
        "  backends: [files]",
      ),
    },
  });
  assert.deepEqual(problems, [
    problem(3, 3, '[0]: duplicate key "effect" (first written at line 2)', "policies/team.yaml"),
    problem(3, 3, 'gateway: unknown key "colour"'),
    problem(4, 3, 'gateway: duplicate key "auth" (first written at line 2)'),
    problem(8, 24, 'policies[0].effect: must be "allow" or "deny"'),
  ]);
});

Deno.test("loadRegistry() rejects a registry file that does not exist", async () => {
  await withTempDir(async (dir) => {
    const result = await loadRegistry("missing.yaml", { cwd: dir, env: () => undefined });
    assert.deepEqual(result, {
      ok: false,
      problems: [problem(0, 0, "no such file", "missing.yaml")],
      warnings: [],
    });
  });
});

Deno.test("loadRegistry() never puts the value of an env var or secret in a message", async () => {
  const values = {
    PUBLIC_URL: "not a url: env-value-7f3a",
    GH_CLIENT_ID: "gh-id-env-value-91c2",
    listen_address: "secret-value-0d4e",
    gh_client_secret: "secret-value-b6a1",
  };
  const problems = await problemsOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        '  public_url: "${env:PUBLIC_URL}"',
        '  listen: "${secret:listen_address}"',
        "login:",
        "  providers:",
        "    github:",
        "      type: github",
        '      client_id: "${env:GH_CLIENT_ID}"',
        '      client_secret: "${secret:gh_client_secret}"',
        "      allow: { orgs: [acme] }",
        "services:",
        "  linear:",
        "    issuer: https://linear.example.test",
        '    client_id: "${env:LINEAR_CLIENT_ID}"',
        '    client_secret: "${secret:linear_secret}"',
      ),
      "data/secrets/listen_address": values.listen_address + "\n",
      "data/secrets/gh_client_secret": values.gh_client_secret + "\n",
    },
    env: { PUBLIC_URL: values.PUBLIC_URL, GH_CLIENT_ID: values.GH_CLIENT_ID },
  });
  // The values that did resolve made two fields invalid; the two that did not are reported once each.
  assert.deepEqual(problems, [
    problem(2, 15, "gateway.public_url: expected an absolute http:// or https:// URL"),
    problem(3, 11, "gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740"),
    problem(14, 16, 'environment variable "LINEAR_CLIENT_ID" is not set'),
    problem(15, 20, NOT_FOUND("linear_secret")),
  ]);
  const text = new ConfigError(problems).message;
  for (const value of Object.values(values)) {
    assert.ok(!text.includes(value), `a message quotes the value of a reference (${value.length} chars)`);
  }
});

Deno.test("loadRegistry() reports every problem of a file at once, sorted by position", async () => {
  const problems = await problemsOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  listen: 0.0.0.0:http",
        "  colour: blue",
        "backends:",
        "  files:",
        '    stdio: { command: files-mcp, env: { ROOT: "${env:FILES_ROOT}" } }',
        "    max_processes: 0",
        "  search:",
        '    http: { url: https://search.example.test/mcp, headers: { Authorization: "Bearer ${service:google}" } }',
        "policies:",
        '  - { id: all, effect: allow, subjects: ["provider:corp"], backends: [files, serach] }',
        "limits:",
        '  - { subjects: ["*"], requests_per_minute: many }',
      ),
      "policies/extra.yaml": yaml('- { id: all, effect: allow, subjects: ["*"], backends: ["*"] }'),
    },
  });
  assert.deepEqual(problems, [
    problem(1, 9, 'rule id "all" is already used in registry.yaml', "policies/extra.yaml"),
    problem(2, 11, "gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740"),
    problem(3, 3, 'gateway: unknown key "colour"'),
    problem(6, 47, 'environment variable "FILES_ROOT" is not set'),
    problem(7, 20, "backends.files.max_processes: must be at least 1"),
    problem(9, 77, 'unknown service "google": define it under services:'),
    problem(11, 42, 'unknown provider "corp" in subject'),
    problem(13, 45, "limits[0].requests_per_minute: expected a number, not a string"),
  ]);
  const lines = new ConfigError(problems).message.split("\n");
  assert.equal(lines.length, 8);
  assert.equal(lines[1], formatProblem(problems[1]!));
  assert.equal(lines[1], "registry.yaml:2:11: gateway.listen: expected HOST:PORT, such as 127.0.0.1:8740");
});

Deno.test("loadRegistry() labels problems relative to the working directory, or absolute outside it", async () => {
  await withTempDir(async (dir) => {
    await writeFiles(dir, {
      "conf/registry.yaml": yaml("gateway:", "  colour: blue"),
      "conf/policies/team.yaml": yaml("42"),
      "elsewhere/.keep": "",
    });
    const message = 'gateway: unknown key "colour"';
    const inside = await loadRegistry("conf/registry.yaml", { cwd: dir, env: () => undefined });
    assert.deepEqual(inside.ok ? [] : inside.problems, [
      problem(
        1,
        1,
        "expected a list of rules, or a mapping with policies: and/or limits:",
        "conf/policies/team.yaml",
      ),
      problem(2, 3, message, "conf/registry.yaml"),
    ]);
    const outside = await loadRegistry(`${dir}/conf/registry.yaml`, {
      cwd: `${dir}/elsewhere`,
      env: () => undefined,
    });
    assert.deepEqual(outside.ok ? [] : outside.problems.map((found) => found.file), [
      `${dir}/conf/policies/team.yaml`,
      `${dir}/conf/registry.yaml`,
    ]);
  });
});

Deno.test("formatProblem() writes file:line:col: message, or file: message for the whole file", () => {
  assert.equal(
    formatProblem(problem(3, 5, 'gateway: unknown key "colour"')),
    'registry.yaml:3:5: gateway: unknown key "colour"',
  );
  assert.equal(formatProblem(problem(0, 0, "no such file")), "registry.yaml: no such file");
});

Deno.test("ConfigError sorts its problems by file, then line, then column", () => {
  const error = new ConfigError([
    problem(9, 1, "c"),
    problem(2, 7, "b"),
    problem(2, 3, "a"),
    problem(5, 5, "p", "policies/a.yaml"),
  ]);
  assert.equal(error.code, "ERR_CONFIG");
  assert.equal(error.name, "ConfigError");
  assert.deepEqual(error.problems.map((found) => found.message), ["p", "a", "b", "c"]);
  assert.equal(
    error.message,
    ["policies/a.yaml:5:5: p", "registry.yaml:2:3: a", "registry.yaml:2:7: b", "registry.yaml:9:1: c"].join(
      "\n",
    ),
  );
  assert.ok(Object.isFrozen(error.problems));
});
