/**
 * The audit table, end to end: a real gateway on 127.0.0.1, a browser signing in (wrongly, then rightly),
 * consenting and refusing, a client redeeming, refreshing, reusing and replaying, a script using
 * client_credentials, and reloads that pass and fail; then the rows, and the absence of every secret.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { AuditLog, type AuditRow } from "../../src/audit/audit.ts";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { openStore } from "../../src/store/store.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { misbehaving, within } from "../helpers/mcp_clients.ts";
import {
  ALICE,
  aliceHashOnce,
  authorizeUrl,
  basic,
  pkce,
  REDIRECT_URI,
  register,
  startOAuthGateway,
  tokenCall,
} from "../oauth/_flow.ts";
import { gatewayCookieName } from "../../src/core/cookies.ts";

const WRONG_PASSWORD = "not-alices-password-0451";
const CI_BOT = { secret: "ci-bot-secret-for-audit-0123456789", user: "ci-bot", groups: ["bots"] };
const INLINE_SECRET = "inline-secret-in-a-broken-registry-8812";

/** The rows of `kind`, oldest first. */
function rowsOf(rows: readonly AuditRow[], kind: AuditRow["kind"]): AuditRow[] {
  return rows.filter((row) => row.kind === kind).reverse();
}

/** The value of a cookie a response sets. */
function cookieSet(response: Response, name: string): string | undefined {
  const line = response.headers.getSetCookie().find((entry) => entry.startsWith(`${name}=`));
  return line?.slice(name.length + 1).split(";")[0];
}

