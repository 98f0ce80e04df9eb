/**
 * Issue 18, end to end with two real Gatehouses: a user of Gatehouse A calls a tool of Gatehouse B (which
 * demands its own sign-in) through A after one consent, and B sees that user as its own user; A registers
 * at B dynamically (A on plain http) or by its client ID metadata document (A on https).
 */
import assert from "node:assert/strict";
import { activeGrants } from "../../src/oauth/grants.ts";
import { listConnections } from "../../src/services/connections.ts";
import { listUpstreamClients } from "../../src/store/upstream_clients.ts";
import { formFields } from "../helpers/browser_session.ts";
import { runGatehouse } from "../helpers/gatehouse_process.ts";
import { textOf } from "../helpers/mcp_clients.ts";
import { connectClient, linkOfToolResult } from "./_world.ts";
import {
  ALICE,
  ALICE_AT_B,
  assertOnlyBTokensReachedB,
  BACKEND,
  BOB,
  BOB_AT_B,
  type Chain,
  connectThroughB,
  PLACEHOLDER_TOOL,
  SERVICE,
  signInAtA,
  storedAtA,
  tokensSentToB,
  WHOAMI,
  withChain,
} from "./_chained_gatehouses.ts";
import type { Client } from "@modelcontextprotocol/client";
import { join } from "node:path";

/** What B's `who` backend answered: the B user id it was started for (`${user:id}`). */
async function whoamiAtB(client: Client): Promise<{ token: string; pid: number }> {
  const result = await client.callTool({ name: WHOAMI, arguments: {} });
  assert.ok(!result.isError, `the call through A failed: ${JSON.stringify(result)}`);
  return JSON.parse(textOf(result));
}

/** Asserts a consent link of A for the remote backend. */
function assertLinkOfA(chain: Chain, link: string): void {
  const url = new URL(link);
  assert.equal(`${url.origin}${url.pathname}`, `${chain.aPublic}/connect/${SERVICE}`);
  assert.ok((url.searchParams.get("ticket") ?? "").length >= 20, "a ticket");
}

/** B's OAuth clients, as its store holds them. */
function clientsOfB(chain: Chain): { client_id: string; kind: string; redirect_uris: string[] }[] {
  const rows = chain.b.gateway.store.db.prepare(
    "SELECT client_id, kind, metadata FROM oauth_clients ORDER BY client_id",
  ).all() as { client_id: string; kind: string; metadata: string }[];
  return rows.map((row) => ({
    client_id: row.client_id,
    kind: row.kind,
    redirect_uris: (JSON.parse(row.metadata) as { redirect_uris?: string[] }).redirect_uris ?? [],
  }));
}

Deno.test("remote backend: a user of A calls B's tool through A after one consent, as herself at B (2025-11-25; A registers at B dynamically)", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const client = await connectClient(chain.a.mcpUrl, alice.token, "plain");
    try {
      // Nothing connected yet: the placeholder tool stands for B's tools.
      const before = await client.listTools();
      assert.deepEqual(before.tools.map((tool) => tool.name), [PLACEHOLDER_TOOL]);

      // The call brings the consent link (a tool result: this client declares no elicitation).
      const link = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      assertLinkOfA(chain, link);
      assert.equal(storedAtA(chain.a, "alice"), undefined, "nothing stored before the consent");

      const journey = await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
      assert.ok(journey.signInAsked, "alice signed in at B, with her password there");
      assert.ok(journey.consentAsked, "B asked alice to approve A");
      assert.match(journey.page, /Return to your client/);
      const asked = journey.authorization;
      assert.equal(asked.get("resource"), chain.b.mcpUrl, "a token for B's /mcp only (RFC 8707)");
      assert.equal(asked.get("code_challenge_method"), "S256");
      assert.ok(asked.get("code_challenge"));
      assert.equal(asked.get("scope"), "mcp", "the scopes B's resource metadata lists");
      assert.equal(asked.get("redirect_uri"), `${chain.aPublic}/connect/backend:remote/callback`);

      // A on plain http: its client id cannot be a metadata document, so it registered at B (RFC 7591).
      const registered = listUpstreamClients(chain.a.gateway.store);
      assert.equal(registered.length, 1, JSON.stringify(registered));
      assert.equal(registered[0]!.backend, BACKEND);
      assert.equal(registered[0]!.issuer, chain.b.base);
      assert.equal(asked.get("client_id"), registered[0]!.clientId);
      assert.deepEqual(clientsOfB(chain), [{
        client_id: registered[0]!.clientId,
        kind: "dynamic",
        redirect_uris: [asked.get("redirect_uri")!],
      }]);
      assert.deepEqual(chain.b.fetchedDocuments, [], "B fetched no metadata document");

      // The same call now answers with B's identity, and the real tools replace the placeholder.
      const answer = await whoamiAtB(client);
      assert.equal(answer.token, "alice", "B's backend was started for B's user alice");
      const after = await client.listTools();
      assert.ok(after.tools.some((tool) => tool.name === WHOAMI), JSON.stringify(after.tools));
      assert.ok(!after.tools.some((tool) => tool.name === PLACEHOLDER_TOOL));

      // A kept B's token (sealed), and never sent its own token to B; B refused nothing.
      const stored = storedAtA(chain.a, "alice");
      assert.ok(stored, "A stored alice's token for backend:remote");
      assert.equal(stored.scope, "mcp");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"]);
      assert.deepEqual(
        chain.b.tap.requests.filter((request) => request.status === 401),
        [{ method: "POST", path: "/mcp", authorization: null, status: 401 }],
        "B refused only A's discovery request, which carried no token",
      );
    } finally {
      await client.close();
    }
  });
});

