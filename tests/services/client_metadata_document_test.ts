/**
 * Gatehouse's own client ID metadata document (issue 18), which the authorization servers of OAuth-protected
 * backends fetch: at a stable URL under the gateway's address, naming that URL as its client_id, a public
 * client (PKCE), with one redirect URI per backend with `oauth`.
 */
import assert from "node:assert/strict";
import { startTestGateway } from "../helpers/mcp_clients.ts";

Deno.test("GET /oauth/client-metadata.json is Gatehouse's client metadata document, one redirect URI per OAuth backend", async () => {
  const gateway = await startTestGateway({
    gateway: { auth: "oauth" },
    backends: {
      linear: { http: { url: "https://mcp.linear.example/mcp", oauth: true } },
      notion: { http: { url: "https://mcp.notion.example/mcp", oauth: { scopes: ["read"] } } },
      plain: { http: { url: "https://mcp.plain.example/mcp" } },
    },
  });
  try {
    const base = gateway.gateway.url;
    const response = await fetch(`${base}/oauth/client-metadata.json`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
    const document = await response.json();
    assert.equal(document.client_id, `${base}/oauth/client-metadata.json`);
    assert.deepEqual(document.redirect_uris, [
      `${base}/connect/backend:linear/callback`,
      `${base}/connect/backend:notion/callback`,
    ]);
    assert.equal(document.token_endpoint_auth_method, "none");
    assert.deepEqual(document.grant_types, ["authorization_code", "refresh_token"]);
    assert.deepEqual(document.response_types, ["code"]);
  } finally {
    await gateway.close();
  }
});
