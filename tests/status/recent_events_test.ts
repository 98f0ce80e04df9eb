/**
 * The status page's recent events about third-party services: a consent request names the backends that
 * wait on it, and a failed connection is a recent error of its user (in the world of the consent-link
 * tests: service `mock`, backends `stdio-tok` and `http-tok` that need it).
 */
import assert from "node:assert/strict";
import {
  ALICE,
  BOB,
  connectClient,
  consentLinkOf,
  serviceCallback,
  signIn,
  type User,
  withWorld,
  type World,
} from "../services/_world.ts";

interface StatusEventJson {
  user: string | null;
  backend: string | null;
  message: string;
}

async function recentOf(world: World, user: User) {
  const response = await user.browser.fetch(`${world.base}/status.json`);
  assert.equal(response.status, 200);
  return (await response.json()).recent as Record<"errors" | "consent_requests", StatusEventJson[]>;
}

/** The rows of the table under the heading `title` on /status, cells as the text a person reads. */
async function tableRows(world: World, user: User, title: string): Promise<string[][]> {
  const page = await (await user.browser.fetch(`${world.base}/status`)).text();
  const section = page.split(`<h2>${title}</h2>`)[1]?.split("<h2>")[0] ?? "";
  const body = section.split("<tbody>")[1] ?? "";
  return [...body.matchAll(/<tr[^>]*>(.*?)<\/tr>/gs)].map((row) =>
    [...row[1]!.matchAll(/<td[^>]*>(.*?)<\/td>/gs)].map((cell) =>
      cell[1]!.replace(/<span class="label">[^<]*<\/span>/g, "").replace(/<[^>]+>/g, "").replaceAll(
        "&quot;",
        '"',
      )
        .replaceAll("&#39;", "'").replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&amp;", "&")
        .trim()
    )
  );
}

Deno.test("statusReport() names the backends waiting on a consent request in its Backend column", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      await consentLinkOf(client, "stdio-tok");
    } finally {
      await client.close();
    }
    const [request] = (await recentOf(world, alice)).consent_requests;
    assert.ok(request, "the consent request is listed");
    assert.equal(request.user, "alice");
    assert.match(request.message, /asked to connect mock/);
    assert.equal(request.backend, "stdio-tok, http-tok", "the backends that need the service");
    const [row] = await tableRows(world, alice, "Recent consent requests");
    assert.deepEqual(row?.slice(1), ["alice", "stdio-tok, http-tok", request.message]);
  });
});

Deno.test("statusReport() lists a failed connection to a service under its user's recent errors", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    world.mock.codeGrantAnswer = {
      status: 400,
      body: { error: "invalid_grant", error_description: "The code has expired" },
    };
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const link = await consentLinkOf(client);
      const callback = await serviceCallback(world, alice.browser, await alice.browser.fetch(link));
      const answer = await alice.browser.fetch(callback);
      await answer.body?.cancel();
      assert.equal(answer.status, 400, "the connection failed");
    } finally {
      await client.close();
    }
    const message = 'mock refused the token request: invalid_grant ("The code has expired")';
    const errors = (await recentOf(world, alice)).errors;
    assert.deepEqual(
      errors.map((error) => [error.user, error.backend, error.message]),
      [["alice", "stdio-tok, http-tok", `connecting mock: ${message}`]],
    );
    const [row] = await tableRows(world, alice, "Recent errors");
    assert.deepEqual(row?.slice(1), ["alice", "stdio-tok, http-tok", `connecting mock: ${message}`]);
    assert.deepEqual((await recentOf(world, bob)).errors, [], "bob sees only his own");
  });
});

Deno.test("ServiceConnections.start() answers a service it cannot discover with a page, and lists it as a recent error", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    let link: string;
    try {
      link = await consentLinkOf(client);
    } finally {
      await client.close();
    }
    // Its discovery document names another issuer: it fails the check (RFC 8414 §3.3).
    world.mock.metadata = { issuer: "http://127.0.0.1:9/someone-else" };
    const answer = await alice.browser.fetch(link);
    const page = await answer.text();
    assert.equal(answer.status, 400, page);
    assert.match(page, /<p class="error">Cannot reach mock to find its endpoints; try again later<\/p>/);
    assert.deepEqual(
      (await recentOf(world, alice)).errors.map((error) => [error.user, error.backend, error.message]),
      [[
        "alice",
        "stdio-tok, http-tok",
        "connecting mock: Cannot reach mock to find its endpoints; try again later",
      ]],
    );
  });
});
