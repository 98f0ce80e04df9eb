/**
 * Every table family of src/store through its own functions, on SQLite and on PostgreSQL alike
 * (forEachStore): what one dialect answers, the other must answer too. Times are real epoch milliseconds
 * (beyond 32 bits), and rows read back must carry numbers, not strings or bigints.
 */
import assert from "node:assert/strict";
import {
  deleteAuditEntriesBefore,
  insertAuditEntry,
  latestAuditTimePerClient,
  recentAuditEntries,
} from "../../src/store/audit.ts";
import {
  deleteAuthorizationRequest,
  deleteExpiredAuthorizationRequests,
  findAuthorizationRequest,
  insertAuthorizationRequest,
} from "../../src/store/authorization_requests.ts";
import {
  deleteClient,
  deleteUnusedDynamicClients,
  findClient,
  insertDynamicClient,
  listClients,
  markClientFirstGrant,
  registrationTimesOf,
  saveMetadataDocumentClient,
  updateClientMetadata,
} from "../../src/store/clients.ts";
import {
  consumePendingConnect,
  deleteConnectTicketsExpiredBy,
  deletePendingConnectsExpiredBy,
  findConnectTicket,
  findPendingConnect,
  insertConnectTicket,
  insertPendingConnect,
  markConnectTicketUsed,
} from "../../src/store/connect_tickets.ts";
import {
  consentsOfClient,
  deleteConsentsOfClient,
  hasConsent,
  saveConsent,
} from "../../src/store/consents.ts";
import {
  accessTokenRevocationsRevision,
  activeFamilies,
  deleteCodesExpiredBy,
  deleteExpiredAccessTokens,
  deleteExpiredRefreshTokens,
  deleteRefreshTokensOfClient,
  deleteUnusedCodesOf,
  familiesOf,
  findCode,
  findRefreshToken,
  insertAccessToken,
  insertCode,
  insertRefreshToken,
  liveAccessTokenRevocations,
  markCodeUsed,
  recordRefreshTokenUse,
  retireRefreshToken,
  revokeAccessToken,
  revokeAccessTokensOfClientFamilies,
  revokeLiveAccessToken,
  revokeLiveAccessTokensOf,
  revokeLiveAccessTokensOfFamily,
  revokeRefreshFamily,
} from "../../src/store/grants.ts";
import { findBackendList, saveBackendList } from "../../src/store/list_cache.ts";
import {
  deleteMcpSession,
  deleteMcpSessionIfUnseen,
  deleteUnseenMcpSessions,
  findLiveMcpSession,
  insertMcpSession,
  touchMcpSessions,
} from "../../src/store/mcp_sessions.ts";
import { findLocalUser, hasLocalUsers, insertLocalUser } from "../../src/store/local_users.ts";
import {
  deleteExpiredLoginSessions,
  deleteLoginSession,
  deleteLoginSessionsOfUser,
  findLiveLoginSession,
  insertLoginSession,
} from "../../src/store/login_sessions.ts";
import {
  deleteExpiredPendingLogins,
  insertPendingLogin,
  keepNewestPendingLoginsOfBrowser,
  takePendingLogin,
} from "../../src/store/pending_logins.ts";
import { findProviderAccountId, insertProviderAccount } from "../../src/store/provider_accounts.ts";
import {
  deleteServiceToken,
  findServiceToken,
  listServiceConnections,
  saveServiceToken,
} from "../../src/store/service_tokens.ts";
import {
  claimBucketReport,
  clearThrottleEvents,
  countThrottleKeys,
  deleteThrottleEvent,
  insertThrottleEvent,
  latestThrottleEvent,
  pruneRateBuckets,
  pruneThrottleEvents,
  pruneThrottleEventsOfKey,
  readBucket,
  recentThrottleEvents,
  takeBucketTokens,
} from "../../src/store/shared_counters.ts";
import {
  allSigningKeys,
  deleteSigningKeysRetiredBefore,
  rotateSigningKey,
  signingKeyOrInsert,
  verificationSigningKeys,
} from "../../src/store/signing_keys.ts";
import type { Store } from "../../src/store/store.ts";
import { forEachStore } from "../helpers/stores.ts";

/** An epoch-ms time well past 2^32 (2027-01-15): a 32-bit column would not hold it. */
const T = 1_800_000_000_000;
const MINUTE = 60_000;
const IDENTITY = JSON.stringify({ id: "alice", name: "Alice", groups: ["staff"] });

/** Counts the rows of `table` (a name from this file, never input). */
function count(store: Store, table: string): number {
  return Number((store.db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number | bigint }).n);
}

// --- audit ---

forEachStore("insertAuditEntry() and recentAuditEntries() keep rows newest first, of some kinds", (store) => {
  insertAuditEntry(store, { at: T, kind: "sign_in", subject: "alice", detail: '{"provider":"local"}' });
  insertAuditEntry(store, { at: T + 1, kind: "reload", subject: undefined, detail: "{}" });
  insertAuditEntry(store, { at: T + 2, kind: "token_grant", subject: "app", detail: '{"client_id":"app"}' });
  insertAuditEntry(store, { at: T + 3, kind: "denial", subject: "bob", detail: "{}" });

  const all = recentAuditEntries(store, 10);
  assert.deepEqual(all.map((entry) => entry.kind), ["denial", "token_grant", "reload", "sign_in"]);
  assert.deepEqual(all.map((entry) => entry.at), [T + 3, T + 2, T + 1, T]);
  assert.ok(all.every((entry) => typeof entry.id === "number"), "ids are numbers");
  assert.ok(all[0]!.id > all[1]!.id && all[1]!.id > all[2]!.id, "ids grow with each insert");
  assert.equal(all[2]!.subject, undefined, "no subject reads back as undefined");
  assert.equal(all[3]!.detail, '{"provider":"local"}');

  assert.deepEqual(recentAuditEntries(store, 2).map((entry) => entry.kind), ["denial", "token_grant"]);
  assert.deepEqual(
    recentAuditEntries(store, 10, ["sign_in", "denial"]).map((entry) => entry.kind),
    ["denial", "sign_in"],
  );
  assert.deepEqual(recentAuditEntries(store, 1, ["sign_in", "reload"]).map((entry) => entry.kind), [
    "reload",
  ]);
  assert.deepEqual(recentAuditEntries(store, 10, ["nothing"]), []);
  assert.equal(recentAuditEntries(store, 10, []).length, 4, "no kinds given: every kind");
});

