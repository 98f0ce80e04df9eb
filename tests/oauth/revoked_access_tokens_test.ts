/**
 * The in-memory set of revoked access tokens: a revocation made by this process counts at once, one written
 * by another connection to the same file (the `gatehouse` CLI) within the check interval, and an expired
 * one drops out. Real SQLite files in a temporary directory; clocks the tests move where time matters.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import type { Registry } from "../../src/config/types.ts";
import type { Identity } from "../../src/core/caller.ts";
import { createLogger } from "../../src/log/logger.ts";
import { AuthorizationServer } from "../../src/oauth/authorization_server.ts";
import { ClientDirectory } from "../../src/oauth/clients.ts";
import { revokeGrants } from "../../src/oauth/grants.ts";
import { loadOrCreateSigningKey } from "../../src/oauth/keys.ts";
import {
  OTHER_WRITERS_CHECK_INTERVAL_MS,
  RevokedAccessTokens,
} from "../../src/oauth/revoked_access_tokens.ts";
import {
  insertAccessToken,
  insertRefreshToken,
  revokeAccessToken,
  revokeAccessTokensOfClientFamilies,
  revokeLiveAccessToken,
  revokeLiveAccessTokensOf,
  revokeLiveAccessTokensOfFamily,
} from "../../src/store/grants.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { registryOf, withTempDir, yaml } from "../config/_helpers.ts";

const START = 1_800_000_000_000;
const BASE = "https://gw.example";
const REDIRECT = "https://app.example/callback";
const ALICE: Identity = { id: "alice", name: "alice", groups: ["staff"] };

/** A store in a temporary directory, closed and removed afterwards. */
function withFileStore(work: (store: Store, dir: string) => Promise<void> | void): Promise<void> {
  return withTempDir(async (dir) => {
    const store = openStore(dir);
    try {
      await work(store, dir);
    } finally {
      store.close();
    }
  });
}

/** Records an access token of `familyId` (alice's, client "app") that expires at `expiresAt` (epoch ms). */
function accessToken(store: Store, jti: string, expiresAt: number, familyId = `family-${jti}`): void {
  insertAccessToken(store, { jti, familyId, expiresAt, clientId: "app", userId: "alice" });
}

Deno.test("AuthorizationServer.isRevoked() is true at once after revoke(), with the set loaded before", async () => {
  await withFileStore(async (store, dir) => {
    const registry: Registry = await registryOf({
      files: {
        "registry.yaml": yaml(
          "gateway:",
          "  auth: oauth",
          `  public_url: ${BASE}`,
          "clients:",
          `  app: { name: App, redirect_uris: ["${REDIRECT}"] }`,
        ),
      },
    });
    // The clock never moves: only the revocation itself can bring the set up to date.
    const clock = () => START;
    const clients = new ClientDirectory(store, () => registry, { now: clock });
    const server = new AuthorizationServer({
      store,
      registry: () => registry,
      clients,
      key: await loadOrCreateSigningKey(dir),
      log: createLogger({ level: "error", write: () => {} }),
      baseUrl: () => BASE,
      now: clock,
    });
    const client = (await clients.find("app"))!;
    const request = await server.parseAuthorizationRequest(
      new URLSearchParams({
        client_id: "app",
        response_type: "code",
        redirect_uri: REDIRECT,
        code_challenge_method: "S256",
        // RFC 7636 Appendix B.
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      }),
    );
    const code = new URL(await server.issueCode(request, ALICE)).searchParams.get("code")!;
    const tokens = await server.token(
      client,
      new URLSearchParams({
        grant_type: "authorization_code",
        code,
        code_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
        redirect_uri: REDIRECT,
      }),
    );
    const { jti, exp } = decodeJwt(tokens.access_token);
    // Loads the set: from here on it is stale unless the revocation updates it.
    assert.equal(server.isRevoked(jti!), false);
    // A set on another connection with the same frozen clock stays stale: what the server answers below
    // comes from its own set being told, not from a fresh read.
    const otherConnection = openStore(dir);
    try {
      const stale = new RevokedAccessTokens(otherConnection, {
        now: clock,
        otherWritersCheckIntervalMs: 1000,
      });
      assert.equal(stale.has(jti!), false);

      await server.revoke(client, tokens.access_token, jti, exp);

      assert.equal(server.isRevoked(jti!), true);
      assert.equal(stale.has(jti!), false, "another connection's set waits for its check interval");
    } finally {
      otherConnection.close();
    }
  });
});