Deno.test("remote backend: a token about to expire is refreshed at B once, and the new token is what B sees", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const client = await connectClient(chain.a.mcpUrl, alice.token, "plain");
    try {
      const link = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
      assert.equal((await whoamiAtB(client)).token, "alice");
      const firstToken = tokensSentToB(chain.b).at(-1)!.claims.jti;

      // As if the hour had passed: the next call must refresh first.
      chain.a.gateway.store.db.prepare(
        "UPDATE service_tokens SET expires_at = ? WHERE user_id = 'alice' AND service = ?",
      ).run(Date.now(), SERVICE);
      const [first, second] = await Promise.all([whoamiAtB(client), whoamiAtB(client)]);
      assert.deepEqual([first.token, second.token], ["alice", "alice"]);
      const tokenRequests = chain.b.tap.requests.filter((request) => request.path === "/token");
      assert.equal(tokenRequests.length, 2, "the code exchange, then one refresh");
      assert.ok(tokenRequests.every((request) => request.status === 200));
      const lastToken = tokensSentToB(chain.b).at(-1)!.claims;
      assert.notEqual(lastToken.jti, firstToken, "the refreshed token reached B");
      assert.equal(lastToken.sub, "alice");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("remote backend: with an https public_url, A is B's client by its client ID metadata document (B's registration off; 2025-11-25 -32042)", async () => {
  await withChain(async (chain) => {
    assert.equal(chain.aPublic, "https://a.gatehouse.test");
    const alice = await signInAtA(chain.aBase, ALICE, chain.aliases);
    const asked: { url?: string; mode?: string }[] = [];
    const client = await connectClient(chain.a.mcpUrl, alice.token, "legacy-url", {
      onElicitation(params) {
        asked.push(params);
        return { action: "accept" };
      },
    });
    try {
      // A 2025-11-25 client declaring URL elicitation: the call fails with -32042 carrying the link.
      let link: string | undefined;
      await assert.rejects(client.callTool({ name: WHOAMI, arguments: {} }), (error: unknown) => {
        const data = error as { code?: number; data?: { elicitations?: { url: string }[] } };
        assert.equal(data.code, -32042, String(error));
        link = data.data?.elicitations?.[0]?.url;
        return true;
      });
      assert.ok(link, "the elicitation's link");
      assertLinkOfA(chain, link);

      const journey = await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
      const documentUrl = "https://a.gatehouse.test/oauth/client-metadata.json";
      assert.equal(journey.authorization.get("client_id"), documentUrl, "A's client id is its document");
      assert.ok(chain.b.fetchedDocuments.includes(documentUrl), "B fetched A's document");
      assert.deepEqual(listUpstreamClients(chain.a.gateway.store), [], "no dynamic registration");
      assert.deepEqual(clientsOfB(chain).map(({ client_id, kind }) => ({ client_id, kind })), [
        { client_id: documentUrl, kind: "metadata_document" },
      ]);
      assert.ok(
        clientsOfB(chain)[0]!.redirect_uris.includes(journey.authorization.get("redirect_uri")!),
        "the document lists the callback A asked B to send the browser back to",
      );

      assert.equal((await whoamiAtB(client)).token, "alice");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"]);
    } finally {
      await client.close();
    }
  }, { aGateway: { public_url: "https://a.gatehouse.test" }, b: { registration: "off" } });
});

Deno.test("remote backend: two users of A connect separately, each as themselves at B; /connections and `gatehouse connections` show both", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const bob = await signInAtA(chain.aBase, BOB);
    const aliceClient = await connectClient(chain.a.mcpUrl, alice.token, "plain");
    const bobClient = await connectClient(chain.a.mcpUrl, bob.token, "plain");
    try {
      const aliceLink = linkOfToolResult(await aliceClient.callTool({ name: WHOAMI, arguments: {} }));
      await connectThroughB(alice.browser, aliceLink, chain.b, chain.aPublic, ALICE_AT_B);
      assert.equal((await whoamiAtB(aliceClient)).token, "alice");

      // Alice's connection is hers alone: bob is asked for his own.
      const bobLink = linkOfToolResult(await bobClient.callTool({ name: WHOAMI, arguments: {} }));
      assertLinkOfA(chain, bobLink);
      await connectThroughB(bob.browser, bobLink, chain.b, chain.aPublic, BOB_AT_B);
      const bobAnswer = await whoamiAtB(bobClient);
      const aliceAnswer = await whoamiAtB(aliceClient);
      assert.equal(bobAnswer.token, "bob", "bob is bob at B");
      assert.equal(aliceAnswer.token, "alice", "alice is still alice at B");
      assert.notEqual(bobAnswer.pid, aliceAnswer.pid, "B runs a process per B user");
      assert.deepEqual(
        listConnections(chain.a.gateway.store).map(({ userId, service }) => ({ userId, service })),
        [{ userId: "alice", service: SERVICE }, { userId: "bob", service: SERVICE }],
      );
      assertOnlyBTokensReachedB(chain, [alice.token, bob.token], ["alice", "bob"]);

      // Each user's /connections at A shows the server by its backend name.
      for (const user of [alice, bob]) {
        const page = await user.browser.fetch(`${chain.aBase}/connections`);
        const html = await page.text();
        assert.equal(page.status, 200, html);
        assert.match(html, /<h2>remote \(MCP server\)<\/h2>/);
        assert.match(html, /Disconnect/);
      }

      // The administrator's view, from the store of the running gateway.
      const listed = await runGatehouse([
        "connections",
        "list",
        "--json",
        "--registry",
        join(chain.a.dir, "registry.yaml"),
        "--data",
        join(chain.a.dir, "data"),
      ]);
      assert.equal(listed.code, 0, listed.stderr);
      const rows = JSON.parse(listed.stdout) as { user: string; service: string; scope: string }[];
      assert.deepEqual(rows.map(({ user, service, scope }) => ({ user, service, scope })), [
        { user: "alice", service: SERVICE, scope: "mcp" },
        { user: "bob", service: SERVICE, scope: "mcp" },
      ]);
      const table = await runGatehouse([
        "connections",
        "list",
        "--user",
        "bob",
        "--registry",
        join(chain.a.dir, "registry.yaml"),
        "--data",
        join(chain.a.dir, "data"),
      ]);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /^bob\s+backend:remote\s+mcp\s/m);
      assert.doesNotMatch(table.stdout, /alice/);
    } finally {
      await aliceClient.close();
      await bobClient.close();
    }
  });
});