forEachStore("latestAuditTimePerClient() gives each client_id's newest row of a kind", (store) => {
  const grant = (at: number, detail: Record<string, unknown>) =>
    insertAuditEntry(store, { at, kind: "token_grant", subject: "alice", detail: JSON.stringify(detail) });
  grant(T, { client_id: "app" });
  grant(T + 5 * MINUTE, { client_id: "app", scope: "mcp" });
  grant(T + MINUTE, { client_id: "cli" });
  grant(T + 9 * MINUTE, { grant_type: "client_credentials" }); // no client_id: left out
  grant(T + 8 * MINUTE, { client_id: 42 }); // not a string: left out
  insertAuditEntry(store, {
    at: T + 10 * MINUTE,
    kind: "sign_in",
    subject: "x",
    detail: '{"client_id":"app"}',
  });

  const latest = latestAuditTimePerClient(store, "token_grant");
  assert.deepEqual(
    [...latest.entries()].sort(),
    [["app", T + 5 * MINUTE], ["cli", T + MINUTE]],
  );
  assert.equal(latestAuditTimePerClient(store, "consent").size, 0);
});

forEachStore("deleteAuditEntriesBefore() deletes rows older than the cutoff and counts them", (store) => {
  for (let minute = 0; minute < 5; minute++) {
    insertAuditEntry(store, { at: T + minute * MINUTE, kind: "reload", subject: undefined, detail: "{}" });
  }
  assert.equal(deleteAuditEntriesBefore(store, T + 2 * MINUTE), 2);
  assert.deepEqual(recentAuditEntries(store, 10).map((entry) => entry.at), [
    T + 4 * MINUTE,
    T + 3 * MINUTE,
    T + 2 * MINUTE,
  ]);
  assert.equal(deleteAuditEntriesBefore(store, T), 0);
});

// --- oauth_clients ---

function dynamicClient(store: Store, clientId: string, createdAt: number, registeredFrom?: string): void {
  insertDynamicClient(store, {
    clientId,
    metadata: JSON.stringify({ client_name: clientId, redirect_uris: ["http://127.0.0.1/cb"] }),
    secretHash: undefined,
    registrationTokenHash: `rat-${clientId}`,
    createdAt,
    registeredFrom,
  });
}

forEachStore("insertDynamicClient(), findClient() and listClients() keep dynamic clients", (store) => {
  insertDynamicClient(store, {
    clientId: "confidential",
    metadata: '{"client_name":"C"}',
    secretHash: "secret-hash",
    registrationTokenHash: "rat-hash",
    createdAt: T + 1,
    registeredFrom: "203.0.113.7",
  });
  dynamicClient(store, "public-b", T);
  dynamicClient(store, "public-a", T);

  assert.deepEqual(findClient(store, "confidential"), {
    clientId: "confidential",
    kind: "dynamic",
    metadata: '{"client_name":"C"}',
    secretHash: "secret-hash",
    registrationTokenHash: "rat-hash",
    createdAt: T + 1,
    expiresAt: undefined,
  });
  assert.equal(findClient(store, "public-a")?.secretHash, undefined);
  assert.equal(findClient(store, "missing"), undefined);
  assert.deepEqual(
    listClients(store).map((client) => client.clientId),
    ["public-a", "public-b", "confidential"],
    "oldest first, then by id",
  );
  assert.throws(() => dynamicClient(store, "public-a", T + 2), "a client id is unique");
  assert.equal(listClients(store).length, 3, "the store is still usable after the refused insert");
});

forEachStore("saveMetadataDocumentClient() caches a document and replaces the earlier copy", (store) => {
  const url = "https://app.example/client.json";
  saveMetadataDocumentClient(store, {
    clientId: url,
    metadata: '{"v":1}',
    fetchedAt: T,
    expiresAt: T + MINUTE,
  });
  saveMetadataDocumentClient(store, {
    clientId: url,
    metadata: '{"v":2}',
    fetchedAt: T + 2 * MINUTE,
    expiresAt: T + 3 * MINUTE,
  });
  assert.deepEqual(findClient(store, url), {
    clientId: url,
    kind: "metadata_document",
    metadata: '{"v":2}',
    secretHash: undefined,
    registrationTokenHash: undefined,
    createdAt: T,
    expiresAt: T + 3 * MINUTE,
  });
  assert.equal(listClients(store).length, 1);
});

forEachStore(
  "registrationTimesOf() gives a network's recent registrations, newest first, bounded",
  (store) => {
    dynamicClient(store, "a", T, "198.51.100.0");
    dynamicClient(store, "b", T + MINUTE, "198.51.100.0");
    dynamicClient(store, "c", T + 2 * MINUTE, "198.51.100.0");
    dynamicClient(store, "d", T + 3 * MINUTE, "2001:db8::/64");
    dynamicClient(store, "e", T + 4 * MINUTE, undefined);
    assert.deepEqual(registrationTimesOf(store, "198.51.100.0", T, 10), [T + 2 * MINUTE, T + MINUTE]);
    assert.deepEqual(registrationTimesOf(store, "198.51.100.0", T - 1, 2), [T + 2 * MINUTE, T + MINUTE]);
    assert.deepEqual(registrationTimesOf(store, "2001:db8::/64", 0, 10), [T + 3 * MINUTE]);
    assert.deepEqual(registrationTimesOf(store, "192.0.2.0", 0, 10), []);
  },
);

forEachStore(
  "deleteUnusedDynamicClients() deletes clients without a grant, with their consents and codes",
  (store) => {
    dynamicClient(store, "unused", T);
    dynamicClient(store, "used", T);
    dynamicClient(store, "young", T + 10 * MINUTE);
    saveMetadataDocumentClient(store, {
      clientId: "https://app.example/c.json",
      metadata: "{}",
      fetchedAt: T,
      expiresAt: T + MINUTE,
    });
    markClientFirstGrant(store, "used", T + MINUTE);
    markClientFirstGrant(store, "used", T + 2 * MINUTE); // later grants change nothing
    markClientFirstGrant(store, "https://app.example/c.json", T + MINUTE); // dynamic clients only
    for (const clientId of ["unused", "used", "young"]) {
      saveConsent(store, { userId: "alice", clientId, scope: "mcp", grantedAt: T });
      insertCode(store, code(`code-${clientId}`, { clientId }));
    }

    const deleted = store.transaction(() => deleteUnusedDynamicClients(store, T + 5 * MINUTE));
    assert.equal(deleted, 1);
    assert.deepEqual(
      listClients(store).map((client) => client.clientId).sort(),
      ["https://app.example/c.json", "used", "young"],
    );
    assert.equal(hasConsent(store, "alice", "unused"), false);
    assert.equal(findCode(store, "code-unused"), undefined);
    assert.equal(hasConsent(store, "alice", "used"), true);
    assert.ok(findCode(store, "code-young"));
    const firstGrant = store.db.prepare("SELECT first_grant_at FROM oauth_clients WHERE client_id = ?")
      .get("used") as { first_grant_at: number };
    assert.equal(firstGrant.first_grant_at, T + MINUTE, "the first grant's time stays");
    assert.equal(store.transaction(() => deleteUnusedDynamicClients(store, T + 5 * MINUTE)), 0);
  },
);

