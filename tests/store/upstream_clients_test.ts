/**
 * The `upstream_clients` table family on SQLite and PostgreSQL: one registration per backend and issuer,
 * the first one stored kept while it is good (replicas registering at once), a stale one replaced.
 */
import assert from "node:assert/strict";
import {
  deleteUpstreamClient,
  findUpstreamClient,
  listUpstreamClients,
  saveUpstreamClient,
  type UpstreamClient,
} from "../../src/store/upstream_clients.ts";
import { forEachStore } from "../helpers/stores.ts";

/** Beyond 32 bits, as real epoch milliseconds are. */
const NOW = 1_780_000_000_000;
const CALLBACK = "https://gw.example.com/connect/backend%3Alinear/callback";

const registration = (fields: Partial<UpstreamClient> = {}): UpstreamClient => ({
  backend: "linear",
  issuer: "https://as.example.com",
  clientId: "client-1",
  sealedSecret: undefined,
  secretExpiresAt: undefined,
  authMethod: "none",
  redirectUri: CALLBACK,
  registeredAt: NOW,
  ...fields,
});

forEachStore("saveUpstreamClient() keeps the first good registration of a backend at an issuer", (store) => {
  assert.deepEqual(saveUpstreamClient(store, registration(), NOW), registration());
  // Another replica registered at the same moment: its client is not stored, the first one is used.
  const kept = saveUpstreamClient(
    store,
    registration({ clientId: "client-2", registeredAt: NOW + 1 }),
    NOW + 1,
  );
  assert.equal(kept.clientId, "client-1");
  assert.deepEqual(findUpstreamClient(store, "linear", "https://as.example.com"), registration());
  assert.equal(findUpstreamClient(store, "linear", "https://other.example.com"), undefined);
  assert.equal(findUpstreamClient(store, "github", "https://as.example.com"), undefined);
});

forEachStore(
  "saveUpstreamClient() replaces a registration made for another callback or whose secret expired",
  (store) => {
    saveUpstreamClient(store, registration({ redirectUri: "https://old.example.com/cb" }), NOW);
    assert.equal(saveUpstreamClient(store, registration({ clientId: "client-2" }), NOW).clientId, "client-2");

    const expiring = registration({
      clientId: "client-3",
      sealedSecret: "sealed",
      secretExpiresAt: NOW + 1000,
    });
    saveUpstreamClient(store, { ...expiring, backend: "b" }, NOW);
    assert.equal(
      saveUpstreamClient(store, registration({ backend: "b", clientId: "client-4" }), NOW + 999).clientId,
      "client-3",
      "not yet expired",
    );
    const replaced = saveUpstreamClient(
      store,
      registration({ backend: "b", clientId: "client-4" }),
      NOW + 1000,
    );
    assert.deepEqual(replaced, registration({ backend: "b", clientId: "client-4" }));
  },
);

forEachStore(
  "deleteUpstreamClient() deletes the registration it names only; listUpstreamClients() lists all",
  (store) => {
    saveUpstreamClient(
      store,
      registration({ backend: "b", sealedSecret: "sealed", secretExpiresAt: NOW * 2 }),
      NOW,
    );
    saveUpstreamClient(store, registration({ backend: "a" }), NOW);
    saveUpstreamClient(store, registration({ backend: "a", issuer: "https://as2.example.com" }), NOW);
    assert.deepEqual(
      listUpstreamClients(store).map((client) => [client.backend, client.issuer]),
      [["a", "https://as.example.com"], ["a", "https://as2.example.com"], ["b", "https://as.example.com"]],
    );
    const withSecret = listUpstreamClients(store).at(-1)!;
    assert.equal(withSecret.sealedSecret, "sealed");
    assert.equal(withSecret.secretExpiresAt, NOW * 2, "a number, not a string or a bigint");
    assert.equal(withSecret.registeredAt, NOW);
    assert.equal(deleteUpstreamClient(store, "a", "https://as.example.com", "client-other"), false);
    assert.equal(deleteUpstreamClient(store, "a", "https://as.example.com", "client-1"), true);
    assert.equal(listUpstreamClients(store).length, 2);
  },
);
