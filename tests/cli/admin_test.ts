/**
 * The administration commands (`clients`, `tokens`, `connections`) run as processes against the store of a
 * gateway while it serves, and their revocations seen refused by that gateway at once.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { openStore } from "../../src/store/store.ts";
import { hashSecret } from "../../src/core/secrets.ts";
import { runGatehouse } from "../helpers/gatehouse_process.ts";
import { withCleanup } from "../helpers/mcp_clients.ts";
import {
  basic,
  mcpInitialize,
  REDIRECT_URI,
  register,
  signedInTokens,
  startOAuthGateway,
  tokenCall,
} from "../oauth/_flow.ts";
import { connectedClient, latestAccessToken, signIn, storedToken, withWorld } from "../services/_world.ts";
import { ALICE } from "../services/_world.ts";

const CI_BOT = { secret: "ci-bot-secret-0123456789", grant_types: ["client_credentials"], user: "ci-bot" };

/** Runs `gatehouse ARGS --registry DIR/registry.yaml --data DIR/data`, keeping everything it printed. */
function adminOf(dir: string, printed: string[]) {
  return async (...args: string[]) => {
    const result = await runGatehouse([
      ...args,
      "--registry",
      join(dir, "registry.yaml"),
      "--data",
      join(dir, "data"),
    ]);
    printed.push(result.stdout, result.stderr);
    return result;
  };
}

/** None of `secrets` (nor their stored hashes) appears in anything printed. */
async function assertNoSecret(printed: string[], secrets: string[]): Promise<void> {
  const output = printed.join("\n");
  for (const secret of secrets) {
    assert.ok(secret.length >= 16, "a real secret");
    assert.ok(!output.includes(secret), "a secret was printed");
    assert.ok(!output.includes(await hashSecret(secret)), "a secret's hash was printed");
  }
}

interface Listed {
  client_id: string;
  kind: string;
  name: string;
  redirect_uris: string[];
  created_at: string | null;
  last_used_at: string | null;
  active_grants: number;
}