forEachStore("updateClientMetadata() and deleteClient() change one client only", (store) => {
  dynamicClient(store, "one", T);
  dynamicClient(store, "two", T);
  updateClientMetadata(store, "one", '{"client_name":"renamed"}');
  assert.equal(findClient(store, "one")?.metadata, '{"client_name":"renamed"}');
  assert.notEqual(findClient(store, "two")?.metadata, '{"client_name":"renamed"}');
  deleteClient(store, "one");
  assert.equal(findClient(store, "one"), undefined);
  assert.ok(findClient(store, "two"));
});

// --- consents ---

forEachStore(
  "saveConsent() records and renews consents; consentsOfClient() and deleteConsentsOfClient()",
  (store) => {
    assert.equal(hasConsent(store, "alice", "app"), false);
    saveConsent(store, { userId: "alice", clientId: "app", scope: "mcp", grantedAt: T });
    saveConsent(store, { userId: "bob", clientId: "app", scope: "mcp", grantedAt: T + 1 });
    saveConsent(store, { userId: "alice", clientId: "cli", scope: "mcp", grantedAt: T + 2 });
    saveConsent(store, { userId: "alice", clientId: "app", scope: "mcp more", grantedAt: T + 3 });
    assert.equal(hasConsent(store, "alice", "app"), true);
    assert.deepEqual(consentsOfClient(store, "app"), [
      { userId: "alice", grantedAt: T + 3 },
      { userId: "bob", grantedAt: T + 1 },
    ]);
    assert.equal(count(store, "consents"), 3, "a renewal replaces, never adds");
    assert.equal(deleteConsentsOfClient(store, "app"), 2);
    assert.equal(hasConsent(store, "alice", "app"), false);
    assert.equal(hasConsent(store, "alice", "cli"), true);
    assert.equal(deleteConsentsOfClient(store, "app"), 0);
  },
);

// --- grants: codes ---

function code(
  codeHash: string,
  fields: { clientId?: string; userId?: string; expiresAt?: number; redirectUriGiven?: boolean } = {},
) {
  return {
    codeHash,
    clientId: fields.clientId ?? "app",
    userId: fields.userId ?? "alice",
    identity: IDENTITY,
    redirectUri: "http://127.0.0.1:53682/callback",
    redirectUriGiven: fields.redirectUriGiven ?? true,
    codeChallenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    resource: "http://127.0.0.1:8740/mcp",
    scope: "mcp",
    expiresAt: fields.expiresAt ?? T + MINUTE,
  };
}

forEachStore("insertCode(), findCode() and markCodeUsed() keep a code for a single use", (store) => {
  insertCode(store, code("given"));
  insertCode(store, code("not-given", { redirectUriGiven: false }));
  const { codeHash: _, ...stored } = code("given");
  assert.deepEqual(findCode(store, "given"), { ...stored, usedAt: undefined, familyId: undefined });
  assert.equal(findCode(store, "not-given")?.redirectUriGiven, false);
  assert.equal(findCode(store, "missing"), undefined);

  assert.equal(markCodeUsed(store, "given", T + 1, "family-1"), true);
  assert.equal(markCodeUsed(store, "given", T + 2, "family-2"), false, "single use");
  const used = findCode(store, "given");
  assert.equal(used?.usedAt, T + 1);
  assert.equal(used?.familyId, "family-1");
});

forEachStore("deleteUnusedCodesOf() and deleteCodesExpiredBy() delete the codes they name", (store) => {
  insertCode(store, code("alice-app"));
  insertCode(store, code("alice-used"));
  insertCode(store, code("bob-app", { userId: "bob" }));
  insertCode(store, code("bob-cli", { userId: "bob", clientId: "cli", expiresAt: T + 10 * MINUTE }));
  markCodeUsed(store, "alice-used", T, "family");
  assert.equal(deleteUnusedCodesOf(store, { userId: "alice" }), 1);
  assert.ok(findCode(store, "alice-used"), "exchanged codes stay (their family is revoked on replay)");
  assert.equal(deleteUnusedCodesOf(store, { clientId: "app" }), 1);
  assert.equal(findCode(store, "bob-app"), undefined);
  deleteCodesExpiredBy(store, T + MINUTE);
  assert.equal(findCode(store, "alice-used"), undefined);
  assert.ok(findCode(store, "bob-cli"));
});

// --- grants: refresh tokens ---

function refreshToken(
  tokenHash: string,
  fields: { familyId?: string; clientId?: string; userId?: string; expiresAt?: number } = {},
) {
  return {
    tokenHash,
    familyId: fields.familyId ?? "family-1",
    clientId: fields.clientId ?? "app",
    userId: fields.userId ?? "alice",
    identity: IDENTITY,
    resource: "http://127.0.0.1:8740/mcp",
    scope: "mcp",
    expiresAt: fields.expiresAt ?? T + 30 * MINUTE,
    accessJti: `jti-of-${tokenHash}`,
  };
}

forEachStore("insertRefreshToken() and findRefreshToken() keep a refresh token whole", (store) => {
  insertRefreshToken(store, refreshToken("r1"));
  const { accessJti, ...rest } = refreshToken("r1");
  assert.deepEqual(findRefreshToken(store, "r1"), {
    ...rest,
    accessJti,
    usedAt: undefined,
    revokedAt: undefined,
    successorHash: undefined,
    retiredAt: undefined,
  });
  assert.equal(findRefreshToken(store, "missing"), undefined);
});

forEachStore("recordRefreshTokenUse() keeps the first use's time and the latest successor", (store) => {
  insertRefreshToken(store, refreshToken("r1"));
  recordRefreshTokenUse(store, "r1", T + 1, "r2");
  recordRefreshTokenUse(store, "r1", T + 2, "r3");
  const used = findRefreshToken(store, "r1");
  assert.equal(used?.usedAt, T + 1);
  assert.equal(used?.successorHash, "r3");
  recordRefreshTokenUse(store, "r1", T + 3, undefined);
  assert.equal(findRefreshToken(store, "r1")?.successorHash, undefined);
});

