/** Encrypts users' third-party tokens at rest (AES-GCM with the vault key). */
import { base64url } from "jose";
import { join } from "node:path";

/**
 * Encrypts third-party tokens at rest: AES-256-GCM with a random 96-bit IV per value, and the user and
 * service as additional authenticated data, so a sealed value moved to another row does not open.
 */
export interface Vault {
  seal(plaintext: string, userId: string, service: string): Promise<string>;
  open(sealed: string, userId: string, service: string): Promise<string>;
}

export const VAULT_KEY_FILE = "vault.key";

const aad = (userId: string, service: string) => new TextEncoder().encode(JSON.stringify([userId, service]));

async function importKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.length !== 32) throw new Error("Cannot use the vault key: it must be 32 bytes (base64url or hex)");
  return await crypto.subtle.importKey("raw", new Uint8Array(raw), "AES-GCM", false, ["encrypt", "decrypt"]);
}

/** Decodes a configured key: 64 hex digits, or base64url of 32 bytes. */
function decodeKey(text: string): Uint8Array {
  const trimmed = text.trim();
  if (/^[0-9a-f]{64}$/i.test(trimmed)) {
    return new Uint8Array(trimmed.match(/../g)!.map((pair) => parseInt(pair, 16)));
  }
  return base64url.decode(trimmed);
}

/**
 * The vault with the configured key (`gateway.vault_key`, usually `${secret:vault_key}`), or the key
 * generated into the data directory on first start (mode 0600).
 */
export async function openVault(dataDir: string, configuredKey: string | undefined): Promise<Vault> {
  let raw: Uint8Array;
  if (configuredKey !== undefined) {
    raw = decodeKey(configuredKey);
  } else {
    const path = join(dataDir, VAULT_KEY_FILE);
    try {
      raw = decodeKey(await Deno.readTextFile(path));
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      raw = crypto.getRandomValues(new Uint8Array(32));
      const temporary = `${path}.tmp`;
      await Deno.writeTextFile(temporary, base64url.encode(raw), { mode: 0o600, createNew: true });
      await Deno.rename(temporary, path);
    }
  }
  const key = await importKey(raw);
  return {
    async seal(plaintext, userId, service) {
      const iv = crypto.getRandomValues(new Uint8Array(12));
      const ciphertext = new Uint8Array(
        await crypto.subtle.encrypt(
          { name: "AES-GCM", iv, additionalData: aad(userId, service) },
          key,
          new TextEncoder().encode(plaintext),
        ),
      );
      const sealed = new Uint8Array(iv.length + ciphertext.length);
      sealed.set(iv);
      sealed.set(ciphertext, iv.length);
      return base64url.encode(sealed);
    },
    async open(sealed, userId, service) {
      const bytes = base64url.decode(sealed);
      const plaintext = await crypto.subtle.decrypt(
        { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: aad(userId, service) },
        key,
        bytes.slice(12),
      );
      return new TextDecoder().decode(plaintext);
    },
  };
}
