import assert from "node:assert/strict";
import { activeGrants, revokeFamily, revokeGrants } from "../../src/oauth/grants.ts";
import { openStore, type Store } from "../../src/store/store.ts";

const NOW = 1_800_000_000_000;

function withStore(work: (store: Store) => void): void {
  const store = openStore(":memory:");
  try {
    work(store);
  } finally {
    store.close();
  }
}

/** A refresh token row of a family; `state` says whether it is live, used, revoked or expired. */
function refreshToken(
  store: Store,
  hash: string,
  family: string,
  owner: { client: string; user: string },
  state: "live" | "used" | "revoked" | "expired" = "live",
): void {
  store.db.prepare(
    "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity, resource, scope, expires_at, used_at, revoked_at) VALUES (?, ?, ?, ?, '{}', 'r', 'mcp', ?, ?, ?)",
  ).run(
    hash,
    family,
    owner.client,
    owner.user,
    state === "expired" ? NOW - 1 : NOW + 60_000,
    state === "used" ? NOW - 10 : null,
    state === "revoked" ? NOW - 10 : null,
  );
}

function accessToken(store: Store, jti: string, family: string, expiresAt = NOW + 600_000): void {
  store.db.prepare("INSERT INTO access_token_grants (jti, family_id, expires_at) VALUES (?, ?, ?)")
    .run(jti, family, expiresAt);
}

function code(
  store: Store,
  hash: string,
  owner: { client: string; user: string },
  family: string | null,
): void {
  store.db.prepare(
    "INSERT INTO authorization_codes (code_hash, client_id, user_id, identity, redirect_uri, code_challenge, resource, scope, expires_at, used_at, family_id) VALUES (?, ?, ?, '{}', 'https://c/cb', 'x', 'r', 'mcp', ?, ?, ?)",
  ).run(hash, owner.client, owner.user, NOW + 60_000, family === null ? null : NOW - 10, family);
}

const revokedJtis = (store: Store) =>
  (store.db.prepare("SELECT jti FROM revoked_access_tokens ORDER BY jti").all() as { jti: string }[])
    .map((row) => row.jti);

const ALICE_A = { client: "a", user: "alice" };
const BOB_A = { client: "a", user: "bob" };
const ALICE_B = { client: "b", user: "alice" };

Deno.test("activeGrants() counts families with a live refresh token or a live, unrevoked access token", () => {
  withStore((store) => {
    refreshToken(store, "h1", "f1", ALICE_A, "used");
    refreshToken(store, "h2", "f1", ALICE_A); // rotated: its live successor
    refreshToken(store, "h3", "f2", BOB_A, "revoked");
    refreshToken(store, "h4", "f3", ALICE_B, "expired");
    accessToken(store, "j4", "f3", NOW - 1000); // expired too: f3 is over
    code(store, "c5", ALICE_B, "f5"); // a client without refresh tokens: only its access token
    accessToken(store, "j5", "f5");
    code(store, "c6", BOB_A, "f6");
    accessToken(store, "j6", "f6");
    store.db.prepare("INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ('j6', ?)").run(
      NOW + 600_000,
    );
    assert.deepEqual(activeGrants(store, NOW), [
      { familyId: "f1", clientId: "a", userId: "alice" },
      { familyId: "f5", clientId: "b", userId: "alice" },
    ]);
    assert.deepEqual(activeGrants(store, NOW, { userId: "bob" }), []);
    assert.deepEqual(activeGrants(store, NOW, { clientId: "b" }).map((grant) => grant.familyId), ["f5"]);
  });
});

Deno.test("revokeFamily() revokes refresh tokens and lists live access tokens only", () => {
  withStore((store) => {
    refreshToken(store, "h1", "f1", ALICE_A, "used");
    refreshToken(store, "h2", "f1", ALICE_A);
    accessToken(store, "j1", "f1", NOW - 1000);
    accessToken(store, "j2", "f1");
    assert.deepEqual(revokeFamily(store, "f1", NOW), { refreshTokens: 2, accessTokens: 1 });
    assert.deepEqual(revokedJtis(store), ["j2"]);
    assert.deepEqual(revokeFamily(store, "f1", NOW), { refreshTokens: 0, accessTokens: 0 }, "idempotent");
  });
});

Deno.test("revokeGrants() revokes a user's families across clients and deletes their unexchanged codes", () => {
  withStore((store) => {
    refreshToken(store, "h1", "f1", ALICE_A);
    accessToken(store, "j1", "f1");
    code(store, "c5", ALICE_B, "f5");
    accessToken(store, "j5", "f5");
    code(store, "pending", ALICE_A, null);
    refreshToken(store, "h2", "f2", BOB_A);
    accessToken(store, "j2", "f2");
    assert.deepEqual(revokeGrants(store, { userId: "alice" }, NOW), {
      grants: 2,
      refreshTokens: 1,
      accessTokens: 2,
      pendingCodes: 1,
    });
    assert.deepEqual(revokedJtis(store), ["j1", "j5"]);
    assert.deepEqual(activeGrants(store, NOW).map((grant) => grant.userId), ["bob"]);
    // The used code stays, so that a replay of it is still recognised.
    assert.equal(store.db.prepare("SELECT count(*) AS n FROM authorization_codes").get()!.n, 1);
  });
});

Deno.test("revokeGrants() of a client leaves other clients' grants alone", () => {
  withStore((store) => {
    refreshToken(store, "h1", "f1", ALICE_A);
    refreshToken(store, "h2", "f2", BOB_A);
    refreshToken(store, "h3", "f3", ALICE_B);
    assert.equal(revokeGrants(store, { clientId: "a" }, NOW).grants, 2);
    assert.deepEqual(activeGrants(store, NOW).map((grant) => grant.familyId), ["f3"]);
  });
});