Deno.test("RevokedAccessTokens.has() sees each store write that revokes access tokens at once", async () => {
  await withFileStore((store) => {
    const expiresAt = START + 600_000;
    const revoked = new RevokedAccessTokens(store, { now: () => START });
    const revocations: [string, () => void][] = [
      ["revokeAccessToken()", () => revokeAccessToken(store, "j1", expiresAt)],
      ["revokeLiveAccessToken()", () => revokeLiveAccessToken(store, "j2", START)],
      ["revokeLiveAccessTokensOfFamily()", () => revokeLiveAccessTokensOfFamily(store, "family-j3", START)],
      ["revokeLiveAccessTokensOf() a user", () => {
        accessToken(store, "j4", expiresAt, "family-other-user");
        store.db.prepare("UPDATE access_token_grants SET user_id = 'bob' WHERE jti = 'j4'").run();
        revokeLiveAccessTokensOf(store, { userId: "bob" }, START);
      }],
      ["revokeLiveAccessTokensOf() a client", () => {
        accessToken(store, "j5", expiresAt);
        store.db.prepare("UPDATE access_token_grants SET client_id = 'other' WHERE jti = 'j5'").run();
        revokeLiveAccessTokensOf(store, { clientId: "other" }, START);
      }],
      ["revokeAccessTokensOfClientFamilies()", () => {
        insertRefreshToken(store, {
          tokenHash: "h6",
          familyId: "family-j6",
          clientId: "third",
          userId: "alice",
          identity: JSON.stringify(ALICE),
          resource: `${BASE}/mcp`,
          scope: "mcp",
          expiresAt,
          accessJti: "j6",
        });
        revokeAccessTokensOfClientFamilies(store, "third");
      }],
      ["revokeGrants() in a transaction", () => revokeGrants(store, { userId: "carol" }, START)],
    ];
    for (const jti of ["j2", "j3", "j6"]) accessToken(store, jti, expiresAt);
    accessToken(store, "j7", expiresAt);
    store.db.prepare("UPDATE access_token_grants SET user_id = 'carol' WHERE jti = 'j7'").run();
    revocations.forEach(([what, revoke], index) => {
      const jti = `j${index + 1}`;
      assert.equal(revoked.has(jti), false, `${what}: ${jti} is live before`);
      revoke();
      assert.equal(revoked.has(jti), true, `${what}: ${jti} is revoked at once`);
    });
  });
});

Deno.test("RevokedAccessTokens.has() sees a revocation by another connection (the CLI) within the bound", async () => {
  await withFileStore(async (store, dir) => {
    const revoked = new RevokedAccessTokens(store);
    accessToken(store, "j1", Date.now() + 600_000);
    assert.equal(revoked.has("j1"), false);

    // What `gatehouse tokens revoke-user` does: its own connection to the same file.
    const cli = openStore(dir);
    try {
      assert.equal(revokeGrants(cli, { userId: "alice" }, Date.now()).accessTokens, 1);
    } finally {
      cli.close();
    }

    // Bounded: the check interval is 50 ms; allow a hundred times that before failing.
    const deadline = Date.now() + 100 * OTHER_WRITERS_CHECK_INTERVAL_MS;
    while (!revoked.has("j1") && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    assert.equal(revoked.has("j1"), true);
  });
});

Deno.test("RevokedAccessTokens.has() with a check interval reads another connection's writes once per interval", async () => {
  await withFileStore((store, dir) => {
    let now = START;
    const interval = 1000;
    const revoked = new RevokedAccessTokens(store, { now: () => now, otherWritersCheckIntervalMs: interval });
    assert.equal(revoked.has("j1"), false);
    const other = openStore(dir);
    try {
      revokeAccessToken(other, "j1", START + 600_000);
    } finally {
      other.close();
    }
    now += interval - 1;
    assert.equal(revoked.has("j1"), false, "SQLite is not asked again within the interval");
    now += 1;
    assert.equal(revoked.has("j1"), true);
  });
});

Deno.test("RevokedAccessTokens.has() drops a revocation when its token expires", async () => {
  await withFileStore((store) => {
    let now = START;
    const interval = 1000;
    const revoked = new RevokedAccessTokens(store, { now: () => now, otherWritersCheckIntervalMs: interval });
    revokeAccessToken(store, "soon", START + 500);
    revokeAccessToken(store, "later", START + 800);
    revokeAccessToken(store, "past", START - 1); // already expired: never loaded
    assert.equal(revoked.has("soon"), true);
    assert.equal(revoked.has("past"), false);
    assert.equal(revoked.size, 2);

    // Within the check interval: an expired one is dropped when looked up.
    now = START + 500;
    assert.equal(revoked.has("soon"), false, "expired: its exp refuses the token now");
    assert.equal(revoked.size, 1);
    // At the next check, every expired one is dropped, looked up or not.
    now = START + interval;
    assert.equal(revoked.has("unrelated"), false);
    assert.equal(revoked.size, 0);
  });
});

Deno.test("RevokedAccessTokens.has() forgets a revocation whose transaction rolled back", async () => {
  await withFileStore((store) => {
    const revoked = new RevokedAccessTokens(store, { now: () => START });
    assert.equal(revoked.has("j1"), false);
    assert.throws(() =>
      store.transaction(() => {
        revokeAccessToken(store, "j1", START + 600_000);
        assert.equal(revoked.has("j1"), true, "this connection sees its own write");
        throw new Error("abandoned");
      }), /abandoned/);
    assert.equal(revoked.has("j1"), false);
  });
});
