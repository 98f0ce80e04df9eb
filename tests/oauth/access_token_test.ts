import assert from "node:assert/strict";
import {
  InvalidTokenError,
  issueAccessToken,
  rememberedTokens,
  VERIFIED_TOKENS_MAX,
  verifyAccessToken,
} from "../../src/oauth/access_token.ts";
import { loadOrCreateSigningKey } from "../../src/oauth/keys.ts";

const ISSUER = "https://gate.example";
const MCP = `${ISSUER}/mcp`;
const IDENTITY = { id: "alice", name: "Alice", groups: ["staff"] };

async function setup() {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-token-" });
  const key = await loadOrCreateSigningKey(dir);
  await Deno.remove(dir, { recursive: true });
  const issue = (audience = MCP, ttlSeconds = 600, now = Date.now()) =>
    issueAccessToken(key, { issuer: ISSUER, audience, clientId: "c", scope: "mcp", identity: IDENTITY }, {
      ttlSeconds,
      now: () => now,
    });
  return { key, issue };
}

Deno.test("verifyAccessToken() remembers a verified token, yet checks revocation, expiry and audience every time", async () => {
  const { key, issue } = await setup();
  const { token, jti } = await issue();
  const revoked = new Set<string>();
  const options = { issuer: ISSUER, audiences: [MCP], isRevoked: (id: string) => revoked.has(id) };
  assert.equal((await verifyAccessToken(token, key, options)).id, "alice");
  assert.equal((await verifyAccessToken(token, key, options)).id, "alice", "again, from memory");
  // Another resource: refused although the token is remembered.
  await assert.rejects(
    verifyAccessToken(token, key, { ...options, audiences: [`${ISSUER}/mcp/other`] }),
    InvalidTokenError,
  );
  // Another issuer (public_url changed): refused.
  await assert.rejects(
    verifyAccessToken(token, key, { ...options, issuer: "https://other.example" }),
    InvalidTokenError,
  );
  // Past its expiry: refused, with the clock the caller gives.
  await assert.rejects(
    verifyAccessToken(token, key, { ...options, now: () => Date.now() + 601_000 }),
    InvalidTokenError,
  );
  // Revoked: refused at once.
  revoked.add(jti);
  await assert.rejects(verifyAccessToken(token, key, options), (error: Error) => {
    assert.ok(error instanceof InvalidTokenError);
    assert.equal(error.message, "revoked");
    return true;
  });
});

Deno.test("verifyAccessToken() checks a token it has not seen in full: a changed byte is refused", async () => {
  const { key, issue } = await setup();
  const { token } = await issue();
  const options = { issuer: ISSUER, audiences: [MCP], isRevoked: () => false };
  await verifyAccessToken(token, key, options);
  const [header, payload, signature] = token.split(".");
  const flipped = signature!.startsWith("A") ? `B${signature!.slice(1)}` : `A${signature!.slice(1)}`;
  await assert.rejects(verifyAccessToken(`${header}.${payload}.${flipped}`, key, options), InvalidTokenError);
  // Another key never shares the memory of this one.
  const other = await setup();
  await assert.rejects(verifyAccessToken(token, other.key, options), InvalidTokenError);
});

Deno.test("verifyAccessToken() remembers at most VERIFIED_TOKENS_MAX tokens per key", async () => {
  const { key, issue } = await setup();
  const options = { issuer: ISSUER, audiences: [MCP], isRevoked: () => false };
  const first = await issue();
  await verifyAccessToken(first.token, key, options);
  for (let index = 0; index < VERIFIED_TOKENS_MAX; index++) {
    await verifyAccessToken((await issue()).token, key, options);
  }
  assert.equal(rememberedTokens(key), VERIFIED_TOKENS_MAX);
  // The first one was forgotten, and is simply verified again.
  assert.equal((await verifyAccessToken(first.token, key, options)).jti, first.jti);
  assert.equal(rememberedTokens(key), VERIFIED_TOKENS_MAX);
});