forEachStore(
  "retireRefreshToken() and revokeRefreshFamily() revoke once, keeping the first time",
  (store) => {
    insertRefreshToken(store, refreshToken("r1"));
    insertRefreshToken(store, refreshToken("r2"));
    insertRefreshToken(store, refreshToken("other", { familyId: "family-2" }));
    retireRefreshToken(store, "r2", T + 1);
    const retired = findRefreshToken(store, "r2");
    assert.equal(retired?.revokedAt, T + 1);
    assert.equal(retired?.retiredAt, T + 1);

    assert.equal(revokeRefreshFamily(store, "family-1", T + 2), 1, "r2 was revoked already");
    assert.equal(findRefreshToken(store, "r1")?.revokedAt, T + 2);
    assert.equal(findRefreshToken(store, "r2")?.revokedAt, T + 1);
    assert.equal(findRefreshToken(store, "other")?.revokedAt, undefined);
    assert.equal(revokeRefreshFamily(store, "family-1", T + 3), 0);
    retireRefreshToken(store, "r1", T + 4);
    assert.equal(findRefreshToken(store, "r1")?.retiredAt, undefined, "a revoked token is not retired later");
  },
);

forEachStore(
  "deleteRefreshTokensOfClient() and deleteExpiredRefreshTokens() delete the tokens they name",
  (store) => {
    insertRefreshToken(store, refreshToken("app-1"));
    insertRefreshToken(store, refreshToken("cli-1", { clientId: "cli", familyId: "f-cli" }));
    insertRefreshToken(store, refreshToken("cli-old", { clientId: "cli", familyId: "f-old", expiresAt: T }));
    deleteRefreshTokensOfClient(store, "app");
    assert.equal(findRefreshToken(store, "app-1"), undefined);
    deleteExpiredRefreshTokens(store, T);
    assert.equal(findRefreshToken(store, "cli-old"), undefined);
    assert.ok(findRefreshToken(store, "cli-1"));
  },
);

// --- grants: access tokens and revocations ---

function accessToken(
  store: Store,
  jti: string,
  fields: { familyId?: string; clientId?: string; userId?: string; expiresAt?: number } = {},
): void {
  insertAccessToken(store, {
    jti,
    familyId: fields.familyId ?? `family-${jti}`,
    expiresAt: fields.expiresAt ?? T + 10 * MINUTE,
    clientId: fields.clientId ?? "app",
    userId: fields.userId ?? "alice",
  });
}

/** The revoked jtis live at `nowMs`, sorted. */
function revoked(store: Store, nowMs = T): string[] {
  return liveAccessTokenRevocations(store, nowMs).map((revocation) => revocation.jti).sort();
}

forEachStore("revokeAccessToken() lists a jti until it expires, once", (store) => {
  revokeAccessToken(store, "j1", T + MINUTE);
  revokeAccessToken(store, "j1", T + 2 * MINUTE);
  revokeAccessToken(store, "j2", T - 1);
  assert.deepEqual(liveAccessTokenRevocations(store, T), [{ jti: "j1", expiresAt: T + MINUTE }]);
  assert.deepEqual(liveAccessTokenRevocations(store, T + MINUTE), [], "gone at its expiry");
});

forEachStore("revokeLiveAccessToken() revokes a recorded token unless it expired", (store) => {
  accessToken(store, "live");
  accessToken(store, "expired", { expiresAt: T });
  assert.equal(revokeLiveAccessToken(store, "live", T), true);
  assert.equal(revokeLiveAccessToken(store, "live", T), false, "revoked already");
  assert.equal(revokeLiveAccessToken(store, "expired", T), false);
  assert.equal(revokeLiveAccessToken(store, "unknown", T), false);
  assert.deepEqual(liveAccessTokenRevocations(store, T), [{ jti: "live", expiresAt: T + 10 * MINUTE }]);
});

forEachStore(
  "revokeLiveAccessTokensOfFamily() and revokeLiveAccessTokensOf() revoke by family, user and client",
  (store) => {
    accessToken(store, "f1-a", { familyId: "f1" });
    accessToken(store, "f1-b", { familyId: "f1" });
    accessToken(store, "f1-expired", { familyId: "f1", expiresAt: T - 1 });
    accessToken(store, "bob-app", { userId: "bob" });
    accessToken(store, "bob-cli", { userId: "bob", clientId: "cli" });
    accessToken(store, "carol-cli", { userId: "carol", clientId: "cli" });

    assert.equal(revokeLiveAccessTokensOfFamily(store, "f1", T), 2);
    assert.equal(revokeLiveAccessTokensOfFamily(store, "f1", T), 0, "each once");
    assert.deepEqual(revoked(store), ["f1-a", "f1-b"]);

    assert.equal(revokeLiveAccessTokensOf(store, { userId: "bob" }, T), 2);
    assert.deepEqual(revoked(store), ["bob-app", "bob-cli", "f1-a", "f1-b"]);
    assert.equal(revokeLiveAccessTokensOf(store, { clientId: "cli" }, T), 1, "bob-cli was revoked already");
    assert.deepEqual(revoked(store), ["bob-app", "bob-cli", "carol-cli", "f1-a", "f1-b"]);
  },
);

forEachStore(
  "revokeAccessTokensOfClientFamilies() revokes the access tokens of a client's families",
  (store) => {
    insertRefreshToken(store, refreshToken("r", { familyId: "from-refresh", clientId: "cli" }));
    insertCode(store, code("c", { clientId: "cli" }));
    markCodeUsed(store, "c", T, "from-code");
    insertCode(store, code("unused", { clientId: "cli" }));
    accessToken(store, "a1", { familyId: "from-refresh" });
    accessToken(store, "a2", { familyId: "from-code" });
    accessToken(store, "a3", { familyId: "someone-else" });
    revokeAccessTokensOfClientFamilies(store, "cli");
    revokeAccessTokensOfClientFamilies(store, "cli");
    assert.deepEqual(revoked(store), ["a1", "a2"]);
  },
);

forEachStore("deleteExpiredAccessTokens() drops expired records and revocations", (store) => {
  accessToken(store, "old", { expiresAt: T });
  accessToken(store, "new", { expiresAt: T + MINUTE });
  revokeAccessToken(store, "old", T);
  revokeAccessToken(store, "new", T + MINUTE);
  deleteExpiredAccessTokens(store, T);
  assert.equal(count(store, "access_token_grants"), 1);
  assert.equal(count(store, "revoked_access_tokens"), 1);
  assert.deepEqual(revoked(store, 0), ["new"]);
});

