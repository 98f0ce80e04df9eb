/**
 * A replica on PostgreSQL while the database is away (issue 17: "a replica keeps serving what it can when
 * the database blips"): the network between them is cut by a TCP relay of the test's own, a real gateway
 * process keeps serving calls on open sessions with tokens it already verified, writes answer 503 saying the
 * store cannot be reached, /readyz is not ready, and everything comes back when the network does.
 */
import assert from "node:assert/strict";
import { eventually } from "../helpers/gatehouse_process.ts";
import {
  ALLOW_EVERYONE,
  messagesOf,
  misbehaving,
  openRawSession,
  postRaw,
  textOf,
} from "../helpers/mcp_clients.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { aliceHashOnce, mcpInitialize, signedInTokens, tokenCall, type Tokens } from "../oauth/_flow.ts";
import { startReplicas } from "./_replicas.ts";

/** A TCP relay to the database that the test can cut (connections reset, new ones refused) and restore. */
class CuttableRelay {
  readonly port: number;
  readonly #target: number;
  readonly #open = new Set<Deno.Conn>();
  #listener: Deno.Listener | undefined;
  #accepting: Promise<void> | undefined;

  constructor(target: number) {
    this.#target = target;
    this.#listen(0);
    this.port = (this.#listener!.addr as Deno.NetAddr).port;
  }

  #listen(port: number): void {
    const listener = Deno.listen({ hostname: "127.0.0.1", port });
    this.#listener = listener;
    this.#accepting = (async () => {
      for await (const client of listener) {
        let server: Deno.Conn;
        try {
          server = await Deno.connect({ hostname: "127.0.0.1", port: this.#target });
        } catch {
          client.close();
          continue;
        }
        this.#open.add(client).add(server);
        const end = () => {
          for (const conn of [client, server]) {
            if (this.#open.delete(conn)) {
              try {
                conn.close();
              } catch {
                // Already closed.
              }
            }
          }
        };
        client.readable.pipeTo(server.writable, { preventClose: true }).catch(() => {}).finally(end);
        server.readable.pipeTo(client.writable, { preventClose: true }).catch(() => {}).finally(end);
      }
    })().catch(() => {});
  }

  /** Resets every connection and refuses new ones, as a database that went away does. */
  async cut(): Promise<void> {
    this.#listener?.close();
    await this.#accepting;
    this.#listener = undefined;
    for (const conn of [...this.#open]) {
      this.#open.delete(conn);
      try {
        conn.close();
      } catch {
        // Already closed.
      }
    }
  }

  /** Accepts connections again, on the same port. */
  restore(): void {
    this.#listen(this.port);
  }
}

Deno.test("a replica whose database is away keeps serving calls with verified tokens, answers writes 503, is not ready, and recovers", async () => {
  const database = new URL(await freshDatabase());
  const relay = new CuttableRelay(Number(database.port));
  const relayed = new URL(database.href);
  relayed.port = String(relay.port);
  const replicas = await startReplicas(1, relayed.href, {
    gateway: { auth: "oauth" },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
    backends: { mis: misbehaving("mis") },
    policies: [ALLOW_EVERYONE],
  });
  try {
    const [base] = replicas.urls;
    const { clientId, tokens } = await signedInTokens(base!);
    const headers = { authorization: `Bearer ${tokens.access_token}` };
    const sessionId = await openRawSession(`${base}/mcp`, headers);
    const echo = async (id: number, message: string) => {
      const response = await postRaw(`${base}/mcp`, sessionId, {
        jsonrpc: "2.0",
        id,
        method: "tools/call",
        params: { name: "mis__echo", arguments: { message } },
      }, headers);
      const [answer] = await messagesOf(response);
      return { status: response.status, text: textOf(answer?.result), answer };
    };
    assert.equal((await echo(2, "before")).text, "mis: before");
    assert.equal((await fetch(`${base}/readyz`)).status, 200);

    await relay.cut();

    // The open session, with the token already verified: served without the store.
    const during = await echo(3, "while the database is away");
    assert.equal(during.status, 200, JSON.stringify(during.answer));
    assert.equal(during.text, "mis: while the database is away");

    // A write (refreshing the token) fails, saying why.
    const refresh = await tokenCall(base!, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token,
      client_id: clientId,
    });
    assert.equal(refresh.status, 503, JSON.stringify(refresh.body));
    assert.match(JSON.stringify(refresh.body), /database cannot be reached/);

    // A new session still opens here (its record, for other replicas, cannot be written now).
    const opening = await mcpInitialize(`${base}/mcp`, tokens.access_token);
    assert.equal(opening.status, 200);

    // Not ready, with the reason, for the load balancer.
    await eventually(async () => {
      const ready = await fetch(`${base}/readyz`);
      const body = await ready.json();
      return ready.status === 503 && body.store?.unwritable?.reason === "unreachable";
    }, 5_000);

    relay.restore();

    await eventually(async () => {
      const ready = await fetch(`${base}/readyz`);
      await ready.body?.cancel();
      return ready.status === 200;
    }, 5_000);
    const after = await tokenCall(base!, {
      grant_type: "refresh_token",
      refresh_token: tokens.refresh_token,
      client_id: clientId,
    });
    assert.equal(after.status, 200, JSON.stringify(after.body));
    const rotated = after.body as unknown as Tokens;
    assert.ok(rotated.access_token);
    assert.equal((await echo(4, "after")).text, "mis: after");
  } finally {
    await replicas.stop();
    await relay.cut();
  }
});
