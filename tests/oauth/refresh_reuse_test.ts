/**
 * The refresh reuse interval: a refresh token presented again shortly after its rotation, its successor never
 * used (the answer of the rotation was lost), gets a fresh pair instead of revoking the family; anything else
 * still revokes it (RFC 9700 §4.14.2). Driven on the authorization server with a clock the tests move, and
 * once end to end through a running gateway.
 */
import assert from "node:assert/strict";
import { decodeJwt } from "jose";
import { AuditLog } from "../../src/audit/audit.ts";
import type { Registry } from "../../src/config/types.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { Identity } from "../../src/core/caller.ts";
import { AuthorizationServer, type TokenResponse } from "../../src/oauth/authorization_server.ts";
import { ClientDirectory, type OAuthClient } from "../../src/oauth/clients.ts";
import { OAuthError } from "../../src/core/oauth_error.ts";
import { loadOrCreateSigningKey, type SigningKey } from "../../src/oauth/keys.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { registryOf, withTempDir, yaml } from "../config/_helpers.ts";
import { mcpInitialize, signedInTokens, startOAuthGateway, tokenCall } from "./_flow.ts";

const START = 1_800_000_000_000;
const BASE = "https://gw.example";
const REDIRECT = "https://app.example/callback";
const ALICE: Identity = { id: "alice", name: "alice", groups: ["staff"] };

let signingKey: Promise<SigningKey> | undefined;
/** One signing key for the module (made in a temporary directory). */
function key(): Promise<SigningKey> {
  signingKey ??= withTempDir((dir) => loadOrCreateSigningKey(dir));
  return signingKey;
}

/** An authorization server on an in-memory store, with a clock the test moves and registry client "app". */
interface World {
  readonly server: AuthorizationServer;
  readonly store: Store;
  readonly audit: AuditLog;
  readonly client: OAuthClient;
  /** Moves the clock forward. */
  advance(ms: number): void;
  /** Runs the code flow for alice: the first pair of a new family. */
  signIn(): Promise<TokenResponse>;
  /** The refresh grant; an OAuthError is returned, not thrown. */
  refresh(token: string): Promise<TokenResponse | OAuthError>;
}

async function withWorld(
  work: (world: World) => Promise<void>,
  reuseInterval = "30s",
): Promise<void> {
  const registry: Registry = await registryOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  auth: oauth",
        `  public_url: ${BASE}`,
        `  refresh_reuse_interval: ${reuseInterval}`,
        "clients:",
        `  app: { name: App, redirect_uris: ["${REDIRECT}"] }`,
      ),
    },
  });
  let now = START;
  const clock = () => now;
  const store = openStore(":memory:");
  try {
    const clients = new ClientDirectory(store, () => registry, { now: clock });
    const audit = new AuditLog(store, clock);
    const server = new AuthorizationServer({
      store,
      registry: () => registry,
      clients,
      key: await key(),
      log: createLogger({ level: "error", write: () => {} }),
      audit,
      baseUrl: () => BASE,
      now: clock,
    });
    const client = (await clients.find("app"))!;
    const signIn = async () => {
      const query = new URLSearchParams({
        client_id: "app",
        response_type: "code",
        redirect_uri: REDIRECT,
        code_challenge_method: "S256",
        // RFC 7636 Appendix B.
        code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
      });
      const request = await server.parseAuthorizationRequest(query);
      const code = new URL(await server.issueCode(request, ALICE)).searchParams.get("code")!;
      return await server.token(
        client,
        new URLSearchParams({
          grant_type: "authorization_code",
          code,
          code_verifier: "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
          redirect_uri: REDIRECT,
        }),
      );
    };
    const refresh = async (token: string) => {
      try {
        return await server.token(
          client,
          new URLSearchParams({ grant_type: "refresh_token", refresh_token: token }),
        );
      } catch (error) {
        if (error instanceof OAuthError) return error;
        throw error;
      }
    };
    await work({ server, store, audit, client, advance: (ms) => now += ms, signIn, refresh });
  } finally {
    store.close();
  }
}

/** A successful token answer (or a failure naming what came back). */
function granted(answer: TokenResponse | OAuthError): TokenResponse {
  if (answer instanceof OAuthError) assert.fail(`expected tokens, got ${answer.error}: ${answer.message}`);
  assert.ok(answer.refresh_token, "a refresh token");
  return answer;
}

function refused(answer: TokenResponse | OAuthError, why: string): void {
  assert.ok(answer instanceof OAuthError, `${why}: expected invalid_grant, got tokens`);
  assert.equal(answer.error, "invalid_grant", why);
}

const jtiOf = (tokens: TokenResponse) => decodeJwt(tokens.access_token).jti!;

/** Refresh tokens of the store still usable (neither used nor revoked). */
function liveRefreshTokens(store: Store): number {
  return (store.db.prepare(
    "SELECT count(*) AS n FROM refresh_tokens WHERE used_at IS NULL AND revoked_at IS NULL",
  ).get() as { n: number }).n;
}

