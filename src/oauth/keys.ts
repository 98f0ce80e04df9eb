/**
 * The token signing key: made on first start, kept in the data directory as `signing-key.json`, or, when
 * several replicas share the store, in the store sealed with the vault key (one key for all of them).
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, importJWK, type JWK } from "jose";
import { join } from "node:path";
import type { Vault } from "../services/vault.ts";
import { signingKeyOrInsert } from "../store/signing_keys.ts";
import type { Store } from "../store/store.ts";

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
  return await signingKey(privateJwk);
}

/** Sealed keys are bound to this purpose and their kid (the vault's additional data). */
const SEAL_PURPOSE = "gatehouse:signing_key";

/**
 * The signing key shared by every replica on `store`: the one in the store, or, on the first start of the
 * first replica, a new one put there (sealed with the vault key, which every replica is configured with).
 */
export async function loadOrCreateSharedSigningKey(store: Store, vault: Vault): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair(ALGORITHM, { extractable: true });
  const candidateJwk = await exportJWK(privateKey);
  const candidateKid = await calculateJwkThumbprint(candidateJwk);
  const candidate = {
    kid: candidateKid,
    sealed: await vault.seal(JSON.stringify(candidateJwk), SEAL_PURPOSE, candidateKid),
  };
  const stored = signingKeyOrInsert(store, candidate, Date.now());
  let privateJwk: JWK;
  try {
    privateJwk = JSON.parse(await vault.open(stored.sealed, SEAL_PURPOSE, stored.kid));
  } catch {
    throw new Error(
      "Cannot open the signing key in the store: gateway.vault_key differs from the one the first replica used",
    );
  }
  return await signingKey(privateJwk);
}

async function signingKey(privateJwk: JWK): Promise<SigningKey> {
  const kid = await calculateJwkThumbprint(privateJwk);
  const { d: _private, ...publicJwk } = privateJwk;
  const privateKey = await importJWK(privateJwk, ALGORITHM) as CryptoKey;
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, alg: ALGORITHM, use: "sig" } };
}
