/**
 * Product section 6, end to end: the first call that needs a third-party token brings the consent link
 * in the form the client understands; the user follows it in a signed-in browser; the retried call
 * reaches the backend with the service's token.
 */
import assert from "node:assert/strict";
import type { Client } from "@modelcontextprotocol/client";
import {
  ALICE,
  assertConsentLink,
  BOB,
  connectClient,
  connectService,
  latestAccessToken,
  linkOfToolResult,
  rawSession,
  signIn,
  storedToken,
  whoami,
  withWorld,
} from "./_world.ts";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { eventually } from "../helpers/gatehouse_process.ts";

Deno.test("consent link: a 2026-07-28 client gets input_required with a URL elicitation, and its retry succeeds", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const asked: Record<string, string | undefined>[] = [];
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "modern", {
      async onElicitation(params) {
        asked.push(params);
        // The user opens the link in the browser already signed in to Gatehouse.
        await connectService(world, alice.browser, params.url!);
        return { action: "accept" };
      },
    });
    try {
      const answer = await whoami(client, "stdio-tok");
      assert.equal(asked.length, 1, "asked once");
      assert.equal(asked[0]!.mode, "url");
      assertConsentLink(world.base, asked[0]!.url);
      assert.match(asked[0]!.message ?? "", /Connect your mock account/);
      assert.equal(answer.token, latestAccessToken(world.mock), "the backend got the service's token");
      assert.ok(storedToken(world, "alice"), "the token is stored");
      // PKCE, state and the registry's scopes went to the service.
      const authorization = world.mock.authorizations.at(-1)!;
      assert.equal(authorization.get("code_challenge_method"), "S256");
      assert.ok(authorization.get("code_challenge"));
      assert.ok(authorization.get("state"));
      assert.equal(authorization.get("scope"), "read");
      assert.equal(authorization.get("client_id"), "gatehouseatmock");
      assert.equal(authorization.get("redirect_uri"), `${world.base}/connect/mock/callback`);

      // Connected: the HTTP backend gets it too, without asking again.
      const http = await whoami(client, "http-tok");
      assert.equal(http.authorization, `Bearer ${latestAccessToken(world.mock)}`);
      assert.equal(asked.length, 1, "not asked again");
    } finally {
      await client.close();
    }
  });
});

Deno.test("consent link: a 2025-11-25 client declaring elicitation.url gets -32042, then notifications/elicitation/complete", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const completed = Promise.withResolvers<string>();
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "legacy-url", {
      onComplete: (elicitationId) => completed.resolve(elicitationId),
    });
    try {
      const error = await client.callTool({ name: "stdio-tok__whoami", arguments: {} }).then(
        (result) => assert.fail(`expected -32042, got ${JSON.stringify(result)}`),
        (thrown: { code?: number; data?: { elicitations?: Record<string, string>[] } }) => thrown,
      );
      assert.equal(error.code, -32042);
      const elicitation = error.data?.elicitations?.[0];
      assert.equal(elicitation?.mode, "url");
      const link = assertConsentLink(world.base, elicitation?.url);
      assert.ok(elicitation?.elicitationId, "an elicitation id");

      // A fresh browser: Gatehouse asks alice to sign in first, then sends her on to the service.
      await connectService(world, new ScriptedBrowser(), link, ALICE);
      assert.equal(await completed.promise, elicitation.elicitationId);

      const answer = await whoami(client, "stdio-tok");
      assert.equal(answer.token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});

Deno.test("consent link: a client without elicitation gets an isError tool result with the link and _meta.auth_url", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    try {
      const first = await client.callTool({ name: "stdio-tok__whoami", arguments: {} });
      const link = assertConsentLink(world.base, linkOfToolResult(first));
      assert.match(String((first.content as { text: string }[])[0]!.text), /retry/);

      await connectService(world, alice.browser, link);
      const answer = await whoami(client, "stdio-tok");
      assert.equal(answer.token, latestAccessToken(world.mock));
      const http = await whoami(client, "http-tok");
      assert.equal(http.authorization, `Bearer ${latestAccessToken(world.mock)}`);
    } finally {
      await client.close();
    }
  });
});

Deno.test("consent link: a 2026-07-28 client without elicitation gets the isError tool result with the link", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "modern-plain");
    try {
      const first = await client.callTool({ name: "stdio-tok__whoami", arguments: {} });
      const link = assertConsentLink(world.base, linkOfToolResult(first));
      await connectService(world, alice.browser, link);
      assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
    } finally {
      await client.close();
    }
  });
});