Deno.test("gatehouse clients and tokens: list, show and revoke on a running gateway, which refuses the revoked tokens at once", async () => {
  const gateway = await startOAuthGateway({}, { clients: { "ci-bot": CI_BOT } });
  const printed: string[] = [];
  const admin = adminOf(gateway.dir, printed);
  await withCleanup(async () => {
    const { base } = gateway;
    const first = await register(base, { client_name: "First client" });
    const second = await register(base, { client_name: "Second client" });
    const confidential = await register(base, {
      client_name: "Confidential client",
      token_endpoint_auth_method: "client_secret_basic",
    });
    assert.ok(confidential.client_secret);
    const a = await signedInTokens(base, { clientId: first.client_id });
    const b = await signedInTokens(base, { clientId: second.client_id });
    const bot = await tokenCall(base, { grant_type: "client_credentials" }, basic("ci-bot", CI_BOT.secret));
    assert.equal(bot.status, 200);
    const secrets = [
      a.tokens.access_token,
      a.tokens.refresh_token,
      b.tokens.access_token,
      b.tokens.refresh_token,
      bot.body.access_token!,
      CI_BOT.secret,
      confidential.client_secret,
      first.registration_access_token!,
      confidential.registration_access_token!,
    ];

    // list: a table with every client, the registry's marked as such.
    const table = await admin("clients", "list");
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split("\n");
    assert.match(lines[0]!, /^CLIENT ID\s+KIND\s+NAME\s+REDIRECTS\s+CREATED\s+LAST USED\s+GRANTS$/);
    const rowOf = (id: string) => lines.find((line) => line.startsWith(`${id} `));
    assert.match(rowOf("ci-bot")!, /^ci-bot\s+registry\s+ci-bot\s+-\s+-\s+\S+Z\s+1$/);
    assert.match(rowOf(first.client_id)!, /\sdynamic\s+First client\s+127\.0\.0\.1:53682\s+\S+Z\s+\S+Z\s+1$/);
    assert.match(rowOf(confidential.client_id)!, /\sConfidential client\s.*\s-\s+0$/);
    // The columns line up: every row's kind starts where the header's does.
    const kindColumn = lines[0]!.indexOf("KIND");
    for (const line of lines.slice(1)) assert.match(line.slice(kindColumn), /^(registry|dynamic) /);

    // --json
    const json = await admin("clients", "list", "--json");
    assert.equal(json.code, 0, json.stderr);
    const listed = JSON.parse(json.stdout) as Listed[];
    assert.deepEqual(
      listed.map((client) => client.client_id).sort(),
      [
        "ci-bot",
        first.client_id,
        second.client_id,
        confidential.client_id,
      ].sort(),
    );
    const firstListed = listed.find((client) => client.client_id === first.client_id)!;
    assert.equal(firstListed.kind, "dynamic");
    assert.equal(firstListed.name, "First client");
    assert.deepEqual(firstListed.redirect_uris, [REDIRECT_URI]);
    assert.equal(firstListed.active_grants, 1);
    assert.ok(firstListed.created_at && firstListed.last_used_at);
    const botListed = listed.find((client) => client.client_id === "ci-bot")!;
    assert.equal(botListed.kind, "registry");
    assert.equal(botListed.created_at, null);
    assert.ok(botListed.last_used_at, "its client_credentials grant is its last use");
    assert.equal(botListed.active_grants, 1, "its client_credentials access token");

    // show: the client in full, with its users; never a secret.
    const shown = await admin("clients", "show", first.client_id);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, new RegExp(`^client id:\\s+${first.client_id}$`, "m"));
    assert.match(shown.stdout, /^name:\s+First client$/m);
    assert.match(shown.stdout, /^confidential:\s+no /m);
    assert.match(shown.stdout, new RegExp(`^redirect uris:\\s+${REDIRECT_URI}$`, "m"));
    assert.match(shown.stdout, /^active grants:\s+1$/m);
    assert.match(shown.stdout, /^alice\s+1\s+\S+Z$/m);
    const shownJson = JSON.parse((await admin("clients", "show", confidential.client_id, "--json")).stdout);
    assert.equal(shownJson.confidential, true);
    assert.equal(shownJson.metadata.client_name, "Confidential client");
    assert.deepEqual(shownJson.users, []);
    const botShown = JSON.parse((await admin("clients", "show", "ci-bot", "--json")).stdout);
    assert.deepEqual(
      [botShown.kind, botShown.confidential, botShown.user, botShown.grant_types],
      ["registry", true, "ci-bot", ["client_credentials"]],
    );

    // clients revoke: the second client is deleted, and its tokens refused by the running gateway.
    const revoked = await admin("clients", "revoke", second.client_id);
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(
      revoked.stdout,
      `Deleted client ${second.client_id} (Second client) with 1 active grant (1 refresh token, 1 access token), 0 pending codes and 1 remembered consent.\n`,
    );
    const gone = await admin("clients", "show", second.client_id);
    assert.equal(gone.code, 1);
    assert.match(gone.stderr, /^gatehouse clients: unknown client "/);
    const secondRefresh = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: second.client_id,
      refresh_token: b.tokens.refresh_token,
    });
    assert.equal(secondRefresh.status, 401, "the client itself is gone");
    assert.equal(secondRefresh.body.error, "invalid_client");
    assert.equal((await mcpInitialize(`${base}/mcp`, b.tokens.access_token)).status, 401);

    // Alice's other grant still works, until tokens revoke --user.
    assert.notEqual((await mcpInitialize(`${base}/mcp`, a.tokens.access_token)).status, 401);
    const user = await admin("tokens", "revoke", "--user", "alice");
    assert.equal(user.code, 0, user.stderr);
    assert.equal(
      user.stdout,
      "Revoked 1 active grant of user alice (1 refresh token, 1 access token), 0 pending codes; ended 2 browser sessions.\n",
    );
    const refreshed = await tokenCall(base, {
      grant_type: "refresh_token",
      client_id: first.client_id,
      refresh_token: a.tokens.refresh_token,
    });
    assert.equal(refreshed.status, 400);
    assert.equal(refreshed.body.error, "invalid_grant");
    const refused = await mcpInitialize(`${base}/mcp`, a.tokens.access_token);
    assert.equal(refused.status, 401, "the revoked access token is refused on the next request");
    assert.match(refused.wwwAuthenticate ?? "", /error="invalid_token"/);
    const again = await admin("tokens", "revoke", "--user", "alice");
    assert.match(again.stdout, /^Revoked 0 active grants of user alice /);
    const afterwards = JSON.parse((await admin("clients", "list", "--json")).stdout) as Listed[];
    assert.equal(afterwards.find((client) => client.client_id === first.client_id)!.active_grants, 0);

    // A registry client: its tokens go, the client stays, and the output says so.
    const byClient = await admin("tokens", "revoke", "--client", "ci-bot");
    assert.equal(byClient.code, 0, byClient.stderr);
    assert.match(
      byClient.stdout,
      /^Revoked 1 active grant of client ci-bot \(0 refresh tokens, 1 access token\)/,
    );
    const botRefused = await mcpInitialize(`${base}/mcp`, bot.body.access_token!);
    assert.equal(botRefused.status, 401, "its client_credentials access token is refused too");
    const registryClient = await admin("clients", "revoke", "ci-bot");
    assert.equal(registryClient.code, 0, registryClient.stderr);
    assert.match(registryClient.stdout, /It is a registry client: it stays while the registry lists it/);
    assert.equal((await admin("clients", "show", "ci-bot")).code, 0);

    // Each revocation is in the audit log, by the command line.
    const audited = gateway.gateway.audit.recent(20, ["admin_revoke"]).reverse();
    assert.deepEqual(
      audited.map((row) => [row.subject, row.detail.by, row.detail.target]),
      [
        [second.client_id, "cli", "client"],
        ["alice", "cli", "user"],
        ["alice", "cli", "user"],
        ["ci-bot", "cli", "client_tokens"],
        ["ci-bot", "cli", "client"],
      ],
    );
    assert.equal(audited[1]!.detail.access_tokens, 1);
    assert.equal(audited[1]!.detail.browser_sessions, 2);

    await assertNoSecret(printed, secrets);
  }, () => gateway.close());
});

