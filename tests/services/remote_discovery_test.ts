/**
 * The pure parts of remote discovery: the `WWW-Authenticate` parser, the well-known URLs in the MCP
 * specification's order, and which protected resource metadata may stand for a backend.
 */
import assert from "node:assert/strict";
import {
  authorizationServerMetadataUrls,
  resourceMatches,
  wellKnownResourceMetadataUrls,
} from "../../src/services/remote_discovery.ts";
import { bearerChallenge, shown } from "../../src/services/remote_requests.ts";

Deno.test("bearerChallenge() reads the Bearer challenge's parameters among others, quoted or not", () => {
  const header = 'DPoP algs="ES256", Bearer realm="mcp", error=invalid_token, ' +
    'resource_metadata="https://a.example/.well-known/oauth-protected-resource/mcp", scope="read \\"x\\" write", ' +
    'Basic realm="other"';
  assert.deepEqual(
    Object.fromEntries(bearerChallenge(header)!),
    {
      realm: "mcp",
      error: "invalid_token",
      resource_metadata: "https://a.example/.well-known/oauth-protected-resource/mcp",
      scope: 'read "x" write',
    },
  );
  assert.deepEqual(Object.fromEntries(bearerChallenge("bearer Resource_Metadata=https://a/x")!), {
    resource_metadata: "https://a/x",
  });
  assert.deepEqual(Object.fromEntries(bearerChallenge("Bearer")!), {});
  assert.equal(bearerChallenge('Basic realm="x", Negotiate abc=='), undefined);
  assert.equal(bearerChallenge(""), undefined);
  assert.equal(bearerChallenge('Bearer realm="unterminated')?.get("realm"), "unterminated");
});

Deno.test("wellKnownResourceMetadataUrls() tries the endpoint's path, then the root (RFC 9728 §3.1)", () => {
  assert.deepEqual(wellKnownResourceMetadataUrls("https://a.example/mcp"), [
    "https://a.example/.well-known/oauth-protected-resource/mcp",
    "https://a.example/.well-known/oauth-protected-resource",
  ]);
  assert.deepEqual(wellKnownResourceMetadataUrls("https://a.example/v1/mcp/?x=1"), [
    "https://a.example/.well-known/oauth-protected-resource/v1/mcp?x=1",
    "https://a.example/.well-known/oauth-protected-resource",
  ]);
  assert.deepEqual(wellKnownResourceMetadataUrls("https://a.example/"), [
    "https://a.example/.well-known/oauth-protected-resource",
  ]);
});

Deno.test("authorizationServerMetadataUrls() lists RFC 8414 and OIDC discovery in the MCP specification's order", () => {
  assert.deepEqual(authorizationServerMetadataUrls("https://as.example"), [
    "https://as.example/.well-known/oauth-authorization-server",
    "https://as.example/.well-known/openid-configuration",
  ]);
  assert.deepEqual(authorizationServerMetadataUrls("https://as.example/tenant1/"), [
    "https://as.example/.well-known/oauth-authorization-server/tenant1",
    "https://as.example/.well-known/openid-configuration/tenant1",
    "https://as.example/tenant1/.well-known/openid-configuration",
  ]);
});

Deno.test("resourceMatches() takes the endpoint, a less specific resource of its origin, or the configured one", () => {
  const endpoint = "https://mcp.example.com/v1/mcp";
  for (const resource of ["https://mcp.example.com/v1/mcp", "HTTPS://MCP.example.com:443/v1/mcp"]) {
    assert.ok(resourceMatches(resource, endpoint), resource);
  }
  for (
    const resource of ["https://mcp.example.com", "https://mcp.example.com/", "https://mcp.example.com/v1/"]
  ) {
    assert.ok(resourceMatches(resource, endpoint), resource);
  }
  for (
    const resource of [
      "https://evil.example/v1/mcp",
      "http://mcp.example.com/v1/mcp",
      "https://mcp.example.com:8443/v1/mcp",
      "https://mcp.example.com/v1/mcp2",
      "https://mcp.example.com/v1/mc",
      "https://mcp.example.com/v1/mcp/deeper",
      "https://mcp.example.com/v1/mcp#x",
      "https://mcp.example.com/?tenant=a",
      "not a url",
    ]
  ) {
    assert.equal(resourceMatches(resource, endpoint), false, resource);
  }
  assert.ok(resourceMatches("https://api.example.com/", endpoint, "https://api.example.com"));
});

Deno.test("shown() leaves out a URL's query and user info", () => {
  assert.equal(shown("https://user:pw@a.example/mcp?key=secret"), "https://a.example/mcp");
  assert.equal(shown("not a url"), '"not a url"');
});