forEachStore(
  "accessTokenRevocationsRevision() moves with each revoking write, and is unknown in a transaction",
  (store) => {
    const before = accessTokenRevocationsRevision(store);
    assert.equal(typeof before, "number");
    revokeAccessToken(store, "j", T + MINUTE);
    const after = accessTokenRevocationsRevision(store)!;
    assert.ok(after > before!);
    store.transaction(() => {
      revokeLiveAccessTokensOf(store, { userId: "alice" }, T);
      assert.equal(accessTokenRevocationsRevision(store), undefined);
    });
    assert.ok(accessTokenRevocationsRevision(store)! > after);
  },
);

// --- grants: families ---

forEachStore(
  "activeFamilies() lists families with a usable refresh token or a live, unrevoked access token",
  (store) => {
    // Refresh families: usable, used (rotated), revoked, expired.
    insertRefreshToken(store, refreshToken("usable", { familyId: "f-usable" }));
    insertRefreshToken(store, refreshToken("used", { familyId: "f-used" }));
    recordRefreshTokenUse(store, "used", T, "next");
    insertRefreshToken(store, refreshToken("revoked", { familyId: "f-revoked", userId: "bob" }));
    revokeRefreshFamily(store, "f-revoked", T);
    insertRefreshToken(store, refreshToken("expired", { familyId: "f-expired", expiresAt: T }));
    // A code's family whose access token is live; a client_credentials token (a family of its own).
    insertCode(store, code("c", { clientId: "cli" }));
    markCodeUsed(store, "c", T, "f-code");
    accessToken(store, "code-access", { familyId: "f-code", clientId: "cli" });
    accessToken(store, "machine", { familyId: "f-machine", clientId: "robot", userId: "robot" });
    accessToken(store, "revoked-access", { familyId: "f-revoked-access", userId: "bob" });
    revokeAccessToken(store, "revoked-access", T + 10 * MINUTE);
    accessToken(store, "old-access", { familyId: "f-old-access", expiresAt: T });

    assert.deepEqual(activeFamilies(store, T), [
      { familyId: "f-code", clientId: "cli", userId: "alice" },
      { familyId: "f-machine", clientId: "robot", userId: "robot" },
      { familyId: "f-usable", clientId: "app", userId: "alice" },
    ]);
    assert.deepEqual(activeFamilies(store, T, { userId: "alice" }).map((family) => family.familyId), [
      "f-code",
      "f-usable",
    ]);
    assert.deepEqual(activeFamilies(store, T, { clientId: "robot" }).map((family) => family.familyId), [
      "f-machine",
    ]);
    assert.deepEqual(activeFamilies(store, T, { userId: "bob" }), []);
    assert.deepEqual(activeFamilies(store, T + 60 * MINUTE), [], "everything expired by then");

    assert.deepEqual(familiesOf(store, { userId: "bob" }).sort(), ["f-revoked", "f-revoked-access"]);
    assert.deepEqual(familiesOf(store, { clientId: "cli" }).sort(), ["f-code"]);
    assert.deepEqual(familiesOf(store, { userId: "alice" }).sort(), [
      "f-code",
      "f-expired",
      "f-old-access",
      "f-usable",
      "f-used",
    ]);
  },
);

// --- browser_sessions ---

function loginSession(store: Store, tokenHash: string, userId: string, expiresAt: number): void {
  insertLoginSession(store, {
    tokenHash,
    userId,
    identity: JSON.stringify({ id: userId }),
    csrf: `csrf-${tokenHash}`,
    createdAt: T,
    expiresAt,
  });
}

forEachStore("insertLoginSession() and findLiveLoginSession() find a session until it expires", (store) => {
  loginSession(store, "s1", "alice", T + MINUTE);
  assert.deepEqual(findLiveLoginSession(store, "s1", T), {
    identity: '{"id":"alice"}',
    csrf: "csrf-s1",
    expiresAt: T + MINUTE,
  });
  assert.equal(findLiveLoginSession(store, "s1", T + MINUTE), undefined, "expired at its expiry");
  assert.equal(findLiveLoginSession(store, "missing", T), undefined);
  deleteLoginSession(store, "s1");
  assert.equal(findLiveLoginSession(store, "s1", T), undefined);
});

forEachStore("deleteLoginSessionsOfUser() deletes a user's sessions and counts the live ones", (store) => {
  loginSession(store, "a-live-1", "alice", T + MINUTE);
  loginSession(store, "a-live-2", "alice", T + 2 * MINUTE);
  loginSession(store, "a-expired", "alice", T - 1);
  loginSession(store, "b-live", "bob", T + MINUTE);
  loginSession(store, "b-expired", "bob", T - 1);
  assert.equal(deleteLoginSessionsOfUser(store, "alice", T), 2);
  assert.equal(count(store, "browser_sessions"), 2, "every one of alice's, expired ones too");
  deleteExpiredLoginSessions(store, T);
  assert.equal(count(store, "browser_sessions"), 1);
  assert.ok(findLiveLoginSession(store, "b-live", T));
});

// --- pending_logins ---

function pendingLogin(
  store: Store,
  stateHash: string,
  fields: { bindingHash?: string; provider?: string; createdAt?: number } = {},
): void {
  const createdAt = fields.createdAt ?? T;
  insertPendingLogin(store, {
    stateHash,
    provider: fields.provider ?? "github",
    codeVerifier: `verifier-${stateHash}`,
    nonce: `nonce-${stateHash}`,
    returnTo: "/authorize?client_id=app",
    bindingHash: fields.bindingHash ?? "browser-a",
    address: "198.51.100.0",
    createdAt,
    expiresAt: createdAt + 10 * MINUTE,
  });
}

forEachStore("takePendingLogin() takes a pending sign-in once, for its own browser and provider", (store) => {
  pendingLogin(store, "state-1");
  assert.equal(
    takePendingLogin(store, { stateHash: "state-1", bindingHash: "browser-b", provider: "github" }),
    undefined,
  );
  assert.equal(
    takePendingLogin(store, { stateHash: "state-1", bindingHash: "browser-a", provider: "corp" }),
    undefined,
  );
  assert.deepEqual(
    takePendingLogin(store, { stateHash: "state-1", bindingHash: "browser-a", provider: "github" }),
    {
      codeVerifier: "verifier-state-1",
      nonce: "nonce-state-1",
      returnTo: "/authorize?client_id=app",
    },
  );
  assert.equal(
    takePendingLogin(store, { stateHash: "state-1", bindingHash: "browser-a", provider: "github" }),
    undefined,
    "single use",
  );
});

