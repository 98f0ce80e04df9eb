/**
 * Real clients' habits at the authorization server, each replayed raw as that client sends it: hosted
 * callbacks, private-use redirect schemes, loopback redirects on any port, odd scopes, no resource, and
 * registering again after the client was forgotten.
 */
import assert from "node:assert/strict";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { authorizeAs, authorizeUrl, mcpInitialize, pkce, startOAuthGateway, tokenCall } from "./_flow.ts";

async function registerAs(base: string, body: Record<string, unknown>) {
  const response = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json", accept: "application/json" },
    body: JSON.stringify(body),
  });
  const answer = await response.json();
  return { status: response.status, body: answer as Record<string, string> };
}

/**
 * The whole code flow as a client runs it after registering: authorize (alice signs in and approves),
 * the code at `redirectUri`, the exchange, and an MCP initialize with the token.
 */
async function completeFlow(
  base: string,
  client: Record<string, string>,
  redirectUri: string,
  params: Record<string, string | undefined> = {},
) {
  const { verifier, challenge } = await pkce();
  const browser = new ScriptedBrowser();
  const response = await authorizeAs(
    browser,
    authorizeUrl(base, {
      client_id: client.client_id!,
      redirect_uri: redirectUri,
      code_challenge: challenge,
      ...params,
    }),
  );
  await response.body?.cancel();
  assert.equal(response.status, 303, "the authorization response is a redirect");
  const location = response.headers.get("location")!;
  assert.ok(location.startsWith(redirectUri), `back to ${redirectUri}: ${location}`);
  const callback = new URL(location);
  assert.equal(callback.searchParams.get("iss"), base);
  const secret = client.client_secret;
  const answer = await tokenCall(base, {
    grant_type: "authorization_code",
    client_id: client.client_id!,
    ...(secret ? { client_secret: secret } : {}),
    code: callback.searchParams.get("code")!,
    code_verifier: verifier,
    redirect_uri: redirectUri,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const mcp = await mcpInitialize(`${base}/mcp`, answer.body.access_token);
  assert.equal(mcp.status, 200, "the token works on /mcp");
  return { tokens: answer.body, response };
}

Deno.test("Claude (web and Desktop): the hosted callback registers and completes the flow", async () => {
  const gateway = await startOAuthGateway();
  try {
    for (
      const callback of [
        "https://claude.ai/api/mcp/auth_callback",
        "https://claude.com/api/mcp/auth_callback",
      ]
    ) {
      const registered = await registerAs(gateway.base, {
        client_name: "Claude",
        redirect_uris: [callback],
        grant_types: ["authorization_code", "refresh_token"],
        response_types: ["code"],
        token_endpoint_auth_method: "client_secret_post",
      });
      assert.equal(registered.status, 201, JSON.stringify(registered.body));
      // Claude asks for the scopes the resource metadata lists, and names the resource.
      const { tokens } = await completeFlow(gateway.base, registered.body, callback, {
        scope: "mcp",
        resource: `${gateway.base}/mcp`,
      });
      assert.equal(tokens.scope, "mcp");
      assert.ok(tokens.refresh_token);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("ChatGPT: its connector callback registers and completes the flow with no scope", async () => {
  const gateway = await startOAuthGateway();
  try {
    const callback = "https://chatgpt.com/connector_platform_oauth_redirect";
    const registered = await registerAs(gateway.base, {
      client_name: "ChatGPT",
      redirect_uris: [callback],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const { tokens } = await completeFlow(gateway.base, registered.body, callback, {
      resource: `${gateway.base}/mcp`,
    });
    assert.equal(tokens.scope, "mcp");
  } finally {
    await gateway.close();
  }
});

Deno.test("Cursor: a private-use redirect scheme beside https and loopback URIs registers and is used", async () => {
  const gateway = await startOAuthGateway();
  try {
    const callback = "cursor://anysphere.cursor-mcp/oauth/callback";
    const registered = await registerAs(gateway.base, {
      client_name: "Cursor",
      redirect_uris: [callback, "https://cursor.com/oauth/callback", "http://127.0.0.1:41730/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    const { response } = await completeFlow(gateway.base, registered.body, callback);
    assert.equal(response.status, 303);

    // The consent page lets the browser follow the redirect into the app (CSP form-action).
    const { challenge } = await pkce();
    const browser = new ScriptedBrowser();
    const url = authorizeUrl(gateway.base, {
      client_id: registered.body.client_id,
      redirect_uri: callback,
      code_challenge: challenge,
    });
    const page = await browser.fetch(url);
    await page.body?.cancel();
    assert.match(page.headers.get("content-security-policy") ?? "", /form-action 'self' cursor:/);
  } finally {
    await gateway.close();
  }
});

Deno.test("register() refuses dangerous schemes, and private-use schemes for confidential clients", async () => {
  const gateway = await startOAuthGateway();
  try {
    const refused: [string, string][] = [
      ["javascript:alert(1)", "none"],
      ["data:text/html,hi", "none"],
      ["file:///etc/passwd", "none"],
      ["vbscript:msgbox", "none"],
      ["blob:https://example.com/x", "none"],
      ["http://app.example/callback", "none"],
      ["cursor://anysphere.cursor-mcp/oauth/callback#frag", "none"],
      ["cursor://anysphere.cursor-mcp/oauth/callback", "client_secret_basic"],
    ];
    for (const [uri, method] of refused) {
      const answer = await registerAs(gateway.base, {
        redirect_uris: [uri],
        token_endpoint_auth_method: method,
      });
      assert.equal(answer.status, 400, `${uri} (${method})`);
      assert.equal(answer.body.error, "invalid_redirect_uri", uri);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("VS Code: registers port-less loopback URIs, then uses a random port on each", async () => {
  const gateway = await startOAuthGateway();
  try {
    const registered = await registerAs(gateway.base, {
      client_name: "Visual Studio Code",
      redirect_uris: [
        "https://insiders.vscode.dev/redirect",
        "https://vscode.dev/redirect",
        "http://localhost/",
        "http://127.0.0.1/",
        "http://localhost:33418/",
        "http://127.0.0.1:33418/",
      ],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
    });
    assert.equal(registered.status, 201, JSON.stringify(registered.body));
    for (const redirect of ["http://127.0.0.1:54321/", "http://localhost:61000/"]) {
      await completeFlow(gateway.base, registered.body, redirect);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("Claude Code and Codex: no resource, no or empty scope, or openid offline_access get the default grant", async () => {
  const gateway = await startOAuthGateway();
  try {
    const registered = await registerAs(gateway.base, {
      client_name: "Claude Code",
      redirect_uris: ["http://localhost:7777/callback"],
      grant_types: ["authorization_code", "refresh_token"],
      token_endpoint_auth_method: "none",
    });
    assert.equal(registered.status, 201);
    for (const scope of [undefined, "", "openid offline_access"]) {
      const { tokens } = await completeFlow(
        gateway.base,
        registered.body,
        "http://localhost:49152/callback",
        { scope },
      );
      assert.match(tokens.scope!, /^mcp( offline_access)?$/, String(scope));
      assert.ok(tokens.refresh_token, `a refresh token for scope ${JSON.stringify(scope)}`);
    }
  } finally {
    await gateway.close();
  }
});

Deno.test("Claude re-registers: a deleted or unknown client at /token gets 401 invalid_client", async () => {
  const gateway = await startOAuthGateway();
  try {
    const callback = "https://claude.ai/api/mcp/auth_callback";
    const registered = await registerAs(gateway.base, {
      client_name: "Claude",
      redirect_uris: [callback],
      token_endpoint_auth_method: "none",
    });
    const { tokens } = await completeFlow(gateway.base, registered.body, callback);
    const deleted = await fetch(registered.body.registration_client_uri!, {
      method: "DELETE",
      headers: { authorization: `Bearer ${registered.body.registration_access_token}` },
    });
    await deleted.body?.cancel();
    assert.equal(deleted.status, 204);
    for (const clientId of [registered.body.client_id!, "never-registered-client"]) {
      const refresh = await tokenCall(gateway.base, {
        grant_type: "refresh_token",
        client_id: clientId,
        refresh_token: tokens.refresh_token!,
      });
      assert.equal(refresh.status, 401, clientId);
      assert.equal(refresh.body.error, "invalid_client", clientId);
    }
    // It registers again and gets in.
    const again = await registerAs(gateway.base, {
      client_name: "Claude",
      redirect_uris: [callback],
      token_endpoint_auth_method: "none",
    });
    assert.equal(again.status, 201);
    await completeFlow(gateway.base, again.body, callback);
  } finally {
    await gateway.close();
  }
});
