import assert from "node:assert/strict";
import { join } from "node:path";
import { openVault, VAULT_KEY_FILE } from "../../src/services/vault.ts";

async function withDataDir(work: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-vault-" });
  try {
    await work(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const TOKEN = JSON.stringify({ access_token: "gho_secret-access", refresh_token: "ghr_secret-refresh" });

Deno.test("openVault() seals with the user and service as additional data: a value moved to another row does not open", async () => {
  await withDataDir(async (dir) => {
    const vault = await openVault(dir, undefined);
    const sealed = await vault.seal(TOKEN, "alice", "github");
    assert.ok(!sealed.includes("secret"), "no plaintext");
    assert.notEqual(await vault.seal(TOKEN, "alice", "github"), sealed, "a fresh IV each time");
    assert.equal(await vault.open(sealed, "alice", "github"), TOKEN);
    await assert.rejects(vault.open(sealed, "bob", "github"));
    await assert.rejects(vault.open(sealed, "alice", "google"));
    // Tampered with: one flipped bit and it does not open.
    const bytes = sealed.split("");
    bytes[20] = bytes[20] === "A" ? "B" : "A";
    await assert.rejects(vault.open(bytes.join(""), "alice", "github"));
  });
});

Deno.test("openVault() generates its key into the data dir, owner-only, and uses it again on the next start", async () => {
  await withDataDir(async (dir) => {
    const sealed = await (await openVault(dir, undefined)).seal(TOKEN, "alice", "github");
    const path = join(dir, VAULT_KEY_FILE);
    assert.equal(Deno.statSync(path).mode! & 0o777, 0o600);
    assert.equal(await (await openVault(dir, undefined)).open(sealed, "alice", "github"), TOKEN);
  });
});

Deno.test("openVault() uses a configured key (hex or base64url) instead of a generated one", async () => {
  await withDataDir(async (dir) => {
    const raw = crypto.getRandomValues(new Uint8Array(32));
    const hex = [...raw].map((byte) => byte.toString(16).padStart(2, "0")).join("");
    const base64url = btoa(String.fromCharCode(...raw)).replaceAll("+", "-").replaceAll("/", "_").replace(
      /=+$/,
      "",
    );
    const sealed = await (await openVault(dir, hex)).seal(TOKEN, "alice", "github");
    assert.equal(await (await openVault(dir, base64url)).open(sealed, "alice", "github"), TOKEN);
    assert.throws(() => Deno.statSync(join(dir, VAULT_KEY_FILE)), Deno.errors.NotFound);
    // Another key cannot open it.
    await assert.rejects((await openVault(dir, undefined)).open(sealed, "alice", "github"));
    await assert.rejects(openVault(dir, "abcd"), /32 bytes/);
  });
});