forEachStore(
  "keepNewestPendingLoginsOfBrowser() keeps one browser's newest, nobody else's touched",
  (store) => {
    for (let index = 0; index < 5; index++) {
      pendingLogin(store, `a-${index}`, {
        createdAt: T + index * MINUTE,
      });
    }
    pendingLogin(store, "b-old", { bindingHash: "browser-b", createdAt: T - MINUTE });
    keepNewestPendingLoginsOfBrowser(store, "browser-a", 2);
    const left = (store.db.prepare("SELECT state_hash FROM pending_logins ORDER BY state_hash").all() as {
      state_hash: string;
    }[]).map((row) => row.state_hash);
    assert.deepEqual(left, ["a-3", "a-4", "b-old"]);
  },
);

forEachStore(
  "keepNewestPendingLoginsOfBrowser() keeps the latest inserted among sign-ins of the same millisecond",
  (store) => {
    for (const state of ["z-first", "m-second", "a-third"]) pendingLogin(store, state, { createdAt: T });
    keepNewestPendingLoginsOfBrowser(store, "browser-a", 2);
    const left = (store.db.prepare("SELECT state_hash FROM pending_logins ORDER BY state_hash").all() as {
      state_hash: string;
    }[]).map((row) => row.state_hash);
    assert.deepEqual(left, ["a-third", "m-second"]);
  },
);

forEachStore("deleteExpiredPendingLogins() deletes the sign-ins that expired", (store) => {
  pendingLogin(store, "old", { createdAt: T - 10 * MINUTE });
  pendingLogin(store, "new", { createdAt: T });
  deleteExpiredPendingLogins(store, T);
  assert.equal(count(store, "pending_logins"), 1);
  assert.ok(takePendingLogin(store, { stateHash: "new", bindingHash: "browser-a", provider: "github" }));
});

// --- connect_tickets ---

forEachStore(
  "insertConnectTicket(), findConnectTicket() and markConnectTicketUsed(): a single-use link",
  (store) => {
    insertConnectTicket(store, {
      ticketHash: "t1",
      userId: "alice",
      service: "github",
      elicitationId: "e-1",
      expiresAt: T + MINUTE,
    });
    assert.deepEqual(findConnectTicket(store, "t1"), {
      userId: "alice",
      service: "github",
      elicitationId: "e-1",
      expiresAt: T + MINUTE,
      usedAt: undefined,
    });
    assert.equal(markConnectTicketUsed(store, "t1", T + 1), true);
    assert.equal(markConnectTicketUsed(store, "t1", T + 2), false, "single use");
    assert.equal(findConnectTicket(store, "t1")?.usedAt, T + 1);
    assert.equal(findConnectTicket(store, "missing"), undefined);
    deleteConnectTicketsExpiredBy(store, T + MINUTE);
    assert.equal(findConnectTicket(store, "t1"), undefined);
  },
);

forEachStore(
  "insertPendingConnect(), findPendingConnect() and consumePendingConnect(): a callback taken once",
  (store) => {
    const pending = {
      userId: "alice",
      service: "github",
      codeVerifier: "verifier",
      elicitationId: undefined,
      expiresAt: T + MINUTE,
    };
    insertPendingConnect(store, "state-1", pending);
    insertPendingConnect(store, "state-2", { ...pending, elicitationId: "e-2", expiresAt: T });
    assert.deepEqual(findPendingConnect(store, "state-1"), pending);
    assert.equal(findPendingConnect(store, "state-2")?.elicitationId, "e-2");
    assert.equal(consumePendingConnect(store, "state-1"), true);
    assert.equal(consumePendingConnect(store, "state-1"), false, "single use, on any replica");
    assert.equal(findPendingConnect(store, "state-1"), undefined);
    deletePendingConnectsExpiredBy(store, T);
    assert.equal(findPendingConnect(store, "state-2"), undefined);
    assert.equal(findPendingConnect(store, "missing"), undefined);
  },
);

// --- service_tokens ---

forEachStore(
  "saveServiceToken() keeps and replaces tokens; findServiceToken() and listServiceConnections() read them",
  (store) => {
    const save = (userId: string, service: string, sealed: string, expiresAt: number | undefined) =>
      saveServiceToken(store, { userId, service, sealed, scope: "repo", expiresAt, updatedAt: T });
    save("bob", "github", "sealed-1", T + MINUTE);
    save("alice", "slack", "sealed-2", undefined);
    save("alice", "github", "sealed-3", T + MINUTE);
    saveServiceToken(store, {
      userId: "alice",
      service: "github",
      sealed: "sealed-4",
      scope: "repo read:org",
      expiresAt: undefined,
      updatedAt: T + 1,
    });
    assert.deepEqual(findServiceToken(store, "alice", "github"), {
      sealed: "sealed-4",
      expiresAt: undefined,
      updatedAt: T + 1,
    });
    assert.deepEqual(findServiceToken(store, "bob", "github"), {
      sealed: "sealed-1",
      expiresAt: T + MINUTE,
      updatedAt: T,
    });
    assert.deepEqual(
      listServiceConnections(store).map((connection) => `${connection.userId}/${connection.service}`),
      ["alice/github", "alice/slack", "bob/github"],
    );
    assert.deepEqual(listServiceConnections(store, "alice"), [
      { userId: "alice", service: "github", scope: "repo read:org", expiresAt: undefined, updatedAt: T + 1 },
      { userId: "alice", service: "slack", scope: "repo", expiresAt: undefined, updatedAt: T },
    ]);
    deleteServiceToken(store, "alice", "github");
    assert.equal(findServiceToken(store, "alice", "github"), undefined);
    assert.equal(listServiceConnections(store).length, 2);
  },
);

// --- backend_lists ---

forEachStore(
  "saveBackendList() keeps and replaces a backend's list per method; findBackendList() reads it",
  (store) => {
    saveBackendList(store, {
      backend: "gh",
      method: "tools/list",
      definition: "d1",
      items: "[1]",
      updatedAt: T,
    });
    saveBackendList(store, {
      backend: "gh",
      method: "prompts/list",
      definition: "d1",
      items: "[]",
      updatedAt: T,
    });
    saveBackendList(store, {
      backend: "gh",
      method: "tools/list",
      definition: "d2",
      items: "[2]",
      updatedAt: T + 1,
    });
    assert.deepEqual(findBackendList(store, "gh", "tools/list"), { definition: "d2", items: "[2]" });
    assert.deepEqual(findBackendList(store, "gh", "prompts/list"), { definition: "d1", items: "[]" });
    assert.equal(findBackendList(store, "other", "tools/list"), undefined);
    assert.equal(count(store, "backend_lists"), 2);
  },
);

// --- local_users ---