Deno.test("AuditLog rows: sign-ins, consents, grants, reuse, replay and reloads, and never a secret", async () => {
  const started = await startOAuthGateway({}, { clients: { "ci-bot": CI_BOT } });
  const { gateway, base } = started;
  const secrets: string[] = [ALICE.password, WRONG_PASSWORD, CI_BOT.secret, INLINE_SECRET];
  try {
    await within(
      30_000,
      (async () => {
        const client = await register(base, { client_name: "Audited client" });
        const { verifier, challenge } = await pkce();
        const browser = new ScriptedBrowser();

        // Sign-in: a wrong password, then the right one.
        const authorization = authorizeUrl(base, { client_id: client.client_id, code_challenge: challenge });
        const loginPage = await (await browser.fetch(authorization)).text();
        const loginForm = formFields(loginPage);
        secrets.push(loginForm.csrf!);
        const refused = await browser.post(`${base}/login`, {
          ...loginForm,
          username: "alice",
          password: WRONG_PASSWORD,
        });
        assert.equal(refused.status, 401);
        await refused.body?.cancel();
        const signedIn = await browser.post(`${base}/login`, { ...loginForm, ...ALICE });
        assert.equal(signedIn.status, 303);
        await signedIn.body?.cancel();
        const sessionCookie = cookieSet(signedIn, gatewayCookieName("gatehouse", base));
        assert.ok(sessionCookie, "the sign-in sets the session cookie");
        secrets.push(sessionCookie);

        // Consent: approve.
        const consentPage = await (await browser.fetch(authorization)).text();
        const consentForm = formFields(consentPage);
        secrets.push(consentForm.csrf!);
        const approved = await browser.post(`${base}/authorize/consent`, {
          ...consentForm,
          decision: "allow",
        });
        assert.equal(approved.status, 303);
        await approved.body?.cancel();
        const code = new URL(approved.headers.get("location")!).searchParams.get("code");
        assert.ok(code, "a code");
        secrets.push(code, verifier);

        // A second client, refused.
        const other = await register(base, { client_name: "Refused client" });
        const otherPkce = await pkce();
        const otherPage = await (await browser.fetch(
          authorizeUrl(base, { client_id: other.client_id, code_challenge: otherPkce.challenge }),
        )).text();
        const denied = await browser.post(`${base}/authorize/consent`, {
          ...formFields(otherPage),
          decision: "deny",
        });
        assert.equal(denied.status, 303);
        await denied.body?.cancel();
        assert.equal(new URL(denied.headers.get("location")!).searchParams.get("error"), "access_denied");

        // The code grant, a refresh, the old refresh token again, the code again.
        const redeem = {
          grant_type: "authorization_code",
          client_id: client.client_id,
          code,
          code_verifier: verifier,
          redirect_uri: REDIRECT_URI,
        };
        const first = await tokenCall(base, redeem);
        assert.equal(first.status, 200, JSON.stringify(first.body));
        const firstRefresh = first.body.refresh_token!;
        secrets.push(first.body.access_token!, firstRefresh);
        const refreshed = await tokenCall(base, {
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: firstRefresh,
        });
        assert.equal(refreshed.status, 200, JSON.stringify(refreshed.body));
        secrets.push(refreshed.body.access_token!, refreshed.body.refresh_token!);
        // Its successor used: the old token again is a reuse, not a retry of a lost answer.
        const rotatedAgain = await tokenCall(base, {
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: refreshed.body.refresh_token!,
        });
        assert.equal(rotatedAgain.status, 200, JSON.stringify(rotatedAgain.body));
        secrets.push(rotatedAgain.body.access_token!, rotatedAgain.body.refresh_token!);
        const reused = await tokenCall(base, {
          grant_type: "refresh_token",
          client_id: client.client_id,
          refresh_token: firstRefresh,
        });
        assert.equal(reused.body.error, "invalid_grant");
        const replayed = await tokenCall(base, redeem);
        assert.equal(replayed.body.error, "invalid_grant");

        // A script's token.
        const script = await tokenCall(
          base,
          { grant_type: "client_credentials" },
          basic("ci-bot", CI_BOT.secret),
        );
        assert.equal(script.status, 200, JSON.stringify(script.body));
        secrets.push(script.body.access_token!);

        // A reload that adds a backend, and one that is rejected.
        const registry = {
          gateway: { auth: "oauth", shutdown_timeout: "1s" },
          login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
          clients: { "ci-bot": CI_BOT },
          backends: { mis: misbehaving("mis"), other: misbehaving("other"), third: misbehaving("third") },
        };
        await started.reload(registry);
        await Deno.writeTextFile(
          join(started.dir, "registry.yaml"),
          [
            "gateway:",
            "  auth: sometimes",
            "clients:",
            `  leaky: { secret: "${INLINE_SECRET}", colour: blue }`,
            "",
          ]
            .join("\n"),
        );
        assert.equal(await gateway.watcher!.reload(), false, "the broken registry is rejected");
      })(),
      "the flow",
    );

    const rows = gateway.audit.recent(1000);

    const [failed] = rowsOf(rows, "sign_in_failed");
    assert.equal(failed?.subject, "alice");
    assert.deepEqual(failed?.detail, { method: "password", address: "127.0.0.1", reason: "wrong_password" });
    const [signIn] = rowsOf(rows, "sign_in");
    assert.equal(signIn?.subject, "alice");
    assert.deepEqual(signIn?.detail, { method: "password", address: "127.0.0.1" });

    const consents = rowsOf(rows, "consent");
    assert.deepEqual(consents.map((row) => [row.subject, row.detail.decision, row.detail.client_name]), [
      ["alice", "approve", "Audited client"],
      ["alice", "deny", "Refused client"],
    ]);
    assert.equal(consents[0]!.detail.resource, `${base}/mcp`);
    assert.equal(consents[0]!.detail.redirect_host, new URL(REDIRECT_URI).host);

    const grants = rowsOf(rows, "token_grant");
    assert.deepEqual(
      grants.map((row) => [row.subject, row.detail.grant_type, row.detail.client_id]),
      [
        ["alice", "authorization_code", consents[0]!.detail.client_id],
        ["alice", "refresh_token", consents[0]!.detail.client_id],
        ["alice", "refresh_token", consents[0]!.detail.client_id],
        ["ci-bot", "client_credentials", "ci-bot"],
      ],
    );
    for (const grant of grants) {
      assert.equal(grant.detail.resource, `${base}/mcp`);
      assert.equal(grant.detail.scope, "mcp");
    }

    const [reuse] = rowsOf(rows, "refresh_reuse");
    assert.equal(reuse?.subject, "alice");
    assert.equal(reuse?.detail.client_id, consents[0]!.detail.client_id);
    const [replay] = rowsOf(rows, "code_replay");
    assert.equal(replay?.subject, "alice");
    assert.equal(replay?.detail.tokens_revoked, true);

    const reload = rowsOf(rows, "reload").find((row) => row.detail.added === 1);
    assert.ok(reload, `a reload row that adds one backend: ${JSON.stringify(rowsOf(rows, "reload"))}`);
    assert.equal(reload.subject, undefined);
    assert.deepEqual({ ...reload.detail, generation: 0 }, {
      generation: 0,
      added: 1,
      removed: 0,
      changed: 0,
      unchanged: 2,
    });
    const [rejected] = rowsOf(rows, "reload_rejected");
    const problems = rejected?.detail.problems as string[] | undefined;
    assert.ok(problems && problems.length >= 2, JSON.stringify(rejected));
    for (const problem of problems) assert.match(problem, /registry\.yaml:\d+:\d+: /);
    assert.ok(problems.some((problem) => problem.startsWith(`${join(started.dir, "registry.yaml")}:2:9: `)));

    // No secret in any row, nor in any log line.
    const everything = JSON.stringify(rows);
    const logs = JSON.stringify(started.logs);
    for (const secret of secrets) {
      assert.ok(secret.length >= 16, `a secret worth looking for: ${secret}`);
      assert.ok(!everything.includes(secret), `an audit row holds a secret: ${secret}`);
      assert.ok(!logs.includes(secret), `a log line holds a secret: ${secret}`);
    }
  } finally {
    await started.close();
  }
});

