import assert from "node:assert/strict";
import { BrowserSessions } from "../../src/login/sessions.ts";
import { hashSecret } from "../../src/core/secrets.ts";
import { MIGRATIONS } from "../../src/store/migrations.ts";
import { openStore } from "../../src/store/store.ts";

const IDENTITY_ID = MIGRATIONS.find((migration) => migration.name === "identity_id")!;
const BEFORE = MIGRATIONS.filter((migration) => migration.version < IDENTITY_ID.version);
const NOW = Date.now();

Deno.test("openStore() renames userId to id in stored identities, and a browser session signed in before still works", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-identity-" });
  try {
    const oldIdentity = JSON.stringify({ userId: "alice", name: "Alice", groups: ["staff"], provider: "gh" });
    const old = openStore(dir, BEFORE);
    try {
      old.db.prepare(
        "INSERT INTO browser_sessions (token_hash, user_id, identity, csrf, created_at, expires_at) VALUES (?, 'alice', ?, 'c', ?, ?)",
      ).run(await hashSecret("session-token"), oldIdentity, NOW, NOW + 3_600_000);
      old.db.prepare(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity, resource, scope, expires_at) VALUES ('h', 'f', 'c', 'alice', ?, 'r', 'mcp', ?)",
      ).run(oldIdentity, NOW + 60_000);
      // Already in the new shape: left as it is.
      old.db.prepare(
        "INSERT INTO refresh_tokens (token_hash, family_id, client_id, user_id, identity, resource, scope, expires_at) VALUES ('h2', 'f2', 'c', 'bob', ?, 'r', 'mcp', ?)",
      ).run(JSON.stringify({ id: "bob", name: "bob", groups: [] }), NOW + 60_000);
    } finally {
      old.close();
    }
    const store = openStore(dir);
    try {
      const rows = store.db.prepare("SELECT token_hash, identity FROM refresh_tokens ORDER BY token_hash")
        .all();
      assert.deepEqual(rows.map((row) => JSON.parse(String(row.identity))), [
        { id: "alice", name: "Alice", groups: ["staff"], provider: "gh" },
        { id: "bob", name: "bob", groups: [] },
      ]);
      const session = await new BrowserSessions(store).find("session-token");
      assert.equal(session?.identity.id, "alice");
      assert.deepEqual(session?.identity.groups, ["staff"]);
    } finally {
      store.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