Deno.test("gatehouse clients, tokens and connections: usage mistakes, unknown ids and a missing store exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-admin-" });
  const printed: string[] = [];
  await withCleanup(async () => {
    await Deno.writeTextFile(join(dir, "registry.yaml"), "gateway:\n  auth: oauth\n");
    const admin = adminOf(dir, printed);
    // No store yet: an error, and nothing created.
    const missing = await admin("clients", "list");
    assert.equal(missing.code, 1);
    assert.match(
      missing.stderr,
      /^gatehouse clients: Cannot open the store: ".*gatehouse\.db" does not exist/,
    );
    assert.throws(() => Deno.statSync(join(dir, "data")), Deno.errors.NotFound);

    // The store of a stopped gateway.
    openStore(join(dir, "data")).close();
    const empty = await admin("clients", "list", "--json");
    assert.equal(empty.code, 0, empty.stderr);
    assert.deepEqual(JSON.parse(empty.stdout), []);
    const connections = await admin("connections", "list");
    assert.equal(connections.code, 0, connections.stderr);
    assert.equal(connections.stdout, "USER  SERVICE  SCOPE  EXPIRES  UPDATED\n");

    const mistakes: [string[], RegExp][] = [
      [["clients"], /Give a subcommand: "list", "show", "revoke"/],
      [["clients", "remove", "x"], /Unknown subcommand "remove"/],
      [["clients", "show"], /Give the client id/],
      [["clients", "list", "--all"], /Unknown option '--all'/],
      [["clients", "revoke", "a", "b"], /Unexpected argument 'b'/],
      [["tokens", "revoke"], /Give one of --user ID and --client ID/],
      [["tokens", "revoke", "--user", "alice", "--client", "x"], /Give one of --user ID and --client ID/],
      [["tokens", "revoke", "--user", ""], /--user must not be empty/],
      [["tokens", "list"], /Unknown subcommand "list"/],
      [["connections", "revoke", "--user", "alice"], /--service is required/],
      [["connections", "revoke", "--service", "mock"], /--user is required/],
    ];
    for (const [args, message] of mistakes) {
      const result = await admin(...args);
      assert.equal(result.code, 1, args.join(" "));
      assert.match(result.stderr, message, args.join(" "));
      assert.match(result.stderr, new RegExp(`Run "gatehouse ${args[0]} --help" for usage`), args.join(" "));
    }
    const unknown: [string[], RegExp][] = [
      [["clients", "show", "no-such-client"], /^gatehouse clients: unknown client "no-such-client"/],
      [["clients", "revoke", "no-such-client"], /^gatehouse clients: unknown client "no-such-client"/],
      [
        ["tokens", "revoke", "--client", "no-such-client"],
        /^gatehouse tokens: unknown client "no-such-client"/,
      ],
      [
        ["connections", "revoke", "--user", "alice", "--service", "mock"],
        /^gatehouse connections: user "alice" has no stored token for service "mock"/,
      ],
    ];
    for (const [args, message] of unknown) {
      const result = await admin(...args);
      assert.equal(result.code, 1, args.join(" "));
      assert.match(result.stderr, message, args.join(" "));
      assert.equal(result.stdout, "");
    }
    for (const command of ["clients", "tokens", "connections"]) {
      const help = await runGatehouse([command, "revoke", "--help"]);
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^Usage: gatehouse ${command} `));
    }
  }, () => Deno.remove(dir, { recursive: true }));
});

Deno.test("gatehouse connections: lists a user's service token without it, and revoke deletes it and revokes it at the service", async () => {
  await withWorld(async (world) => {
    const printed: string[] = [];
    const admin = adminOf(world.gateway.dir, printed);
    const alice = await signIn(world, ALICE);
    const client = await connectedClient(world, alice);
    await client.close();
    const stored = storedToken(world, "alice");
    assert.ok(stored, "alice's token is stored");
    const serviceToken = latestAccessToken(world.mock);

    const table = await admin("connections", "list");
    assert.equal(table.code, 0, table.stderr);
    const [header, row, ...more] = table.stdout.trimEnd().split("\n");
    assert.match(header!, /^USER\s+SERVICE\s+SCOPE\s+EXPIRES\s+UPDATED$/);
    assert.ok(stored.scope, "the service said which scope it granted");
    assert.match(row!, new RegExp(`^alice\\s+mock\\s+${stored.scope}\\s+\\S+Z\\s+\\S+Z$`));
    assert.deepEqual(more, []);
    const listed = JSON.parse((await admin("connections", "list", "--user", "alice", "--json")).stdout);
    assert.equal(listed.length, 1);
    assert.deepEqual([listed[0].user, listed[0].service, listed[0].scope], ["alice", "mock", stored.scope]);
    assert.ok(listed[0].updated_at);
    assert.deepEqual(JSON.parse((await admin("connections", "list", "--user", "bob", "--json")).stdout), []);

    const revoked = await admin("connections", "revoke", "--user", "alice", "--service", "mock");
    assert.equal(revoked.code, 0, revoked.stderr);
    assert.equal(
      revoked.stdout,
      "Deleted the token of user alice for service mock and revoked it at the service.\n",
    );
    assert.equal(storedToken(world, "alice"), undefined, "the running gateway no longer has it");
    assert.equal(world.mock.revocations.length, 1, "revoked at the service (RFC 7009)");
    const again = await admin("connections", "revoke", "--user", "alice", "--service", "mock");
    assert.equal(again.code, 1);
    assert.deepEqual(JSON.parse((await admin("connections", "list", "--json")).stdout), []);
    const audited = world.gateway.gateway.audit.recent(5, ["admin_revoke"]);
    assert.deepEqual(
      audited.map((entry) => [entry.subject, entry.detail]),
      [["alice", { by: "cli", target: "connection", service: "mock", outcome: "revoked" }]],
    );

    const output = printed.join("\n");
    assert.ok(!output.includes(serviceToken), "the service's access token was printed");
    assert.ok(!output.includes(stored.sealed), "the sealed token was printed");
    for (const issued of world.mock.issued) {
      if (issued.refreshToken) {
        assert.ok(!output.includes(issued.refreshToken), "a refresh token was printed");
      }
    }
    await assertNoSecret(printed, [alice.token]);
  });
});
