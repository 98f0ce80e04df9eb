/**
 * The token signing key: made on first start, kept in the data directory as `signing-key.json` (replicas on
 * a shared store use `shared_keys.ts` instead).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { join } from "node:path";

/** The gateway's token signing key: ES256, made on first start, kept in the data directory. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public half as published at /jwks.json. */
  readonly publicJwk: JWK;
  /**
   * Every key a valid token may be signed with, this one first (a rotated-out key verifies until its
   * tokens expire); absent: this one only.
   */
  verificationKeys?(): readonly JWK[];
  /** Reads the key set again (a token names a key not known yet); says whether it changed. */
  reload?(): Promise<boolean>;
}

export const SIGNING_ALGORITHM = "ES256";

export const SIGNING_KEY_FILE = "signing-key.json";

/** Loads the signing key from `dataDir`, creating it (mode 0600) when there is none. */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const path = join(dataDir, SIGNING_KEY_FILE);
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await Deno.readTextFile(path));
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) {
      throw new Error(`Cannot read the signing key in the data directory: ${(error as Error).name}`);
    }
    const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
    privateJwk = await exportJWK(privateKey);
    // Written whole or not at all: a half-written key would lock every client out on the next start.
    const temporary = `${path}.tmp`;
    await Deno.writeTextFile(temporary, JSON.stringify(privateJwk), { mode: 0o600, createNew: true });
    await Deno.rename(temporary, path);
  }
  return await signingKey(privateJwk);
}

/** A signing key from its private JWK. */
export async function signingKey(privateJwk: JWK): Promise<SigningKey> {
  const kid = await calculateJwkThumbprint(privateJwk);
  const { d: _private, ...publicJwk } = privateJwk;
  const privateKey = await importJWK(privateJwk, SIGNING_ALGORITHM) as CryptoKey;
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: SIGNING_ALGORITHM, use: "sig" } };
}
