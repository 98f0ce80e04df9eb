/** Unit tests of the Host and Origin checks in front of /mcp. */
import assert from "node:assert/strict";
import { checkHostAndOrigin, isOriginAllowed, type OriginSettings } from "../../src/http/dns_rebinding.ts";

const LISTEN = "http://127.0.0.1:8740";
const OAUTH: OriginSettings = { auth: "oauth", publicUrl: "https://mcp.example.test", allowedOrigins: [] };
const NONE: OriginSettings = {
  auth: "none",
  publicUrl: undefined,
  allowedOrigins: ["http://localhost:6274"],
};

function requestWith(headers: Record<string, string>): Request {
  return new Request(`${LISTEN}/mcp`, { method: "POST", headers });
}

Deno.test("checkHostAndOrigin() refuses a Host that is not the gateway's under both auth modes", async () => {
  for (const gateway of [OAUTH, NONE]) {
    const refused = checkHostAndOrigin(
      requestWith({ host: "rebound.example.test:8740", authorization: "Bearer x" }),
      gateway,
      LISTEN,
    );
    assert.equal(refused?.status, 403, gateway.auth);
    assert.match(await refused!.text(), /Host not allowed/);
    assert.equal(checkHostAndOrigin(requestWith({ host: "localhost:8740" }), gateway, LISTEN), undefined);
  }
  assert.equal(checkHostAndOrigin(requestWith({ host: "mcp.example.test" }), OAUTH, LISTEN), undefined);
});

Deno.test("checkHostAndOrigin() leaves a foreign Origin to authentication under auth: oauth", () => {
  const request = requestWith({ host: "mcp.example.test", origin: "https://chatgpt.com" });
  assert.equal(checkHostAndOrigin(request, OAUTH, LISTEN), undefined);
});

Deno.test("checkHostAndOrigin() refuses an Origin that is not allowed under auth: none", async () => {
  const refused = checkHostAndOrigin(
    requestWith({ host: "127.0.0.1:8740", origin: "https://chatgpt.com" }),
    NONE,
    LISTEN,
  );
  assert.equal(refused?.status, 403);
  assert.match(await refused!.text(), /Origin not allowed/);
  for (const origin of [LISTEN, "http://localhost:6274"]) {
    assert.equal(
      checkHostAndOrigin(requestWith({ host: "127.0.0.1:8740", origin }), NONE, LISTEN),
      undefined,
    );
  }
});

Deno.test("isOriginAllowed() under auth: none knows public_url, listen and allowed_origins only", () => {
  const withPublic: OriginSettings = { ...NONE, publicUrl: "http://gatehouse.lan:8740/" };
  assert.ok(isOriginAllowed("http://gatehouse.lan:8740", withPublic, LISTEN));
  assert.ok(isOriginAllowed(LISTEN, withPublic, LISTEN));
  assert.ok(isOriginAllowed("http://localhost:6274", withPublic));
  assert.ok(!isOriginAllowed(LISTEN, withPublic), "listen is unknown without its URL");
  assert.ok(!isOriginAllowed("http://localhost:6275", withPublic, LISTEN));
  assert.ok(!isOriginAllowed("null", withPublic, LISTEN));
  assert.ok(isOriginAllowed("null", OAUTH, LISTEN), "under oauth only a token gets an answer");
});
