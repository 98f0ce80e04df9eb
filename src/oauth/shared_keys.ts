/**
 * The signing keys of replicas on a shared store: one key signs, the same on every replica; keys rotated out
 * (`gatehouse keys rotate`) still verify until the tokens they signed expire. Kept in the store sealed with
 * the vault key; read again when a replica announces a rotation, or when a token names a key not known yet.
 */
import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from "jose";
import type { Vault } from "../services/vault.ts";
import {
  hasSigningKey,
  rotateSigningKey,
  signingKeyOrInsert,
  type StoredSigningKey,
  verificationSigningKeys,
} from "../store/signing_keys.ts";
import type { Store } from "../store/store.ts";
import { SIGNING_ALGORITHM, type SigningKey, signingKey } from "./keys.ts";

/** Sealed keys are bound to this purpose and their kid (the vault's additional data). */
const SEAL_PURPOSE = "gatehouse:signing_key";
/** What a rotation announces to the other replicas. */
export const SIGNING_KEYS_TOPIC = "signing_keys";
/** A token naming an unknown key reads the store again at most this often. */
const RELOAD_INTERVAL_MS = 1000;

/** A new key pair, sealed for the store. */
export async function newSealedSigningKey(vault: Vault): Promise<StoredSigningKey> {
  const { privateKey } = await generateKeyPair(SIGNING_ALGORITHM, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = await calculateJwkThumbprint(jwk);
  return { kid, sealed: await vault.seal(JSON.stringify(jwk), SEAL_PURPOSE, kid) };
}

/** Makes a new key the one that signs on every replica; returns its kid. */
export async function rotateSharedSigningKey(store: Store, vault: Vault, now = Date.now()): Promise<string> {
  const next = await newSealedSigningKey(vault);
  rotateSigningKey(store, next, now);
  store.announce(SIGNING_KEYS_TOPIC);
  return next.kid;
}

export class SharedSigningKeys implements SigningKey {
  readonly #store: Store;
  readonly #vault: Vault;
  readonly #retainMs: () => number;
  readonly #now: () => number;
  #signer!: SigningKey;
  #verification: readonly JWK[] = [];
  #opened = new Map<string, SigningKey>();
  #reloadedAt = -Infinity;

  private constructor(store: Store, vault: Vault, retainMs: () => number, now: () => number) {
    this.#store = store;
    this.#vault = vault;
    this.#retainMs = retainMs;
    this.#now = now;
  }

  /**
   * The key set of `store`, with a first key put there if it has none (the first start of the first
   * replica). `retainMs` is how long a retired key still verifies: the access token lifetime.
   */
  static async open(
    store: Store,
    vault: Vault,
    options: { retainMs: () => number; now?: () => number },
  ): Promise<SharedSigningKeys> {
    const now = options.now ?? Date.now;
    // A key pair is made only when the store holds no signing key (the first start of the first replica).
    if (!hasSigningKey(store)) signingKeyOrInsert(store, await newSealedSigningKey(vault), now());
    const keys = new SharedSigningKeys(store, vault, options.retainMs, now);
    await keys.#load();
    store.onAnnouncement(SIGNING_KEYS_TOPIC, () => keys.#load().catch(() => {}));
    return keys;
  }

  get kid(): string {
    return this.#signer.kid;
  }

  get privateKey(): CryptoKey {
    return this.#signer.privateKey;
  }

  get publicJwk(): JWK {
    return this.#signer.publicJwk;
  }

  verificationKeys(): readonly JWK[] {
    return this.#verification;
  }

  async reload(): Promise<boolean> {
    if (this.#now() - this.#reloadedAt < RELOAD_INTERVAL_MS) return false;
    const before = this.#verification.map((jwk) => jwk.kid).join();
    await this.#load();
    return this.#verification.map((jwk) => jwk.kid).join() !== before;
  }

  async #load(): Promise<void> {
    this.#reloadedAt = this.#now();
    const rows = verificationSigningKeys(this.#store, this.#now() - this.#retainMs());
    const opened = new Map<string, SigningKey>();
    for (const row of rows) opened.set(row.kid, this.#opened.get(row.kid) ?? await this.#open(row));
    const signer = rows.find((row) => row.retiredAt === undefined);
    if (signer === undefined) throw new Error("The store holds no signing key that is not retired");
    this.#opened = opened;
    this.#signer = opened.get(signer.kid)!;
    this.#verification = [
      this.#signer.publicJwk,
      ...[...opened.values()].filter((key) => key !== this.#signer)
        .map((key) => key.publicJwk),
    ];
  }

  async #open(row: StoredSigningKey): Promise<SigningKey> {
    let jwk: JWK;
    try {
      jwk = JSON.parse(await this.#vault.open(row.sealed, SEAL_PURPOSE, row.kid));
    } catch {
      throw new Error(
        "Cannot open the signing key in the store: gateway.vault_key differs from the one the first replica used",
      );
    }
    return await signingKey(jwk);
  }
}
