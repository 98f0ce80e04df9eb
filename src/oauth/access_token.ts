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

/**
 * Verifies an access token: signature by our key (ES256 only: `alg: none` and HS256 confusion fail),
 * issuer, audience among `audiences`, expiry, and not revoked.
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
  const keySet = createLocalJWKSet({ keys: [key.publicJwk] });
  let payload;
  try {
    ({ payload } = await jwtVerify(token, keySet, {
      issuer: options.issuer,
      audience: [...options.audiences],
      algorithms: ["ES256"],
      typ: "at+jwt",
      currentDate: options.now ? new Date(options.now()) : undefined,
    }));
  } catch (error) {
    const reason = error instanceof joseErrors.JOSEError ? error.code : "malformed";
    throw new InvalidTokenError(reason);
  }
  const jti = String(payload.jti ?? "");
  if (!jti || options.isRevoked(jti)) throw new InvalidTokenError("revoked");
  const audience = Array.isArray(payload.aud) ? String(payload.aud[0]) : String(payload.aud);
  return {
    id: String(payload.sub),
    name: String(payload.name ?? payload.sub),
    email: typeof payload.email === "string" ? payload.email : undefined,
    groups: Array.isArray(payload.groups) ? payload.groups.map(String) : [],
    provider: typeof payload.provider === "string" ? payload.provider : undefined,
    clientId: String(payload.client_id ?? ""),
    scope: String(payload.scope ?? ""),
    audience,
    jti,
    expiresAt: Number(payload.exp),
  };
}
