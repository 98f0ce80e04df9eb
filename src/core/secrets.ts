/** Random tokens, secret hashing, constant-time comparison and PKCE challenges. */
import { base64url } from "jose";

const encodeBase64Url = (bytes: Uint8Array) => base64url.encode(bytes);

/** A random token of `bytes` bytes, base64url: codes, refresh tokens, session cookies, CSRF tokens. */
export function randomToken(bytes = 32): string {
  return encodeBase64Url(crypto.getRandomValues(new Uint8Array(bytes)));
}

/** How secrets are kept in the store: a SHA-256 digest, base64url (they are long random values). */
export async function hashSecret(secret: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(secret));
  return encodeBase64Url(new Uint8Array(digest));
}

/** Compares two strings in time that does not depend on where they differ. */
export function timingSafeEqual(a: string, b: string): boolean {
  const left = new TextEncoder().encode(a);
  const right = new TextEncoder().encode(b);
  let difference = left.length ^ right.length;
  for (let index = 0; index < Math.max(left.length, right.length); index++) {
    difference |= (left[index] ?? 0) ^ (right[index] ?? 0);
  }
  return difference === 0;
}

/** RFC 7636 §4.6: BASE64URL(SHA256(code_verifier)). */
export async function pkceChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return encodeBase64Url(new Uint8Array(digest));
}
