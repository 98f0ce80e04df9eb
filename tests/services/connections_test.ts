/**
 * Users' connections to a third-party service, end to end: each user's own token and stdio process,
 * refresh before expiry (and what a refused refresh does), encryption at rest, and /connections with its
 * disconnect button.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import type { Client } from "@modelcontextprotocol/client";
import { textOf, withCleanup } from "../helpers/mcp_clients.ts";
import {
  ALICE,
  assertConsentLink,
  BOB,
  connectClient,
  connectedClient,
  connectService,
  consentLinkOf,
  latestAccessToken,
  locationOf,
  makeRefreshDue,
  refreshes,
  SERVICE_CLIENT_ID,
  signIn,
  storedToken,
  whoami,
  withWorld,
} from "./_world.ts";

/** Of `pids`, those still running (not exited, nor exited and waiting to be reaped) after a short grace. */
async function survivingProcesses(pids: Iterable<number>): Promise<number[]> {
  const running = (pid: number) => {
    try {
      // /proc/PID/stat: "pid (comm) state ..."; Z is a process that has exited.
      const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return stat.slice(stat.lastIndexOf(")") + 2, stat.lastIndexOf(")") + 3) !== "Z";
    } catch {
      return false;
    }
  };
  const deadline = Date.now() + 3_000;
  while ([...pids].some(running) && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return [...pids].filter(running);
}

Deno.test("connections: a second user gets their own token and their own stdio process", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const aliceClient = await connectedClient(world, alice);
    let bobClient: Client | undefined;
    try {
      const aliceToken = latestAccessToken(world.mock);
      const aliceStdio = await whoami(aliceClient, "stdio-tok");
      assert.equal(aliceStdio.token, aliceToken);
      assert.equal((await whoami(aliceClient, "http-tok")).authorization, `Bearer ${aliceToken}`);
      // Listed once by a connected user, the tools are shown to users who have not connected yet.
      const aliceLists = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
      await aliceLists.listTools().finally(() => aliceLists.close());
      bobClient = await connectClient(world.gateway.mcpUrl, bob.token, "plain");
      const bobNames = (await bobClient.listTools()).tools.map((tool) => tool.name).sort();
      assert.deepEqual(bobNames, ["http-tok__whoami", "stdio-tok__whoami"]);

      // Alice's connection is hers: bob is asked to connect his own account.
      const bobLink = assertConsentLink(world.base, await consentLinkOf(bobClient, "http-tok"));
      await connectService(world, bob.browser, bobLink);
      const bobToken = latestAccessToken(world.mock);
      assert.notEqual(bobToken, aliceToken);

      const bobStdio = await whoami(bobClient, "stdio-tok");
      assert.equal(bobStdio.token, bobToken);
      assert.notEqual(bobStdio.pid, aliceStdio.pid, "bob has his own process");
      assert.equal((await whoami(bobClient, "http-tok")).authorization, `Bearer ${bobToken}`);

      // Alice is unaffected: same process, same token, her header.
      assert.deepEqual(await whoami(aliceClient, "stdio-tok"), aliceStdio);
      assert.equal((await whoami(aliceClient, "http-tok")).authorization, `Bearer ${aliceToken}`);
      assert.equal(refreshes(world.mock).length, 0);
    } finally {
      await bobClient?.close();
      await aliceClient.close();
    }
  });
});

