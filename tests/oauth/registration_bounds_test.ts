/**
 * Open registration (RFC 7591) against a stranger who wants to fill the store: bounded metadata,
 * registrations throttled per client address, and clients that never got a grant expire.
 */
import assert from "node:assert/strict";
import { ClientDirectory } from "../../src/oauth/clients.ts";
import { openStore } from "../../src/store/store.ts";
import { REDIRECT_URI, startOAuthGateway } from "./_flow.ts";

async function registerRaw(base: string, body: unknown): Promise<Response> {
  return await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
}

const VALID = { client_name: "Editor", redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" };

Deno.test("register() bounds every metadata field with 400 invalid_client_metadata", async () => {
  const gateway = await startOAuthGateway();
  try {
    const long = (length: number) => "x".repeat(length);
    const oversized: [string, Record<string, unknown>][] = [
      ["a long client_name", { client_name: long(10_000) }],
      ["a client_name that is not a string", { client_name: { nested: true } }],
      ["too many redirect_uris", {
        redirect_uris: Array.from({ length: 50 }, (_, i) => `http://127.0.0.1/cb${i}`),
      }],
      ["a long redirect URI", { redirect_uris: [`https://example.com/${long(5000)}`] }],
      ["too many contacts", { contacts: Array.from({ length: 100 }, (_, i) => `a${i}@example.com`) }],
      ["a long contact", { contacts: [`${long(1000)}@example.com`] }],
      ["contacts that are not strings", { contacts: [1, 2] }],
      ["a long client_uri", { client_uri: `https://example.com/${long(5000)}` }],
      ["a long logo_uri", { logo_uri: `https://example.com/${long(5000)}` }],
      ["a long scope", { scope: long(5000) }],
      ["a long software_version", { software_version: long(1000) }],
      ["a large unknown field", { x_blob: long(100_000) }],
      ["many unknown fields", Object.fromEntries(Array.from({ length: 200 }, (_, i) => [`x_${i}`, i]))],
    ];
    for (const [what, fields] of oversized) {
      const response = await registerRaw(gateway.base, { ...VALID, ...fields });
      const body = await response.json();
      assert.equal(response.status, 400, what);
      assert.match(body.error, /^invalid_(client_metadata|redirect_uri)$/, what);
    }
    // A body far beyond any registration is refused before it is parsed.
    const huge = await registerRaw(gateway.base, JSON.stringify({ ...VALID, pad: long(200_000) }));
    const hugeBody = await huge.json();
    assert.equal(huge.status, 400);
    assert.equal(hugeBody.error, "invalid_client_metadata");
    const stored = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM oauth_clients").get() as {
      n: number;
    };
    assert.equal(stored.n, 0, "nothing was stored");
    // Small unknown fields are ignored (RFC 7591 §2), and a normal registration still works.
    const fine = await registerRaw(gateway.base, { ...VALID, x_vendor_flag: true });
    const body = await fine.json();
    assert.equal(fine.status, 201, JSON.stringify(body));
    assert.equal(body.x_vendor_flag, undefined);
  } finally {
    await gateway.close();
  }
});

Deno.test("register() throttles registrations per client address with 429 and Retry-After, audited", async () => {
  const gateway = await startOAuthGateway({ registrations_per_hour: 3 });
  try {
    for (let i = 0; i < 3; i++) {
      const response = await registerRaw(gateway.base, VALID);
      await response.body?.cancel();
      assert.equal(response.status, 201, `registration ${i + 1}`);
    }
    for (let i = 0; i < 3; i++) {
      const response = await registerRaw(gateway.base, VALID);
      const body = await response.json();
      assert.equal(response.status, 429);
      assert.equal(body.error, "too_many_requests");
      const retryAfter = Number(response.headers.get("retry-after"));
      assert.ok(retryAfter > 0 && retryAfter <= 3600, `Retry-After ${retryAfter}`);
    }
    const rows = gateway.gateway.store.db.prepare(
      "SELECT detail FROM audit WHERE kind = 'registration_throttled'",
    ).all() as { detail: string }[];
    assert.equal(rows.length, 1, "one audit row per burst, not one per refusal");
    assert.equal(JSON.parse(rows[0]!.detail).address, "127.0.0.1");
    const stored = gateway.gateway.store.db.prepare("SELECT count(*) AS n FROM oauth_clients").get() as {
      n: number;
    };
    assert.equal(stored.n, 3);
  } finally {
    await gateway.close();
  }
});

Deno.test("ClientDirectory.purgeUnused() expires dynamic clients that never obtained a grant", async () => {
  const dir = await Deno.makeTempDir();
  let now = Date.parse("2026-12-01T00:00:00Z");
  const store = openStore(dir);
  try {
    const registry = () => ({ clients: {} }) as never;
    const clients = new ClientDirectory(store, registry, { now: () => now });
    const unused = await clients.register({ ...VALID }, "http://gw/register", "192.0.2.1");
    const used = await clients.register({ ...VALID }, "http://gw/register", "192.0.2.1");
    clients.recordGrant(used.client_id as string);
    now += 23 * 3600_000;
    assert.equal(clients.purgeUnused(24 * 3600), 0, "younger than the limit: kept");
    now += 2 * 3600_000;
    assert.equal(clients.purgeUnused(24 * 3600), 1);
    assert.equal(await clients.find(unused.client_id as string), undefined, "the unused client is gone");
    assert.ok(await clients.find(used.client_id as string), "a client that got a grant stays");
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
});
