/** The token signing key: made on first start, kept in the data directory as `signing-key.json`. */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { join } from "node:path";

/** The gateway's token signing key: ES256, made on first start, kept in the data directory. */
export interface SigningKey {
  readonly kid: string;
  readonly privateKey: CryptoKey;
  /** The public half as published at /jwks.json. */
  readonly publicJwk: JWK;
}

export const SIGNING_KEY_FILE = "signing-key.json";
const ALGORITHM = "ES256";

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
    const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
    privateJwk = await exportJWK(privateKey);
    // Written whole or not at all: a half-written key would lock every client out on the next start.
    const temporary = `${path}.tmp`;
    await Deno.writeTextFile(temporary, JSON.stringify(privateJwk), { mode: 0o600, createNew: true });
    await Deno.rename(temporary, path);
  }
  const kid = await calculateJwkThumbprint(privateJwk);
  const { d: _private, ...publicJwk } = privateJwk;
  const privateKey = await importJWK(privateJwk, ALGORITHM) as CryptoKey;
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: ALGORITHM, use: "sig" } };
}