Deno.test("connections: a token about to expire is refreshed; the stdio process restarts with it, HTTP gets the new header", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    // Bob's token lives long; alice's tokens live 30 s, less than the usual one-minute refresh margin.
    const bobClient = await connectedClient(world, bob);
    world.mock.codeExpiresInSeconds = 30;
    world.mock.refreshExpiresInSeconds = 30;
    const client = await connectedClient(world, alice);
    try {
      const bobBefore = await whoami(bobClient, "stdio-tok");
      const first = world.mock.issued.at(-1)!;
      const before = await whoami(client, "stdio-tok");
      assert.equal(before.token, first.accessToken);
      assert.equal((await whoami(client, "http-tok")).authorization, `Bearer ${first.accessToken}`);
      assert.equal(refreshes(world.mock).length, 0, "not refreshed while still fresh");

      makeRefreshDue(world, "alice");
      const after = await whoami(client, "stdio-tok");
      const [refresh, ...more] = refreshes(world.mock);
      assert.equal(more.length, 0, "refreshed once");
      assert.equal(refresh?.presented, first.refreshToken, "with the refresh token the service gave");
      assert.equal(refresh?.status, 200);
      assert.ok(refresh?.accessToken && refresh.accessToken !== first.accessToken);
      assert.equal(after.token, refresh.accessToken, "the stdio backend has the new token");
      assert.notEqual(after.pid, before.pid, "in a restarted process");
      assert.ok(
        world.gateway.logs.some((line) => line.msg === "restarting a process for a refreshed service token"),
      );

      assert.equal((await whoami(client, "http-tok")).authorization, `Bearer ${refresh.accessToken}`);
      assert.deepEqual(await whoami(client, "stdio-tok"), after, "no restart while the token is unchanged");
      assert.equal(refreshes(world.mock).length, 1, "a 30 s token is not refreshed on every call");
      // Bob's process and token are untouched by alice's refresh.
      assert.deepEqual(await whoami(bobClient, "stdio-tok"), bobBefore);
    } finally {
      await client.close();
      await bobClient.close();
    }
  });
});

