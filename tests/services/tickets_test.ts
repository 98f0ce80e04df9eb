/**
 * Consent links are short-lived, single use, and bound to the user and service they were made for; the
 * service's callback is single use and bound to the same browser user.
 */
import assert from "node:assert/strict";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  ALICE,
  assertConsentLink,
  BOB,
  connectClient,
  connectService,
  consentLinkOf,
  latestAccessToken,
  locationOf,
  serviceCallback,
  signIn,
  storedToken,
  whoami,
  withWorld,
  type World,
} from "./_world.ts";

/** Opens `url` in `browser` and returns the refusal page, checking its status. */
async function refused(browser: ScriptedBrowser, url: string, status: number): Promise<string> {
  const response = await browser.fetch(url);
  const page = await response.text();
  assert.equal(response.status, status, page);
  assert.match(page, /Cannot connect/);
  return page;
}

/** The link's ticket row, found by the user it was made for (only the ticket's hash is stored). */
function ticketRows(world: World, userId: string) {
  return world.gateway.gateway.store.db.prepare(
    "SELECT ticket_hash, expires_at, used_at FROM connect_tickets WHERE user_id = ? ORDER BY expires_at",
  ).all(userId) as { ticket_hash: string; expires_at: number; used_at: number | null }[];
}

Deno.test("tickets: a consent link works once; opened again it is refused", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = assertConsentLink(world.base, await consentLinkOf(client));
      const ticket = new URL(link).searchParams.get("ticket")!;
      // Only its hash is kept, and it lives about ten minutes.
      const [row] = ticketRows(world, "alice");
      assert.ok(row && row.ticket_hash !== ticket);
      const lifetimeMs = row.expires_at - Date.now();
      assert.ok(lifetimeMs > 9 * 60_000 && lifetimeMs <= 10 * 60_000, `lifetime ${lifetimeMs} ms`);

      await connectService(world, alice.browser, link);
      const page = await refused(alice.browser, link, 400);
      assert.match(page, /expired or was already used/);
      // In another browser of hers, after signing in, just the same.
      const other = new ScriptedBrowser();
      const signInPage = await (await other.fetch(link)).text();
      const signedIn = await other.post(`${world.base}/login`, { ...formFields(signInPage), ...ALICE });
      assert.equal(await locationOf(signedIn, 303, world.base), link);
      await refused(other, link, 400);
      assert.equal(world.mock.authorizations.length, 1, "the service was visited once");
      assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});

Deno.test("tickets: an expired consent link is refused", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = assertConsentLink(world.base, await consentLinkOf(client));
      // Ten minutes pass (the ticket's expiry moved into the past rather than waiting for it).
      world.gateway.gateway.store.db.prepare("UPDATE connect_tickets SET expires_at = ? WHERE user_id = ?")
        .run(Date.now() - 1, "alice");
      const page = await refused(alice.browser, link, 400);
      assert.match(page, /expired or was already used/);
      assert.equal(world.mock.authorizations.length, 0, "not sent to the service");
      assert.equal(storedToken(world, "alice"), undefined);

      // The client's retry brings a fresh link, which works.
      const fresh = await consentLinkOf(client);
      assert.notEqual(fresh, link);
      await connectService(world, alice.browser, fresh);
      assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});

Deno.test("tickets: another signed-in user opening the link gets 403, and it still works for its user", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = assertConsentLink(world.base, await consentLinkOf(client));
      const page = await refused(bob.browser, link, 403);
      assert.match(page, /belongs to another user/);
      // Signing in as bob when asked to sign in comes to the same.
      const fresh = new ScriptedBrowser();
      const signInPage = await (await fresh.fetch(link)).text();
      assert.match(signInPage, /action="\/login"/);
      const signedIn = await fresh.post(`${world.base}/login`, { ...formFields(signInPage), ...BOB });
      assert.equal(await locationOf(signedIn, 303, world.base), link);
      await refused(fresh, link, 403);
      assert.equal(world.mock.authorizations.length, 0, "nobody was sent to the service");
      assert.equal(ticketRows(world, "alice")[0]?.used_at, null, "the link is not used up by bob");

      await connectService(world, alice.browser, link);
      assert.equal(storedToken(world, "bob"), undefined, "bob got nothing");
      assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});

Deno.test("tickets: a made-up ticket, or one for another service, is refused", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      await refused(alice.browser, `${world.base}/connect/mock?ticket=made-up`, 400);
      await refused(alice.browser, `${world.base}/connect/mock`, 400);
      const link = new URL(await consentLinkOf(client));
      await refused(alice.browser, `${world.base}/connect/other${link.search}`, 400);
      assert.equal(world.mock.authorizations.length, 0);
      // Refusals did not use the real link up.
      await connectService(world, alice.browser, link.href);
    } finally {
      await client.close();
    }
  });
});

Deno.test("tickets: the service's callback completes only for the browser user who started it", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = await consentLinkOf(client);
      const toService = await locationOf(await alice.browser.fetch(link), 303, world.base);
      const callback = await locationOf(await alice.browser.fetch(toService), 302, world.mock.origin);

      // Bob's browser cannot finish alice's connection: no code exchanged, nothing stored for anyone.
      await refused(bob.browser, callback, 403);
      assert.equal(storedToken(world, "bob"), undefined);
      assert.equal(storedToken(world, "alice"), undefined);
      assert.ok(
        !world.mock.issued.some((entry) => entry.grantType === "authorization_code"),
        "no code spent",
      );
    } finally {
      await client.close();
    }
  });
});

Deno.test("tickets: a callback replayed after it succeeded is refused", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = await consentLinkOf(client);
      const toService = await locationOf(await alice.browser.fetch(link), 303, world.base);
      const callback = await locationOf(await alice.browser.fetch(toService), 302, world.mock.origin);
      const done = await alice.browser.fetch(callback);
      assert.equal(done.status, 200, await done.text());
      const page = await refused(alice.browser, callback, 400);
      assert.match(page, /expired; retry in your client/);
      assert.equal(world.mock.issued.filter((entry) => entry.grantType === "authorization_code").length, 1);
    } finally {
      await client.close();
    }
  });
});

Deno.test("ServiceConnections.finish() checks the browser's user before it uses up the attempt", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = await consentLinkOf(client);
      const callback = await serviceCallback(world, alice.browser, await alice.browser.fetch(link));

      // Bob's browser, then a signed-out one, open alice's callback: refused, and her attempt survives.
      assert.match(await refused(bob.browser, callback, 403), /Signed in as another user/);
      assert.match(await refused(new ScriptedBrowser(), callback, 403), /Not signed in/);
      assert.ok(
        !world.mock.issued.some((entry) => entry.grantType === "authorization_code"),
        "no code spent",
      );

      const done = await alice.browser.fetch(callback);
      const page = await done.text();
      assert.equal(done.status, 200, page);
      assert.match(page, /Connected/);
      assert.equal(storedToken(world, "bob"), undefined);
      assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});
