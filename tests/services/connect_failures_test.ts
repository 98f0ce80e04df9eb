/**
 * A failed connection says why on its error page: refused at the authorization step, refused by the token
 * endpoint, the token endpoint out of reach, or a token response that fails a check; never with a secret.
 */
import assert from "node:assert/strict";
import {
  ALICE,
  connectClient,
  consentLinkOf,
  SERVICE_CLIENT_SECRET,
  serviceCallback,
  signIn,
  storedToken,
  type User,
  withWorld,
  type World,
} from "./_world.ts";

/** What the user saw at the end of a failed connection, and what must appear in neither page nor logs. */
interface Failure {
  readonly page: string;
  /** The code of the callback, the client secret, and every token the service issued. */
  readonly secrets: string[];
}

/**
 * Alice opens a fresh consent link; `edit` may change the callback URL the service sent her back with.
 * Asserts the refusal (400, "Cannot connect", nothing stored) and returns the page.
 */
async function failedConnection(
  world: World,
  alice: User,
  edit: (callback: URL) => void = () => {},
): Promise<Failure> {
  const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
  try {
    const link = await consentLinkOf(client);
    const callback = new URL(await serviceCallback(world, alice.browser, await alice.browser.fetch(link)));
    const code = callback.searchParams.get("code");
    assert.ok(code, "the service sent a code");
    edit(callback);
    const response = await alice.browser.fetch(callback.href);
    const page = await response.text();
    assert.equal(response.status, 400, page);
    assert.match(page, /Cannot connect/);
    assert.equal(storedToken(world, "alice"), undefined, "nothing stored");
    const issued = world.mock.issued.flatMap((entry) => [entry.accessToken, entry.refreshToken]);
    return {
      page,
      secrets: [code, SERVICE_CLIENT_SECRET, ...issued.filter((token) => token !== undefined)],
    };
  } finally {
    await client.close();
  }
}

/** Asserts that no secret of `failure` is in its page or in the gateway's logs. */
function assertNoSecretShown(world: World, failure: Failure): void {
  const logs = JSON.stringify(world.gateway.logs);
  for (const secret of failure.secrets) {
    assert.ok(!failure.page.includes(secret), "the page holds a secret");
    assert.ok(!logs.includes(secret), "the logs hold a secret");
  }
}

/** The message of an error page, as the user reads it (HTML entities decoded). */
function messageOf(page: string): string {
  const message = /<p class="error">([^<]*)<\/p>/.exec(page)?.[1];
  assert.ok(message !== undefined, page);
  return message.replaceAll("&lt;", "<").replaceAll("&gt;", ">").replaceAll("&quot;", '"')
    .replaceAll("&#39;", "'").replaceAll("&amp;", "&");
}

Deno.test("ServiceConnections.finish() says the service did not grant access, quoting its error code", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    // RFC 6749 §4.1.2.1: the user said no at the service.
    const failure = await failedConnection(world, alice, (callback) => {
      callback.searchParams.delete("code");
      callback.searchParams.set("error", "access_denied");
      callback.searchParams.set("error_description", "The user denied the request");
    });
    assert.equal(
      messageOf(failure.page),
      'mock did not grant access: access_denied ("The user denied the request")',
    );
    assert.ok(!world.mock.issued.some((entry) => entry.grantType === "authorization_code"), "no code spent");
    assertNoSecretShown(world, failure);
  });
});

Deno.test("ServiceConnections.finish() quotes the token endpoint's OAuth error, bounded and escaped", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const description = `<script>alert(1)</script> The code has expired. ${"Padding. ".repeat(100)}`;
    world.mock.codeGrantAnswer = {
      status: 400,
      body: { error: "invalid_grant", error_description: description },
    };
    const failure = await failedConnection(world, alice);
    const message = messageOf(failure.page);
    assert.ok(
      message.startsWith(
        'mock refused the token request: invalid_grant ("<script>alert(1)</script> The code',
      ),
      message,
    );
    assert.ok(message.length < 300, `bounded: ${message.length} chars`);
    assert.ok(message.endsWith('…")'), message);
    assert.ok(!failure.page.includes("<script>"), "escaped");
    assert.ok(failure.page.includes("&lt;script&gt;alert(1)&lt;/script&gt;"), "escaped");
    assertNoSecretShown(world, failure);
  });
});

Deno.test("ServiceConnections.finish() says when the token endpoint cannot be reached", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    // A port that was just free: nothing listens there.
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = listener.addr.port;
    listener.close();
    world.mock.metadata = { token_endpoint: `http://127.0.0.1:${port}/token` };
    const failure = await failedConnection(world, alice);
    assert.equal(messageOf(failure.page), "Cannot reach mock's token endpoint; try again later");
    assert.equal(world.mock.issued.length, 0);
    assertNoSecretShown(world, failure);
  });
});

Deno.test("ServiceConnections.finish() names the check a token response failed (the ID token)", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    world.mock.idTokenAudience = "someone-else";
    const failure = await failedConnection(world, alice);
    assert.equal(
      messageOf(failure.page),
      "Cannot accept mock's token response: its ID token failed a check " +
        '(unexpected JWT "aud" (audience) claim value)',
    );
    // The service did issue tokens: they are in neither the page nor the logs.
    assert.equal(world.mock.issued.filter((entry) => entry.accessToken !== undefined).length, 1);
    assertNoSecretShown(world, failure);
  });
});

Deno.test("ServiceConnections.finish() names the check a token response failed (its fields)", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    world.mock.codeGrantAnswer = { status: 200, body: { token_type: "Bearer", expires_in: 3600 } };
    const failure = await failedConnection(world, alice);
    assert.equal(
      messageOf(failure.page),
      'Cannot accept mock\'s token response: "response" body "access_token" property must be a string',
    );
    assertNoSecretShown(world, failure);
  });
});