Deno.test("AuthorizationServer.token() accepts a rotated refresh token again within the reuse interval while its successor is unused, and retires the successor", async () => {
  await withWorld(async ({ server, store, audit, advance, signIn, refresh }) => {
    const first = await signIn();
    advance(60_000);
    const lost = granted(await refresh(first.refresh_token!)); // this answer never reaches the client
    advance(10_000);

    const retried = granted(await refresh(first.refresh_token!));
    assert.notEqual(retried.refresh_token, lost.refresh_token);
    assert.equal(server.isRevoked(jtiOf(retried)), false, "the retry's access token works");
    assert.equal(server.isRevoked(jtiOf(lost)), true, "the lost answer's access token is retired with it");
    assert.equal(liveRefreshTokens(store), 1, "one live refresh token in the family");
    const [retry] = audit.recent(10, ["refresh_retry"]);
    assert.equal(retry?.subject, "alice");
    assert.deepEqual(retry?.detail, { client_id: "app", seconds_since_rotation: 10 });
    assert.deepEqual(audit.recent(10, ["refresh_reuse"]), [], "a retry is not a reuse");

    // The family goes on from the retry's pair.
    advance(60_000);
    const next = granted(await refresh(retried.refresh_token!));

    // The unused successor no longer works; presenting it is a reuse (whoever holds it copied an answer the
    // client never saw), so the family is revoked.
    refused(await refresh(lost.refresh_token!), "the retired successor");
    refused(await refresh(next.refresh_token!), "the family after the retired successor was presented");
    assert.equal(audit.recent(10, ["refresh_reuse"]).at(-1)?.detail.token_state, "retired");
  });
});

Deno.test("AuthorizationServer.token() revokes the family when a rotated refresh token comes back after its successor was used", async () => {
  await withWorld(async ({ server, store, audit, advance, signIn, refresh }) => {
    // The same timing twice: the successor unused is a retry, the successor used is a reuse.
    const unused = await signIn();
    granted(await refresh(unused.refresh_token!));
    advance(1_000);
    granted(await refresh(unused.refresh_token!));

    const first = await signIn();
    const successor = granted(await refresh(first.refresh_token!));
    const newest = granted(await refresh(successor.refresh_token!));
    advance(1_000);
    refused(await refresh(first.refresh_token!), "the first token after its successor was used");
    refused(await refresh(newest.refresh_token!), "the newest token of the revoked family");
    assert.equal(server.isRevoked(jtiOf(newest)), true, "the family's access token is revoked");
    assert.equal(audit.recent(10, ["refresh_reuse"]).at(-1)?.detail.token_state, "rotated");
    assert.equal(liveRefreshTokens(store), 1, "the other family lives on");
  });
});

Deno.test("AuthorizationServer.token() revokes the family when a rotated refresh token comes back after the reuse interval", async () => {
  await withWorld(async ({ server, advance, signIn, refresh }) => {
    const early = await signIn();
    const late = await signIn();
    granted(await refresh(early.refresh_token!));
    const lateSuccessor = granted(await refresh(late.refresh_token!));

    advance(4_999);
    granted(await refresh(early.refresh_token!)); // just within 5 s
    advance(1);
    refused(await refresh(late.refresh_token!), "a retry 5 s after the rotation");
    refused(
      await refresh(lateSuccessor.refresh_token!),
      "the unused successor of a family revoked for reuse",
    );
    assert.equal(server.isRevoked(jtiOf(lateSuccessor)), true);
  }, "5s");
});

// Decision: a second retry of the same token within the interval is accepted too (the retry's answer can be
// lost as well); it retires the pair the first retry issued, so one pair of the family stays live. The window
// counts from the first rotation, so retries cannot stretch it.
Deno.test("AuthorizationServer.token() accepts a second retry within the interval, retiring the first retry's pair, and none after it", async () => {
  await withWorld(async ({ server, store, advance, signIn, refresh }) => {
    const first = await signIn();
    const lost = granted(await refresh(first.refresh_token!));
    advance(10_000);
    const retry1 = granted(await refresh(first.refresh_token!));
    advance(10_000);
    const retry2 = granted(await refresh(first.refresh_token!));
    assert.equal(server.isRevoked(jtiOf(lost)), true);
    assert.equal(server.isRevoked(jtiOf(retry1)), true, "the first retry's access token is retired");
    assert.equal(server.isRevoked(jtiOf(retry2)), false);
    assert.equal(liveRefreshTokens(store), 1);

    advance(10_000); // 30 s after the rotation, only 10 s after the last retry
    refused(await refresh(first.refresh_token!), "a third retry past the interval");
    refused(await refresh(retry2.refresh_token!), "the family after a late retry");
    assert.equal(liveRefreshTokens(store), 0);
  });
});

Deno.test("AuthorizationServer.token() leaves one live pair when two retries of one token run at once", async () => {
  await withWorld(async ({ server, store, advance, signIn, refresh }) => {
    const first = await signIn();
    const lost = granted(await refresh(first.refresh_token!));
    advance(2_000);
    const answers = (await Promise.all([refresh(first.refresh_token!), refresh(first.refresh_token!)]))
      .map(granted);
    assert.equal(liveRefreshTokens(store), 1, "only one of the two answers stays valid");
    const live = answers.filter((answer) => !server.isRevoked(jtiOf(answer)));
    assert.equal(live.length, 1, "one live access token of the two");
    assert.equal(server.isRevoked(jtiOf(lost)), true);
    granted(await refresh(live[0]!.refresh_token!));
  });
});

Deno.test("POST /token with a refresh token whose answer was lost keeps the user signed in", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { clientId, tokens } = await signedInTokens(gateway.base);
    const refresh = (token: string) =>
      tokenCall(gateway.base, { grant_type: "refresh_token", client_id: clientId, refresh_token: token });
    const lost = await refresh(tokens.refresh_token);
    assert.equal(lost.status, 200, JSON.stringify(lost.body));

    const retried = await refresh(tokens.refresh_token);
    assert.equal(retried.status, 200, JSON.stringify(retried.body));
    assert.equal((await mcpInitialize(`${gateway.base}/mcp`, retried.body.access_token)).status, 200);
    assert.equal(
      (await mcpInitialize(`${gateway.base}/mcp`, lost.body.access_token)).status,
      401,
      "the lost answer's access token is retired",
    );
    const next = await refresh(retried.body.refresh_token!);
    assert.equal(next.status, 200, JSON.stringify(next.body));
  } finally {
    await gateway.close();
  }
});