forEachStore(
  "insertLocalUser(), findLocalUser() and hasLocalUsers() keep local users, the first of a name",
  (store) => {
    assert.equal(hasLocalUsers(store), false);
    assert.equal(
      insertLocalUser(store, {
        name: "admin",
        passwordHash: "$argon2id$x",
        groups: '["admins"]',
        createdAt: T,
      }),
      true,
    );
    assert.equal(hasLocalUsers(store), true);
    assert.deepEqual(findLocalUser(store, "admin"), { passwordHash: "$argon2id$x", groups: '["admins"]' });
    assert.equal(findLocalUser(store, "Admin"), undefined, "names are case-sensitive");
    assert.equal(
      insertLocalUser(store, { name: "admin", passwordHash: "$argon2id$y", groups: "[]", createdAt: T + 1 }),
      false,
      "a second replica's first-start admin adds nothing",
    );
    assert.equal(findLocalUser(store, "admin")?.passwordHash, "$argon2id$x");
  },
);

// --- provider_accounts ---

forEachStore(
  "insertProviderAccount() and findProviderAccountId() keep the first account behind a user id",
  (store) => {
    assert.equal(findProviderAccountId(store, "github:octocat"), undefined);
    insertProviderAccount(store, { userId: "github:octocat", accountId: "583231", firstSeen: T });
    assert.equal(findProviderAccountId(store, "github:octocat"), "583231");
    assert.throws(() =>
      insertProviderAccount(store, { userId: "github:octocat", accountId: "9", firstSeen: T })
    );
    assert.equal(findProviderAccountId(store, "github:octocat"), "583231");
  },
);

// --- authorization_requests ---

forEachStore(
  "insertAuthorizationRequest(), findAuthorizationRequest() and deleteAuthorizationRequest(): held once",
  (store) => {
    const params = JSON.stringify({ client_id: "app", scope: "mcp" });
    insertAuthorizationRequest(store, { handleHash: "h1", bindingHash: "b1", params, expiresAt: T + MINUTE });
    insertAuthorizationRequest(store, { handleHash: "h2", bindingHash: "b1", params, expiresAt: T });
    assert.deepEqual(findAuthorizationRequest(store, "h1"), {
      bindingHash: "b1",
      params,
      expiresAt: T + MINUTE,
    });
    assert.equal(deleteAuthorizationRequest(store, "h1"), true);
    assert.equal(deleteAuthorizationRequest(store, "h1"), false, "single use");
    deleteExpiredAuthorizationRequests(store, T);
    assert.equal(findAuthorizationRequest(store, "h2"), undefined);
    assert.equal(findAuthorizationRequest(store, "missing"), undefined);
  },
);

// --- transactions across families ---

forEachStore(
  "Store.transaction() rolls back every family's writes when a statement fails inside it",
  (store) => {
    dynamicClient(store, "app", T);
    assert.throws(() =>
      store.transaction(() => {
        saveConsent(store, { userId: "alice", clientId: "app", scope: "mcp", grantedAt: T });
        insertCode(store, code("c1"));
        dynamicClient(store, "app", T); // a duplicate: fails
      })
    );
    assert.equal(hasConsent(store, "alice", "app"), false);
    assert.equal(findCode(store, "c1"), undefined);
    saveConsent(store, { userId: "alice", clientId: "app", scope: "mcp", grantedAt: T });
    assert.equal(hasConsent(store, "alice", "app"), true, "the store takes writes again");
  },
);

// --- mcp_sessions ---

function mcpSession(store: Store, sessionHash: string, createdAt = T, userId = "alice"): void {
  insertMcpSession(store, {
    sessionHash,
    endpoint: "",
    userId,
    clientId: "app",
    state: '{"protocolVersion":"2025-11-25"}',
    createdAt,
  });
}

forEachStore(
  "insertMcpSession() and findLiveMcpSession() keep a session's first record while it is seen",
  (store) => {
    mcpSession(store, "s1");
    insertMcpSession(store, {
      sessionHash: "s1",
      endpoint: "mis",
      userId: "mallory",
      clientId: undefined,
      state: "{}",
      createdAt: T + 1,
    });
    assert.deepEqual(findLiveMcpSession(store, "s1", T - 1), {
      endpoint: "",
      userId: "alice",
      clientId: "app",
      state: '{"protocolVersion":"2025-11-25"}',
      seenAt: T,
    });
    assert.equal(findLiveMcpSession(store, "s1", T), undefined, "last seen at the bound: expired");
    assert.equal(findLiveMcpSession(store, "missing", 0), undefined);
  },
);

forEachStore(
  "touchMcpSessions() moves seen_at forward only and reports the sessions still recorded",
  (store) => {
    const hashes = Array.from({ length: 40 }, (_, index) => `s${index}`); // more than one batch
    for (const hash of hashes) mcpSession(store, hash);
    deleteMcpSession(store, "s3");
    const present = touchMcpSessions(store, [...hashes, "never-recorded"], T + MINUTE);
    assert.equal(present.size, 39);
    assert.equal(present.has("s3") || present.has("never-recorded"), false);
    assert.equal(findLiveMcpSession(store, "s39", 0)?.seenAt, T + MINUTE);
    touchMcpSessions(store, ["s0"], T + 1);
    assert.equal(findLiveMcpSession(store, "s0", 0)?.seenAt, T + MINUTE, "a later time is kept");
  },
);

forEachStore(
  "deleteMcpSessionIfUnseen() and deleteUnseenMcpSessions() delete only sessions not seen since",
  (store) => {
    mcpSession(store, "old", T);
    mcpSession(store, "new", T + MINUTE);
    mcpSession(store, "other", T);
    assert.equal(deleteMcpSessionIfUnseen(store, "new", T), false);
    assert.equal(deleteMcpSessionIfUnseen(store, "old", T), true);
    assert.equal(deleteUnseenMcpSessions(store, T), 1);
    assert.ok(findLiveMcpSession(store, "new", 0));
    assert.equal(count(store, "mcp_sessions"), 1);
  },
);

// --- shared counters: rate_buckets ---

forEachStore(
  "takeBucketTokens() takes from a bucket that refills at its capacity a minute, never past it",
  (store) => {
    const take = (count: number, now: number, bucket = "limit:everyone:bob") =>
      takeBucketTokens(store, { bucket, capacity: 6, count, now });
    assert.equal(take(7, T), undefined, "more than a new bucket holds: nothing taken, nothing stored");
    assert.equal(readBucket(store, "limit:everyone:bob"), undefined);
    assert.equal(take(1, T), 5, "a new bucket starts full");
    assert.equal(take(5, T), 0);
    assert.equal(take(1, T + 9_999), undefined, "less than one token back");
    assert.deepEqual(readBucket(store, "limit:everyone:bob"), {
      tokens: 0,
      updatedAt: T,
      reportedAt: undefined,
    });
    assert.equal(take(1, T + 10_000), 0, "one token every 10 s");
    assert.equal(take(1, T + 5_000), undefined, "an earlier clock refills nothing");
    assert.equal(readBucket(store, "limit:everyone:bob")?.updatedAt, T + 10_000, "and never moves time back");
    assert.equal(take(2, T + 10 * MINUTE), 4, "refilled up to its capacity only");
    assert.equal(take(6, T, "limit:everyone:alice"), 0, "each bucket on its own");
    assert.equal(typeof take(1, T + 10 * MINUTE), "number");
  },
);