Deno.test("connections: concurrent calls share one refresh", async () => {
  await withWorld(async (world) => {
    world.mock.codeExpiresInSeconds = 30;
    const alice = await signIn(world, ALICE);
    const client = await connectedClient(world, alice, `${world.base}/mcp`);
    try {
      makeRefreshDue(world, "alice");
      const answers = await Promise.all([1, 2, 3, 4].map(() => whoami(client, "http-tok")));
      assert.equal(refreshes(world.mock).length, 1, "one refresh for four calls");
      const refreshed = `Bearer ${refreshes(world.mock)[0]!.accessToken}`;
      assert.deepEqual(answers.map((answer) => answer.authorization), [
        refreshed,
        refreshed,
        refreshed,
        refreshed,
      ]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("connections: concurrent calls after a refresh restart the user's stdio process once, not twice", async () => {
  const pids = new Set<number>();
  await withCleanup(
    () =>
      withWorld(async (world) => {
        world.mock.codeExpiresInSeconds = 30;
        const alice = await signIn(world, ALICE);
        const client = await connectedClient(world, alice);
        try {
          pids.add((await whoami(client, "stdio-tok")).pid!);
          makeRefreshDue(world, "alice");
          const answers = await Promise.all([1, 2, 3].map(() => whoami(client, "stdio-tok")));
          for (const answer of answers) pids.add(answer.pid!);
          const refreshed = refreshes(world.mock)[0]?.accessToken;
          assert.deepEqual(answers.map((answer) => answer.token), [refreshed, refreshed, refreshed]);
          assert.deepEqual(
            answers.map((answer) => answer.pid),
            answers.map(() => answers[0]!.pid),
            "one process per user serves them all",
          );
          const started = world.gateway.logs.filter((line) => line.msg === "backend connected");
          assert.equal(started.length, 2, "started with the first token, then once with the refreshed one");
        } finally {
          await client.close();
        }
      }),
    async () => {
      // A process the gateway lost track of outlives it: stop it (this test started it) and say so.
      const survivors = await survivingProcesses(pids);
      for (const pid of survivors) Deno.kill(pid, "SIGKILL");
      assert.deepEqual(survivors, [], "every backend process ended with the gateway");
    },
  );
});

Deno.test("connections: a refresh refused with invalid_grant forgets the token and brings the link back", async () => {
  await withWorld(async (world) => {
    world.mock.codeExpiresInSeconds = 30;
    const alice = await signIn(world, ALICE);
    const client = await connectedClient(world, alice);
    try {
      const before = await whoami(client, "stdio-tok");
      makeRefreshDue(world, "alice");
      world.mock.refuseRefresh = true;

      const link = assertConsentLink(world.base, await consentLinkOf(client, "stdio-tok"));
      assert.deepEqual(refreshes(world.mock).map((entry) => entry.status), [400]);
      assert.equal(storedToken(world, "alice"), undefined, "the token is deleted");
      assert.ok(
        world.gateway.logs.some((line) => line.msg === "service refresh refused; consent needed again"),
      );
      // Without a token there is nothing to refresh: the HTTP backend asks for consent too, at once.
      assertConsentLink(world.base, await consentLinkOf(client, "http-tok"));
      assert.equal(refreshes(world.mock).length, 1);

      // Connecting again works, and the process picks the new token up.
      world.mock.codeExpiresInSeconds = undefined;
      await connectService(world, alice.browser, link);
      const after = await whoami(client, "stdio-tok");
      assert.equal(after.token, latestAccessToken(world.mock));
      assert.notEqual(after.token, before.token);
      assert.notEqual(after.pid, before.pid);

      // The audit log: connected, forgotten on invalid_grant, connected again.
      const rows = world.gateway.gateway.audit.recent(100, ["connection", "disconnection"]).reverse();
      assert.deepEqual(rows.map((row) => [row.kind, row.subject, row.detail.service, row.detail.reason]), [
        ["connection", "alice", "mock", undefined],
        ["disconnection", "alice", "mock", "invalid_grant"],
        ["connection", "alice", "mock", undefined],
      ]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("connections: the database and the logs never hold a service token in plaintext", async () => {
  await withWorld(async (world) => {
    world.mock.codeExpiresInSeconds = 30;
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const aliceClient = await connectedClient(world, alice);
    const bobClient = await connectedClient(world, bob);
    try {
      await whoami(aliceClient, "stdio-tok");
      makeRefreshDue(world, "alice");
      await whoami(aliceClient, "http-tok"); // refreshed: the new pair is stored too
      await whoami(bobClient, "http-tok");

      const secrets = world.mock.issued.flatMap((entry) => [entry.accessToken, entry.refreshToken])
        .filter((value): value is string => value !== undefined);
      assert.ok(secrets.length >= 6, `tokens issued: ${secrets.length}`);
      const dataDir = join(world.gateway.dir, "data");
      const files = [...Deno.readDirSync(dataDir)].map((entry) => entry.name)
        .filter((name) => name.startsWith("gatehouse.db"));
      assert.ok(files.includes("gatehouse.db"), files.join());
      // The database file and its write-ahead log, as they are on disk right now.
      const contents = files.map((name) => ({
        name,
        text: new TextDecoder("latin1").decode(Deno.readFileSync(join(dataDir, name))),
      }));
      for (const { name, text } of contents) {
        for (const secret of secrets) {
          assert.ok(!text.includes(secret), `${name} holds a token in plaintext`);
          // Not even a recognisable piece of one (the JWT's signature part).
          assert.ok(!text.includes(secret.split(".").at(-1)!), `${name} holds part of a token`);
        }
      }
      const logs = JSON.stringify(world.gateway.logs);
      for (const secret of secrets) assert.ok(!logs.includes(secret), "the logs hold a token");

      // What is stored is the sealed form, for both users; the key is the data directory's, owner-only.
      for (const user of ["alice", "bob"]) {
        const row = storedToken(world, user);
        assert.ok(row && /^[A-Za-z0-9_-]+$/.test(row.sealed), `${user}'s token is stored sealed`);
        // The scan above does see what is stored: the sealed form is there to be found.
        assert.ok(
          contents.some(({ text }) => text.includes(row.sealed)),
          `${user}'s sealed token is on disk`,
        );
      }
      assert.equal(Deno.statSync(join(dataDir, "vault.key")).mode! & 0o777, 0o600);
    } finally {
      await bobClient.close();
      await aliceClient.close();
    }
  });
});

Deno.test("connections: /connections lists the service with a disconnect button that forgets and revokes the token", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const client = await connectedClient(world, alice);
    try {
      const issued = world.mock.issued.at(-1)!;
      assert.equal((await whoami(client, "stdio-tok")).token, issued.accessToken);

      const page = await (await alice.browser.fetch(`${world.base}/connections`)).text();
      assert.match(page, /Signed in as <strong>alice<\/strong>/);
      assert.match(page, /<h2>mock<\/h2>/);
      assert.match(page, /<dt>Granted scope<\/dt><dd><code>dummy<\/code><\/dd>/);
      assert.match(
        page,
        /<dt>Token expires<\/dt><dd><time datetime="\d{4}-\d\d-\d\dT[^"]+"[^>]*>in 1 hour<\/time>/,
      );
      assert.match(page, /action="\/connections\/mock\/disconnect"/);
      assert.match(page, />Disconnect<\/button>/);
      // Bob sees his own (none), and a browser without a session is asked to sign in.
      assert.match(
        await (await bob.browser.fetch(`${world.base}/connections`)).text(),
        /No services connected/,
      );
      const signedOut = await (await new ScriptedBrowser().fetch(`${world.base}/connections`)).text();
      assert.match(signedOut, /action="\/login"/);

      // Without the form's csrf value, nothing happens.
      const forged = await alice.browser.post(`${world.base}/connections/mock/disconnect`, {
        csrf: "forged",
      });
      assert.equal(forged.status, 403);
      await forged.body?.cancel();
      // Nor from bob's session with bob's csrf: his own (absent) connection is all he can disconnect.
      const bobPage = await (await bob.browser.fetch(`${world.base}/connections`)).text();
      const bobCsrf = formFields(bobPage).csrf ?? (bobPage.match(/name="csrf" value="([^"]+)"/)?.[1] ?? "");
      await (await bob.browser.post(`${world.base}/connections/mock/disconnect`, { csrf: bobCsrf })).body
        ?.cancel();
      assert.ok(storedToken(world, "alice"), "still connected");
      assert.equal(world.mock.revocations.length, 0);

      const disconnected = await alice.browser.post(
        `${world.base}/connections/mock/disconnect`,
        formFields(page),
      );
      assert.equal(await locationOf(disconnected, 303, world.base), `${world.base}/connections`);
      assert.equal(storedToken(world, "alice"), undefined, "forgotten");
      assert.match(
        await (await alice.browser.fetch(`${world.base}/connections`)).text(),
        /No services connected/,
      );

      // Revoked at the service (it offers revocation): the refresh token, with the client's credentials.
      assert.equal(world.mock.revocations.length, 1);
      const [revocation] = world.mock.revocations;
      assert.equal(revocation!.form.token, issued.refreshToken);
      const basic = atob((revocation!.authorization ?? "").replace(/^Basic /, ""));
      assert.ok(basic.startsWith(`${SERVICE_CLIENT_ID}:`), "the client authenticates");

      // The next call asks for consent again.
      const again = await client.callTool({ name: "stdio-tok__whoami", arguments: {} });
      assert.equal(again.isError, true);
      assertConsentLink(world.base, (again._meta as { auth_url?: string }).auth_url);
      assert.match(textOf(again), /Connect your mock account/);

      // The audit log: alice connected, then disconnected herself; bob's empty disconnect left no row.
      const rows = world.gateway.gateway.audit.recent(100, ["connection", "disconnection"]).reverse();
      assert.deepEqual(rows.map((row) => [row.kind, row.subject, row.detail.service, row.detail.reason]), [
        ["connection", "alice", "mock", undefined],
        ["disconnection", "alice", "mock", "user"],
      ]);
    } finally {
      await client.close();
    }
  });
});