Deno.test("remote backend: disconnecting at A's /connections revokes the grant at B; the next call brings the link again, and connecting again works", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const client = await connectClient(chain.a.mcpUrl, alice.token, "plain");
    try {
      const link = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
      assert.equal((await whoamiAtB(client)).token, "alice");
      const activeAtB = () => activeGrants(chain.b.gateway.store, Date.now(), { userId: "alice" }).length;
      assert.equal(activeAtB(), 1, "B holds alice's grant to A");

      // The Disconnect button of /connections.
      const page = await (await alice.browser.fetch(`${chain.aBase}/connections`)).text();
      const action = `/connections/${encodeURIComponent(SERVICE)}/disconnect`;
      const form = page.slice(page.indexOf(`<form method="post" action="${action}">`));
      assert.ok(form.length < page.length, `the Disconnect button: ${page}`);
      const disconnected = await alice.browser.post(`${chain.aBase}${action}`, formFields(form));
      await disconnected.body?.cancel();
      assert.equal(disconnected.status, 303);
      assert.equal(storedAtA(chain.a, "alice"), undefined, "A forgot the token");
      assert.ok(
        chain.b.tap.requests.some((request) => request.path === "/revoke" && request.status === 200),
        "A revoked it at B (RFC 7009)",
      );
      assert.equal(activeAtB(), 0, "B revoked alice's grant to A");

      // Her next call asks again (not an error); connecting again works: her browser is still signed in
      // at B, which remembers her approval of A, so B sends it straight back.
      const again = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      assertLinkOfA(chain, again);
      const journey = await connectThroughB(alice.browser, again, chain.b, chain.aPublic, ALICE_AT_B);
      assert.deepEqual([journey.signInAsked, journey.consentAsked], [false, false]);
      assert.equal((await whoamiAtB(client)).token, "alice");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"]);
    } finally {
      await client.close();
    }
  });
});
