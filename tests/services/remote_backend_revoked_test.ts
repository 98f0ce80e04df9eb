/**
 * Issue 18, a grant revoked at the remote server: B's administrator revokes a user's tokens there; the
 * user's next call through A brings the consent link again (not an error), A forgets the refused token,
 * and after connecting again the calls work. For A speaking either protocol era to B.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Client } from "@modelcontextprotocol/client";
import { runGatehouse } from "../helpers/gatehouse_process.ts";
import { textOf } from "../helpers/mcp_clients.ts";
import { connectClient, linkOfToolResult } from "./_world.ts";
import {
  ALICE,
  ALICE_AT_B,
  assertOnlyBTokensReachedB,
  type Chain,
  connectThroughB,
  SERVICE,
  signInAtA,
  storedAtA,
  WHOAMI,
  withChain,
} from "./_chained_gatehouses.ts";

async function whoamiAtB(client: Client): Promise<string> {
  const result = await client.callTool({ name: WHOAMI, arguments: {} });
  assert.ok(!result.isError, `the call through A failed: ${JSON.stringify(result)}`);
  return JSON.parse(textOf(result)).token;
}

/** `gatehouse tokens revoke --user ID` on B's store while B serves (B's administrator). */
async function revokeAtB(chain: Chain, userId: string): Promise<void> {
  const revoked = await runGatehouse([
    "tokens",
    "revoke",
    "--user",
    userId,
    "--registry",
    join(chain.b.dir, "registry.yaml"),
    "--data",
    join(chain.b.dir, "data"),
  ]);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.match(revoked.stdout, /^Revoked 1 active grant of user alice/);
}

for (const protocol of ["auto", "legacy"] as const) {
  Deno.test(`remote backend: a grant revoked at B brings the consent link again through A, which forgets the token; connecting again works (A to B: protocol ${protocol})`, async () => {
    await withChain(async (chain) => {
      const alice = await signInAtA(chain.aBase, ALICE);
      const client = await connectClient(chain.a.mcpUrl, alice.token, "plain");
      try {
        const link = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
        await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
        assert.equal(await whoamiAtB(client), "alice");
        assert.equal(await whoamiAtB(client), "alice", "the connection stays");
        const sealedBefore = storedAtA(chain.a, "alice")?.sealed;
        assert.ok(sealedBefore);

        await revokeAtB(chain, "alice");

        // B refuses the token A holds: the call answers with the consent link, as for a new user.
        const again = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
        const url = new URL(again);
        assert.equal(`${url.origin}${url.pathname}`, `${chain.aPublic}/connect/${SERVICE}`);
        assert.notEqual(again, link, "a new link");
        assert.equal(storedAtA(chain.a, "alice"), undefined, "A forgot the refused token");
        assert.ok(
          chain.a.logs.some((line) =>
            line.level === "warn" && line.msg === "a backend refused a user's token; consent needed again" &&
            line.service === SERVICE
          ),
          "A says why",
        );
        const disconnections = chain.a.gateway.store.db.prepare(
          "SELECT subject, detail FROM audit WHERE kind = 'disconnection'",
        ).all() as { subject: string; detail: string }[];
        assert.deepEqual(
          disconnections.map(({ subject, detail }) => ({ subject, ...JSON.parse(detail) })),
          [{ subject: "alice", service: SERVICE, reason: "refused" }],
        );
        // One user's refused token says nothing of the backend, which others keep using.
        const status = (await chain.a.gateway.pool.status()).find((backend) => backend.name === "remote");
        assert.equal(status?.state, "up", JSON.stringify(status));
        assert.equal(status.lastError, undefined);
        // Asked again, not refused again: B saw the revoked token once.
        const linkOnceMore = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
        assert.ok(linkOnceMore.startsWith(`${chain.aPublic}/connect/${SERVICE}?ticket=`));
        assertOnlyBTokensReachedB(chain, [alice.token], ["alice"], 1);

        // B's administrator also ended her sessions at B: she signs in there again; B remembers her approval.
        const journey = await connectThroughB(alice.browser, again, chain.b, chain.aPublic, ALICE_AT_B);
        assert.ok(journey.signInAsked, "B ended her sessions there: she signs in again");
        assert.equal(journey.consentAsked, false, "B remembered alice's approval of A");
        assert.equal(await whoamiAtB(client), "alice", "connected again");
        const sealedAfter = storedAtA(chain.a, "alice")?.sealed;
        assert.ok(sealedAfter && sealedAfter !== sealedBefore, "a new token");
        assertOnlyBTokensReachedB(chain, [alice.token], ["alice"], 1);
      } finally {
        await client.close();
      }
    }, { backend: { protocol } });
  });
}

Deno.test("remote backend: A's health checks never use a user's token at B, so a grant revoked there brings no ticket or backend error until the user's next call", async () => {
  await withChain(async (chain) => {
    const alice = await signInAtA(chain.aBase, ALICE);
    const client = await connectClient(chain.a.mcpUrl, alice.token, "plain");
    try {
      const link = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      await connectThroughB(alice.browser, link, chain.b, chain.aPublic, ALICE_AT_B);
      assert.equal(await whoamiAtB(client), "alice");
      const countTickets = () =>
        (chain.a.gateway.store.db.prepare("SELECT count(*) AS n FROM connect_tickets").get() as { n: number })
          .n;
      const ticketsBefore = countTickets();

      await revokeAtB(chain, "alice");
      await chain.a.gateway.pool.checkHealth();
      await chain.a.gateway.pool.checkHealth();

      const status = (await chain.a.gateway.pool.status()).find((backend) => backend.name === "remote");
      assert.equal(status?.state, "up", JSON.stringify(status));
      assert.equal(status?.lastError, undefined, "no user's consent link in the backend's last error");
      assert.equal(countTickets(), ticketsBefore, "no ticket per health check");
      assertOnlyBTokensReachedB(chain, [alice.token], ["alice"], 0);

      const again = linkOfToolResult(await client.callTool({ name: WHOAMI, arguments: {} }));
      assert.ok(again.startsWith(`${chain.aPublic}/connect/${SERVICE}?ticket=`));
      assert.equal(storedAtA(chain.a, "alice"), undefined, "A forgot the refused token");
    } finally {
      await client.close();
    }
  });
});
