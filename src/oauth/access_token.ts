/** Access tokens: ES256 JWTs bound to one resource (RFC 9068), issued and verified. */
import type { Identity } from "../core/caller.ts";
import { createLocalJWKSet, errors as joseErrors, jwtVerify, SignJWT } from "jose";
import type { SigningKey } from "./keys.ts";
import { randomToken } from "../core/secrets.ts";

export interface AccessTokenClaims extends Identity {
  readonly clientId: string;
  readonly scope: string;
  /** The RFC 8707 resource the token is for (`aud`). */
  readonly audience: string;
  readonly jti: string;
  readonly expiresAt: number;
}

/** Issues an access token: a JWT (ES256, `typ: at+jwt`, RFC 9068) bound to one resource. */
export async function issueAccessToken(
  key: SigningKey,
  input: { issuer: string; audience: string; clientId: string; scope: string; identity: Identity },
  options: { ttlSeconds: number; now?: () => number },
): Promise<{ token: string; jti: string; expiresAt: number }> {
  const issuedAt = Math.floor((options.now ?? Date.now)() / 1000);
  const expiresAt = issuedAt + options.ttlSeconds;
  const jti = randomToken(16);
  const { identity } = input;
  const token = await new SignJWT({
    client_id: input.clientId,
    scope: input.scope,
    name: identity.name,
    ...(identity.email ? { email: identity.email } : {}),
    groups: [...identity.groups],
    ...(identity.provider ? { provider: identity.provider } : {}),
  })
    .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "at+jwt" })
    .setIssuer(input.issuer)
    .setSubject(identity.id)
    .setAudience(input.audience)
    .setIssuedAt(issuedAt)
    .setExpirationTime(expiresAt)
    .setJti(jti)
    .sign(key.privateKey);
  return { token, jti, expiresAt };
}

/** Why a bearer token was refused; never shown to the client beyond "invalid_token". */
export class InvalidTokenError extends Error {
  readonly code = "ERR_INVALID_TOKEN";
  constructor(reason: string) {
    super(reason);
    this.name = "InvalidTokenError";
  }
}

/** Tokens whose signature has been checked, by key: a request carrying one again skips the ES256 work. */
const VERIFIED = new WeakMap<SigningKey, Map<string, AccessTokenClaims & { readonly issuer: string }>>();
/** Bound on the tokens remembered per key; past it the oldest is forgotten. */
export const VERIFIED_TOKENS_MAX = 4096;

/** How many verified tokens are remembered for `key` now. */
export function rememberedTokens(key: SigningKey): number {
  return VERIFIED.get(key)?.size ?? 0;
}

/**
 * Verifies an access token: signature by our key (ES256 only: `alg: none` and HS256 confusion fail),
 * issuer, audience among `audiences`, expiry, and not revoked. The signature and claims of a token seen
 * before are remembered (until it expires, at most `VERIFIED_TOKENS_MAX` tokens); issuer, audience, expiry
 * and revocation are checked on every call, so a revocation takes effect at once.
 */
export async function verifyAccessToken(
  token: string,
  key: SigningKey,
  options: {
    issuer: string;
    audiences: readonly string[];
    isRevoked: (jti: string) => boolean;
    now?: () => number;
  },
): Promise<AccessTokenClaims> {
  const now = (options.now ?? Date.now)();
  let cache = VERIFIED.get(key);
  if (!cache) VERIFIED.set(key, cache = new Map());
  let claims = cache.get(token);
  if (!claims) {
    claims = await verifySignature(token, key, options.issuer, now);
    if (cache.size >= VERIFIED_TOKENS_MAX) cache.delete(cache.keys().next().value!);
    cache.set(token, claims);
  }
  if (claims.expiresAt * 1000 <= now) {
    cache.delete(token);
    throw new InvalidTokenError("ERR_JWT_EXPIRED");
  }
  if (claims.issuer !== options.issuer) throw new InvalidTokenError("ERR_JWT_CLAIM_VALIDATION_FAILED");
  if (!options.audiences.includes(claims.audience)) {
    throw new InvalidTokenError("ERR_JWT_CLAIM_VALIDATION_FAILED");
  }
  if (options.isRevoked(claims.jti)) throw new InvalidTokenError("revoked");
  const { issuer: _issuer, ...verified } = claims;
  return verified;
}

/** The ES256 check of a token and its registered claims; what it says of the user, once checked. */
async function verifySignature(
  token: string,
  key: SigningKey,
  issuer: string,
  now: number,
): Promise<AccessTokenClaims & { readonly issuer: string }> {
  const verify = () =>
    jwtVerify(token, createLocalJWKSet({ keys: [...key.verificationKeys?.() ?? [key.publicJwk]] }), {
      issuer,
      algorithms: ["ES256"],
      typ: "at+jwt",
      currentDate: new Date(now),
    });
  let payload;
  try {
    ({ payload } = await verify().catch(async (error) => {
      // A key another replica has just rotated in: read the key set again, once.
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || !(await key.reload?.())) throw error;
      return await verify();
    }));
  } catch (error) {
    const reason = error instanceof joseErrors.JOSEError ? error.code : "malformed";
    throw new InvalidTokenError(reason);
  }
  const jti = String(payload.jti ?? "");
  // One audience: Gatehouse issues each token for one resource (RFC 8707), and a list could widen a hit.
  if (!jti || typeof payload.aud !== "string" || typeof payload.exp !== "number") {
    throw new InvalidTokenError("ERR_JWT_CLAIM_VALIDATION_FAILED");
  }
  return {
    issuer,
    id: String(payload.sub),
    name: String(payload.name ?? payload.sub),
    email: typeof payload.email === "string" ? payload.email : undefined,
    groups: Array.isArray(payload.groups) ? payload.groups.map(String) : [],
    provider: typeof payload.provider === "string" ? payload.provider : undefined,
    clientId: String(payload.client_id ?? ""),
    scope: String(payload.scope ?? ""),
    audience: payload.aud,
    jti,
    expiresAt: payload.exp,
  };
}