Deno.test("AuditLog.prune() deletes only rows older than the retention", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-audit-" });
  const store = openStore(dir);
  try {
    let now = Date.parse("2026-01-01T00:00:00Z");
    const audit = new AuditLog(store, () => now);
    audit.record("reload", undefined, { generation: 2 });
    now += 10 * 86400_000;
    audit.record("sign_in", "alice", { method: "password" });
    now += 85 * 86400_000;
    assert.equal(audit.prune(90 * 86400_000), 1);
    assert.deepEqual(audit.recent(10).map((row) => row.kind), ["sign_in"]);
    assert.deepEqual(audit.recent(10, ["reload"]), []);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("startGateway() prunes the audit table at start by gateway.audit_retention", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-audit-" });
  const registryPath = join(dir, "registry.yaml");
  const start = async (now: () => number): Promise<RunningGateway> =>
    await startGateway({
      registryPath,
      listen: "127.0.0.1:0",
      dataDir: join(dir, "data"),
      log: createLogger({ level: "error", write: () => {} }),
      watch: false,
      now,
    });
  try {
    await Deno.writeTextFile(
      registryPath,
      JSON.stringify({ gateway: { auth: "none", shutdown_timeout: "1s", audit_retention: "7d" } }),
    );
    const then = Date.parse("2026-03-01T00:00:00Z");
    const first = await start(() => then);
    try {
      first.audit.record("sign_in", "old", {});
      first.audit.record("sign_in", "recent", {});
      first.store.db.prepare("UPDATE audit SET at = ? WHERE subject = 'recent'").run(then + 2 * 86400_000);
    } finally {
      await within(8_000, first.shutdown(), "gateway shutdown");
    }
    // Eight days on: the first row is past seven days, the second is not.
    const second = await start(() => then + 8 * 86400_000);
    try {
      assert.deepEqual(second.audit.recent(10).map((row) => row.subject), ["recent"]);
    } finally {
      await within(8_000, second.shutdown(), "gateway shutdown");
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
