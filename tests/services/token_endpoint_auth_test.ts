/**
 * How Gatehouse authenticates at a service's token endpoint: the registry's choice, else one read from the
 * service's metadata, and a connection that completes with a server that does not decode Basic credentials.
 */
import assert from "node:assert/strict";
import { chooseTokenEndpointAuthMethod } from "../../src/services/connections.ts";
import { ALICE, connectedClient, latestAccessToken, signIn, whoami, withWorld } from "./_world.ts";

/** A secret with characters RFC 6749 §2.3.1 form-encodes inside Basic credentials. */
const ODD_SECRET = "a+b/c=d:e";

Deno.test("chooseTokenEndpointAuthMethod() follows the registry, else the service's metadata", () => {
  type Setting = Parameters<typeof chooseTokenEndpointAuthMethod>[0]["tokenEndpointAuthMethod"];
  const cases: [Setting, string | undefined, string[] | undefined, string][] = [
    // [registry setting, client secret, token_endpoint_auth_methods_supported, chosen]
    [undefined, "s", undefined, "client_secret_post"],
    [undefined, "s", [], "client_secret_post"],
    [undefined, "s", ["client_secret_basic", "client_secret_post"], "client_secret_post"],
    [undefined, "s", ["client_secret_post"], "client_secret_post"],
    [undefined, "s", ["client_secret_basic"], "client_secret_basic"],
    [undefined, "s", ["private_key_jwt", "client_secret_basic"], "client_secret_basic"],
    // Neither listed: Basic, which every server must support (RFC 6749 §2.3.1).
    [undefined, "s", ["none"], "client_secret_basic"],
    [undefined, undefined, undefined, "none"],
    [undefined, undefined, ["client_secret_post"], "none"],
    ["none", undefined, ["client_secret_post"], "none"],
    ["client_secret_basic", "s", ["client_secret_post"], "client_secret_basic"],
    ["client_secret_basic", "s", undefined, "client_secret_basic"],
    ["client_secret_post", "s", ["client_secret_basic"], "client_secret_post"],
    ["none", "s", ["client_secret_post"], "none"],
    // No secret to send: nothing else is possible.
    ["client_secret_basic", undefined, ["client_secret_basic"], "none"],
  ];
  for (const [setting, secret, supported, chosen] of cases) {
    const service = { tokenEndpointAuthMethod: setting, clientSecret: secret };
    const server = supported === undefined ? {} : { token_endpoint_auth_methods_supported: supported };
    assert.equal(
      chooseTokenEndpointAuthMethod(service, server),
      chosen,
      JSON.stringify({ setting, secret: secret !== undefined, supported }),
    );
  }
});

const METADATA_CASES: [string, Record<string, unknown>][] = [
  ["lists both methods", {
    token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
  }],
  ["lists no method", { token_endpoint_auth_methods_supported: undefined }],
];

for (const [name, metadata] of METADATA_CASES) {
  Deno.test(`ServiceConnections.finish() completes when the service ${name} and does not decode Basic`, async () => {
    await withWorld(async (world) => {
      world.mock.clientSecret = ODD_SECRET;
      world.mock.metadata = metadata;
      const alice = await signIn(world, ALICE);
      const client = await connectedClient(world, alice);
      try {
        assert.deepEqual(world.mock.issued.map((entry) => [entry.status, entry.clientAuth]), [[200, "post"]]);
        assert.equal((await whoami(client, "stdio-tok")).token, latestAccessToken(world.mock));
      } finally {
        await client.close();
      }
    }, { service: { client_secret: ODD_SECRET } });
  });
}

Deno.test("ServiceConnections.finish() uses the registry's token_endpoint_auth_method over the metadata", async () => {
  await withWorld(async (world) => {
    world.mock.metadata = { token_endpoint_auth_methods_supported: ["client_secret_post"] };
    const alice = await signIn(world, ALICE);
    const client = await connectedClient(world, alice);
    try {
      assert.deepEqual(world.mock.issued.map((entry) => entry.clientAuth), ["basic"]);
    } finally {
      await client.close();
    }
  }, { service: { token_endpoint_auth_method: "client_secret_basic" } });
});
