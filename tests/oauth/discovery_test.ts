import assert from "node:assert/strict";
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify } from "jose";
import { basic, mcpInitialize, startOAuthGateway, tokenCall } from "./_flow.ts";

const CI_BOT = { secret: "ci-bot-secret-0123456789", user: "ci-bot", groups: ["bots"] };

async function getJson(url: string): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(url);
  return { status: response.status, body: await response.json() };
}

Deno.test("authorization server metadata is served at both well-known paths with the advertised capabilities", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const { status, body } = await getJson(`${base}${path}`);
      assert.equal(status, 200, path);
      assert.equal(body.issuer, base, `${path}: issuer is exactly the base URL (RFC 8414 §3.3)`);
      assert.equal(body.authorization_endpoint, `${base}/authorize`);
      assert.equal(body.token_endpoint, `${base}/token`);
      assert.equal(body.jwks_uri, `${base}/jwks.json`);
      assert.equal(body.revocation_endpoint, `${base}/revoke`);
      assert.equal(body.introspection_endpoint, `${base}/introspect`);
      assert.equal(body.registration_endpoint, `${base}/register`, "registration is open by default");
      assert.deepEqual(body.code_challenge_methods_supported, ["S256"]);
      assert.deepEqual(body.response_types_supported, ["code"]);
      assert.equal(body.client_id_metadata_document_supported, true);
      assert.equal(body.authorization_response_iss_parameter_supported, true);
      const grants = body.grant_types_supported as string[];
      assert.ok(
        !grants.includes("implicit") && !grants.includes("password"),
        "no implicit or password grant",
      );
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("authorization server metadata has no registration_endpoint when registration is off", async () => {
  const gateway = await startOAuthGateway({ registration: "off" });
  try {
    for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
      const { status, body } = await getJson(`${gateway.base}${path}`);
      assert.equal(status, 200);
      assert.equal(Object.hasOwn(body, "registration_endpoint"), false, path);
      assert.equal(body.issuer, gateway.base);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("authorization server metadata uses public_url, without a trailing slash, as the issuer", async () => {
  const gateway = await startOAuthGateway({ public_url: "https://gate.example.test/" });
  try {
    const { body } = await getJson(`${gateway.base}/.well-known/oauth-authorization-server`);
    assert.equal(body.issuer, "https://gate.example.test");
    assert.equal(body.token_endpoint, "https://gate.example.test/token");
    const resource = await getJson(`${gateway.base}/.well-known/oauth-protected-resource/mcp/mis`);
    assert.equal(resource.body.resource, "https://gate.example.test/mcp/mis");
    assert.deepEqual(resource.body.authorization_servers, ["https://gate.example.test"]);
  } finally {
    await gateway.close();
  }
});

Deno.test("protected resource metadata names /mcp at the root and path forms, and each backend at its own", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    const cases: [string, string][] = [
      ["/.well-known/oauth-protected-resource", `${base}/mcp`],
      ["/.well-known/oauth-protected-resource/mcp", `${base}/mcp`],
      ["/.well-known/oauth-protected-resource/mcp/mis", `${base}/mcp/mis`],
      ["/.well-known/oauth-protected-resource/mcp/other", `${base}/mcp/other`],
    ];
    for (const [path, resource] of cases) {
      const { status, body } = await getJson(`${base}${path}`);
      assert.equal(status, 200, path);
      assert.equal(body.resource, resource, path);
      assert.deepEqual(body.authorization_servers, [base], path);
    }
    const unknown = await fetch(`${base}/.well-known/oauth-protected-resource/mcp/nope`);
    await unknown.body?.cancel();
    assert.equal(unknown.status, 404);
  } finally {
    await gateway.close();
  }
});

Deno.test("/jwks.json publishes one public ES256 key with a kid, and it verifies the tokens issued", async () => {
  const gateway = await startOAuthGateway({}, { clients: { "ci-bot": CI_BOT } });
  try {
    const { base } = gateway;
    const { status, body } = await getJson(`${base}/jwks.json`);
    assert.equal(status, 200);
    const keys = body.keys as Record<string, unknown>[];
    assert.equal(keys.length, 1);
    const [key] = keys;
    assert.equal(key!.kty, "EC");
    assert.equal(key!.crv, "P-256");
    assert.equal(key!.alg, "ES256");
    assert.equal(typeof key!.kid, "string");
    assert.ok((key!.kid as string).length > 0);
    for (const privateMember of ["d", "p", "q", "dp", "dq", "qi", "k"]) {
      assert.equal(Object.hasOwn(key!, privateMember), false, `no private member "${privateMember}"`);
    }

    const issued = await tokenCall(
      base,
      { grant_type: "client_credentials" },
      basic("ci-bot", CI_BOT.secret),
    );
    assert.equal(issued.status, 200, JSON.stringify(issued.body));
    const token = issued.body.access_token!;
    assert.equal(decodeProtectedHeader(token).kid, key!.kid);
    const { payload, protectedHeader } = await jwtVerify(token, createLocalJWKSet({ keys: [key!] }), {
      issuer: base,
      audience: `${base}/mcp`,
    });
    assert.equal(protectedHeader.alg, "ES256");
    assert.equal(protectedHeader.typ, "at+jwt");
    for (const claim of ["iss", "sub", "aud", "client_id", "scope", "exp", "iat", "jti"]) {
      assert.ok(payload[claim] !== undefined, `claim ${claim}`);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("/mcp and /mcp/{backend} without a token answer 401 pointing at their protected resource metadata", async () => {
  const gateway = await startOAuthGateway();
  try {
    const { base } = gateway;
    for (const path of ["/mcp", "/mcp/mis"]) {
      const { status, wwwAuthenticate } = await mcpInitialize(`${base}${path}`, undefined);
      assert.equal(status, 401, path);
      const expected = `${base}/.well-known/oauth-protected-resource${path}`;
      const match = /^Bearer (?:.*, )?resource_metadata="([^"]+)"/.exec(wwwAuthenticate ?? "");
      assert.ok(match, `${path}: WWW-Authenticate was ${wwwAuthenticate}`);
      assert.equal(match[1], expected);
      // The metadata it points at names this very endpoint as the resource.
      const { status: metadataStatus, body } = await getJson(match[1]!);
      assert.equal(metadataStatus, 200);
      assert.equal(body.resource, `${base}${path}`);
    }
    // A token of the wrong kind is refused the same way, flagged invalid_token (RFC 6750 §3.1).
    const garbage = await mcpInitialize(`${base}/mcp`, "not-a-jwt");
    assert.equal(garbage.status, 401);
    assert.match(garbage.wwwAuthenticate ?? "", /resource_metadata="[^"]+\/mcp"/);
    assert.match(garbage.wwwAuthenticate ?? "", /error="invalid_token"/);
  } finally {
    await gateway.close();
  }
});