forEachStore(
  "claimBucketReport() lets one caller report a refusal per interval; pruneRateBuckets() drops idle buckets",
  (store) => {
    const claim = (now: number, due: number, bucket = "b") =>
      claimBucketReport(store, { bucket, capacity: 6, now, due });
    assert.equal(claim(T, T - MINUTE), true, "a missing bucket is claimed (and stored full)");
    assert.deepEqual(readBucket(store, "b"), { tokens: 6, updatedAt: T, reportedAt: T });
    assert.equal(claim(T + 1, T + 1 - MINUTE), false, "reported within the interval");
    assert.equal(claim(T + MINUTE, T), true, "reported again once the last report is due");
    takeBucketTokens(store, { bucket: "busy", capacity: 6, count: 1, now: T + 2 * MINUTE });
    takeBucketTokens(store, { bucket: "idle", capacity: 6, count: 1, now: T });
    assert.equal(pruneRateBuckets(store, T), 1, "idle only: b was reported after the cutoff");
    assert.equal(readBucket(store, "idle"), undefined);
    assert.equal(pruneRateBuckets(store, T + MINUTE), 1);
    assert.ok(readBucket(store, "busy"));
  },
);

// --- shared counters: throttle_events ---

forEachStore(
  "insertThrottleEvent() and recentThrottleEvents() count attempts per scope and key, newest first",
  (store) => {
    for (const at of [T, T + 1, T + 2, T + 3]) insertThrottleEvent(store, "password", "alice", at);
    insertThrottleEvent(store, "password", "bob", T + 5);
    insertThrottleEvent(store, "registration", "alice", T + 6);
    assert.deepEqual(recentThrottleEvents(store, "password", "alice", T, 10), [T + 3, T + 2, T + 1]);
    assert.deepEqual(recentThrottleEvents(store, "password", "alice", 0, 2), [T + 3, T + 2]);
    assert.equal(latestThrottleEvent(store, "password", "alice"), T + 3);
    assert.equal(latestThrottleEvent(store, "password", "carol"), undefined);
    assert.equal(countThrottleKeys(store, "password"), 2);
    assert.equal(countThrottleKeys(store, "provider_start"), 0);
  },
);

forEachStore(
  "deleteThrottleEvent() takes back one attempt; the clear and prune functions delete what they name",
  (store) => {
    insertThrottleEvent(store, "password", "alice", T);
    insertThrottleEvent(store, "password", "alice", T);
    insertThrottleEvent(store, "password", "alice", T + MINUTE);
    deleteThrottleEvent(store, "password", "alice", T);
    assert.deepEqual(
      recentThrottleEvents(store, "password", "alice", 0, 10),
      [T + MINUTE, T],
      "one of the two",
    );
    pruneThrottleEventsOfKey(store, "password", "alice", T);
    assert.deepEqual(recentThrottleEvents(store, "password", "alice", 0, 10), [T + MINUTE]);
    insertThrottleEvent(store, "password", "bob", T);
    insertThrottleEvent(store, "registration", "bob", T);
    assert.equal(pruneThrottleEvents(store, "password", T), 1);
    clearThrottleEvents(store, "password", "alice");
    assert.equal(countThrottleKeys(store, "password"), 0);
    assert.equal(countThrottleKeys(store, "registration"), 1);
  },
);

// --- signing_keys ---

forEachStore(
  "signingKeyOrInsert() stores the first candidate and gives every later caller that key",
  (store) => {
    const first = signingKeyOrInsert(store, { kid: "kid-b", sealed: "sealed-b" }, T);
    assert.deepEqual(first, { kid: "kid-b", sealed: "sealed-b" });
    assert.deepEqual(signingKeyOrInsert(store, { kid: "kid-a", sealed: "sealed-a" }, T + 1), first);
    assert.deepEqual(allSigningKeys(store), [{ ...first, createdAt: T, retiredAt: undefined }]);
  },
);

forEachStore(
  "rotateSigningKey() retires the signing key; verificationSigningKeys() lists what tokens may carry",
  (store) => {
    signingKeyOrInsert(store, { kid: "k1", sealed: "s1" }, T);
    rotateSigningKey(store, { kid: "k2", sealed: "s2" }, T + MINUTE);
    rotateSigningKey(store, { kid: "k3", sealed: "s3" }, T + 2 * MINUTE);
    assert.deepEqual(signingKeyOrInsert(store, { kid: "k9", sealed: "s9" }, T + 3 * MINUTE), {
      kid: "k3",
      sealed: "s3",
    });
    assert.deepEqual(verificationSigningKeys(store, T + MINUTE), [
      { kid: "k3", sealed: "s3", createdAt: T + 2 * MINUTE, retiredAt: undefined },
      { kid: "k2", sealed: "s2", createdAt: T + MINUTE, retiredAt: T + 2 * MINUTE },
    ], "the signing key first, then those retired after the cutoff, newest first");
    assert.deepEqual(allSigningKeys(store).map((key) => key.kid), ["k1", "k2", "k3"]);
    assert.equal(deleteSigningKeysRetiredBefore(store, T + MINUTE), 1);
    assert.deepEqual(allSigningKeys(store).map((key) => key.kid), ["k2", "k3"]);
  },
);

// --- what someone typed, holding U+0000 (PostgreSQL text cannot hold it) ---

forEachStore(
  "findClient(), findLocalUser() and insertAuditEntry() take text holding U+0000 alike on both databases",
  (store) => {
    dynamicClient(store, "app", T);
    insertLocalUser(store, { name: "alice", passwordHash: "$argon2id$x", groups: "[]", createdAt: T });
    assert.equal(findClient(store, "app\u0000"), undefined);
    assert.equal(findLocalUser(store, "al\u0000ice"), undefined);
    insertAuditEntry(store, {
      at: T,
      kind: "sign_in_failed",
      subject: "al\u0000ice",
      detail: '{"u":"\\u0000"}',
    });
    const [entry] = recentAuditEntries(store, 1);
    assert.equal(entry?.subject, "al\uFFFDice", "kept as the replacement character");
    assert.equal(JSON.parse(entry!.detail).u, "\u0000", "JSON detail escapes it by itself");
  },
);
