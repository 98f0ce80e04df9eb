import assert from "node:assert/strict";
import { ListCache } from "../../src/mcp/list_cache.ts";
import { openStore } from "../../src/store/store.ts";
import { registryOf, withTempDir, yaml } from "../config/_helpers.ts";

const registryWith = (url: string) =>
  registryOf({
    files: {
      "registry.yaml": yaml(
        "services:",
        "  svc: { authorization_endpoint: https://svc.example/authorize, token_endpoint: https://svc.example/token, client_id: gh }",
        "backends:",
        `  tok: { http: { url: "${url}", headers: { Authorization: "Bearer \${service:svc}" } } }`,
      ),
    },
  });

Deno.test("list cache: survives a restart of the store, and counts only for the definition it was listed under", async () => {
  await withTempDir(async (dir) => {
    const backend = (await registryWith("https://a.example/mcp")).backends.tok!;
    const tools = [{ name: "whoami", inputSchema: { type: "object" } }];

    const first = openStore(dir);
    try {
      const cache = new ListCache(first);
      assert.equal(await cache.get(backend, "tools/list"), undefined);
      await cache.set(backend, "tools/list", tools);
      assert.deepEqual(await cache.get(backend, "tools/list"), tools);
      assert.equal(await cache.get(backend, "prompts/list"), undefined);
    } finally {
      first.close();
    }

    const second = openStore(dir);
    try {
      const cache = new ListCache(second);
      assert.deepEqual(await cache.get(backend, "tools/list"), tools, "read back after a restart");
      // Same name, another definition: what it listed before says nothing about it now.
      const changed = (await registryWith("https://b.example/mcp")).backends.tok!;
      assert.equal(await cache.get(changed, "tools/list"), undefined);
      const stored = second.db.prepare("SELECT definition FROM backend_lists").all() as {
        definition: string;
      }[];
      assert.equal(stored.length, 1);
      assert.ok(!stored[0]!.definition.includes("a.example"), "the definition is kept as a hash");
    } finally {
      second.close();
    }
  });
});
