import assert from "node:assert/strict";
import {
  Client,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  StreamableHTTPClientTransport,
  UnauthorizedError,
} from "@modelcontextprotocol/client";
import { hashPassword } from "../../src/login/password.ts";
import { ScriptedBrowser, signInAndApprove } from "../helpers/browser_session.ts";
import { misbehaving, startTestGateway, textOf } from "../helpers/mcp_clients.ts";

/** What an MCP client keeps between runs, in memory. */
class MemoryProvider implements OAuthClientProvider {
  clientInfo: Awaited<ReturnType<OAuthClientProvider["clientInformation"]>>;
  savedTokens: Awaited<ReturnType<OAuthClientProvider["tokens"]>>;
  verifier = "";
  authorizationUrl: URL | undefined;
  readonly redirectUrl = "http://127.0.0.1:53682/callback";

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: "SDK test client",
      redirect_uris: [this.redirectUrl],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    };
  }
  clientInformation() {
    return this.clientInfo;
  }
  saveClientInformation(info: NonNullable<MemoryProvider["clientInfo"]>) {
    this.clientInfo = info;
  }
  tokens() {
    return this.savedTokens;
  }
  saveTokens(tokens: NonNullable<MemoryProvider["savedTokens"]>) {
    this.savedTokens = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(verifier: string) {
    this.verifier = verifier;
  }
  codeVerifier() {
    return this.verifier;
  }
}

Deno.test("the SDK's OAuth client connects from nothing: discovery, registration, PKCE, sign-in, consent, token, refresh", async () => {
  const password = "correct horse battery staple";
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s", access_token_ttl: "1h" },
    login: { users: { alice: { password_hash: await hashPassword(password), groups: ["staff"] } } },
    backends: { mis: misbehaving("mis") },
  });
  const provider = new MemoryProvider();
  const connect = () => {
    const client = new Client({ name: "sdk-oauth-test", version: "1.0.0" });
    const transport = new StreamableHTTPClientTransport(new URL(gateway.mcpUrl), { authProvider: provider });
    return { client, transport };
  };
  try {
    // First attempt: 401 → discovery → dynamic registration → the SDK hands us the authorization URL.
    const first = connect();
    await assert.rejects(first.client.connect(first.transport), UnauthorizedError);
    assert.ok(provider.clientInfo?.client_id, "the client registered");
    const authorizationUrl = provider.authorizationUrl!;
    assert.equal(authorizationUrl.origin, new URL(gateway.mcpUrl).origin);
    assert.equal(authorizationUrl.searchParams.get("code_challenge_method"), "S256");
    assert.equal(authorizationUrl.searchParams.get("resource"), gateway.mcpUrl);

    // The person signs in and approves; the browser comes back to the client's redirect URI.
    const callback = await signInAndApprove(new ScriptedBrowser(), authorizationUrl.href, {
      username: "alice",
      password,
    });
    assert.equal(`${callback.origin}${callback.pathname}`, provider.redirectUrl);
    assert.equal(callback.searchParams.get("iss"), new URL(gateway.mcpUrl).origin);
    await first.transport.finishAuth(callback.searchParams);
    assert.ok(provider.savedTokens?.access_token);
    assert.ok(provider.savedTokens?.refresh_token);

    // Connected: the call reaches the backend as alice.
    const second = connect();
    await second.client.connect(second.transport);
    assert.equal(
      textOf(await second.client.callTool({ name: "mis__echo", arguments: { message: "hi" } })),
      "mis: hi",
    );
    await second.client.close();

    // An expired access token is refreshed by the SDK; the refresh token rotates.
    const before = provider.savedTokens!;
    provider.savedTokens = { ...before, access_token: "expired.or.garbage" };
    const third = connect();
    await third.client.connect(third.transport);
    assert.notEqual(provider.savedTokens!.refresh_token, before.refresh_token, "refresh token rotated");
    assert.equal(
      textOf(await third.client.callTool({ name: "mis__echo", arguments: { message: "again" } })),
      "mis: again",
    );
    await third.client.close();
  } finally {
    await gateway.close();
  }
});
