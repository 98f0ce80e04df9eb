/**
 * A user's service token due for refresh, asked for at once by two replicas (two `ServiceConnections` on one
 * store, each with its own in-process single flight): the store's refresh claim lets one refresh and the
 * other wait for its result, so the refresh token is spent once. Without the claim both refreshed, and a
 * server that rotates refresh tokens would refuse the second and force the user to connect again.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { loadRegistry } from "../../src/config/load.ts";
import { createLogger } from "../../src/log/logger.ts";
import { ServiceConnections } from "../../src/services/connections.ts";
import { SealedTokens } from "../../src/services/sealed_tokens.ts";
import { openVault } from "../../src/services/vault.ts";
import { forEachStore } from "../helpers/stores.ts";
import { SERVICE_CLIENT_ID, startMockService } from "./_world.ts";

forEachStore(
  "two replicas asking for a token due for refresh at once refresh it once and share the result",
  async (store) => {
    const mock = await startMockService();
    const dir = await Deno.makeTempDir({ prefix: "gatehouse-refresh-replicas-" });
    try {
      await Deno.writeTextFile(
        join(dir, "registry.yaml"),
        JSON.stringify({
          gateway: { auth: "none", data_dir: "./data" },
          services: { mock: { issuer: mock.issuer, client_id: SERVICE_CLIENT_ID } },
        }),
      );
      const loaded = await loadRegistry(join(dir, "registry.yaml"));
      assert.ok(loaded.ok);
      const registry = loaded.registry;
      const vault = await openVault(dir, "22".repeat(32));
      const log = createLogger({ level: "error", write: () => {} });
      const replica = () =>
        new ServiceConnections({
          store,
          registry: () => registry,
          vault,
          log,
          baseUrl: () => "http://127.0.0.1:1",
        });
      const [a, b] = [replica(), replica()];

      // A token that has just expired: due for refresh.
      await new SealedTokens(store, vault, Date.now).save("alice", "mock", {
        access_token: "old-access",
        refresh_token: "first-refresh",
        token_type: "bearer",
        expires_in: 0,
      } as never, undefined);

      const [fromA, fromB] = await Promise.all([a.token("alice", "mock"), b.token("alice", "mock")]);
      const refreshes = mock.issued.filter((issued) => issued.grantType === "refresh_token");
      assert.equal(refreshes.length, 1, "the refresh token is spent once");
      assert.equal(refreshes[0]!.presented, "first-refresh");
      assert.equal(fromA, refreshes[0]!.accessToken);
      assert.equal(fromB, fromA, "the waiting replica uses the other's result");
    } finally {
      await mock.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