Deno.test("consent link: a non-tool request needing the token (prompts/get) gets JSON-RPC error -32005 with data.auth_url", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const session = await rawSession(`${world.base}/mcp/stdio-tok`, alice.token);
    try {
      const answer = await session.request("prompts/get", { name: "anything" });
      assert.equal(
        answer.status,
        200,
        "never an HTTP 401, which clients read as: sign in to the gateway again",
      );
      assert.equal(answer.error?.code, -32005, JSON.stringify(answer));
      const link = assertConsentLink(world.base, answer.error?.data?.auth_url as string | undefined);
      assert.ok(answer.error?.message.includes(link), "the message gives the link too");
    } finally {
      await session.close();
    }
  });
});

Deno.test("consent link: tools/list on /mcp/{backend} before anyone connected answers -32005 with data.auth_url, not an empty list", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    // Nobody has connected yet, so the gateway has no list of the backend's tools to fall back on.
    const session = await rawSession(`${world.base}/mcp/stdio-tok`, alice.token);
    try {
      const answer = await session.request("tools/list");
      assert.equal(answer.status, 200);
      assert.equal(answer.error?.code, -32005, `expected the consent error, got ${JSON.stringify(answer)}`);
      const link = assertConsentLink(world.base, answer.error?.data?.auth_url as string | undefined);

      await connectService(world, alice.browser, link);
      const listed = await session.request("tools/list");
      assert.deepEqual(
        (listed.result?.tools as { name: string }[] | undefined)?.map((tool) => tool.name),
        ["whoami"],
      );
    } finally {
      await session.close();
    }
  });
});

Deno.test("consent link: a new user's SDK client on /mcp/{backend} is told tools exist, and listing them brings the link", async () => {
  await withWorld(async (world) => {
    const alice = await signIn(world, ALICE);
    const client = await connectClient(`${world.base}/mcp/stdio-tok`, alice.token, "plain");
    try {
      // Without the tools capability a client never lists tools, and so never hears of the link.
      assert.ok(
        client.getServerCapabilities()?.tools,
        "the endpoint announces tools before the user connected",
      );
      const error = await client.listTools().then(
        (result) => assert.fail(`expected the consent error, got ${JSON.stringify(result)}`),
        (thrown: { code?: number; data?: { auth_url?: string } }) => thrown,
      );
      assert.equal(error.code, -32005);
      const link = assertConsentLink(world.base, error.data?.auth_url);
      await connectService(world, alice.browser, link);
      const { tools } = await client.listTools();
      assert.deepEqual(tools.map((tool) => tool.name), ["whoami"]);
    } finally {
      await client.close();
    }
  });
});

Deno.test("consent link: on /mcp before anyone connected, a connect tool per backend brings the link; then list_changed and the real tools, which the next user sees too", async () => {
  await withWorld(async (world) => {
    const [alice, bob] = [await signIn(world, ALICE), await signIn(world, BOB)];
    const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
    let changed = 0;
    client.setNotificationHandler("notifications/tools/list_changed", () => void changed++);
    let bobClient: Client | undefined;
    try {
      const before = (await client.listTools()).tools;
      assert.deepEqual(
        before.map((tool) => tool.name).sort(),
        ["http-tok__gatehouse_connect_mock", "stdio-tok__gatehouse_connect_mock"],
      );
      assert.match(String(before[0]!.description), /Connect your mock account/);

      const answer = await client.callTool({ name: "stdio-tok__gatehouse_connect_mock", arguments: {} });
      assert.equal(answer.isError, true);
      await connectService(world, alice.browser, assertConsentLink(world.base, linkOfToolResult(answer)));
      await eventually(() => changed > 0);

      const after = (await client.listTools()).tools.map((tool) => tool.name).sort();
      assert.deepEqual(after, ["http-tok__whoami", "stdio-tok__whoami"]);
      const again = await client.callTool({ name: "stdio-tok__gatehouse_connect_mock", arguments: {} });
      assert.equal(again.isError, undefined);
      assert.match(String((again.content as { text: string }[])[0]!.text), /is connected/);

      // Bob has not connected: he sees the tools as they were listed for alice, and a call brings his link.
      bobClient = await connectClient(world.gateway.mcpUrl, bob.token, "plain");
      const bobTools = (await bobClient.listTools()).tools.map((tool) => tool.name).sort();
      assert.deepEqual(bobTools, after);
      const bobAnswer = await bobClient.callTool({ name: "http-tok__whoami", arguments: {} });
      assert.equal(bobAnswer.isError, true);
      assertConsentLink(world.base, linkOfToolResult(bobAnswer));
    } finally {
      await bobClient?.close();
      await client.close();
    }
  });
});
