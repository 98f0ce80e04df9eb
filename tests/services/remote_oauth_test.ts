/**
 * remoteOAuthTarget() and describeRemoteOAuth(): discovery, registration, scopes and resource of an
 * OAuth-protected remote MCP server, against a real second Gatehouse, oauth2-mock-server (no registration)
 * and a hand-written protected resource, all on 127.0.0.1.
 */
import assert from "node:assert/strict";
import { createLogger } from "../../src/log/logger.ts";
import {
  clientMetadataDocument,
  describeRemoteOAuth,
  type RemoteOAuthBackend,
  type RemoteOAuthDeps,
  RemoteOAuthError,
  remoteOAuthTarget,
} from "../../src/services/remote_oauth.ts";
import { openVault, type Vault } from "../../src/services/vault.ts";
import { listUpstreamClients } from "../../src/store/upstream_clients.ts";
import { openStore, type Store } from "../../src/store/store.ts";
import { forEachStore } from "../helpers/stores.ts";
import {
  connectAlice,
  recordingFetch,
  startHandWrittenServer,
  startMockAuthorizationServer,
  startRemoteGatehouse,
  unauthorized,
  withJson,
} from "./_remote_servers.ts";

/** The public URL our own Gatehouse would have: https, so that its client id can be a metadata document. */
const OUR_BASE = "https://gatehouse.example.test";
const callbackOf = (base: string, backend: string) =>
  `${base}/connect/${encodeURIComponent(`backend:${backend}`)}/callback`;
const VAULT_KEY = "a1".repeat(32);

async function dependencies(
  store: Store,
  options: { base?: string; backend?: string; fetch?: typeof fetch; vault?: Vault } = {},
): Promise<RemoteOAuthDeps & { logs: string[] }> {
  const logs: string[] = [];
  const base = options.base ?? OUR_BASE;
  return {
    store,
    vault: options.vault ?? await openVault("/nonexistent", VAULT_KEY),
    baseUrl: () => base,
    callbackUrl: callbackOf(base, options.backend ?? "remote"),
    log: createLogger({ level: "debug", write: (line) => logs.push(line) }),
    fetch: options.fetch,
    logs,
  };
}

const backendAt = (
  url: string,
  oauth: RemoteOAuthBackend["oauth"] = {},
  name = "remote",
): RemoteOAuthBackend => ({
  name,
  url,
  oauth,
});

async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof RemoteOAuthError, `not a RemoteOAuthError: ${error}`);
    assert.equal(error.code, code, error.message);
    assert.match(error.message, message);
    return true;
  });
}

/** Serves our Gatehouse's client ID metadata document on 127.0.0.1, as our public URL would. */
function servingOurDocument(redirectUris: string[]) {
  return startHandWrittenServer((request) =>
    new URL(request.url).pathname === "/oauth/client-metadata.json"
      ? Response.json(clientMetadataDocument(OUR_BASE, redirectUris))
      : undefined
  );
}

Deno.test("remoteOAuthTarget() discovers a Gatehouse through its 401 challenge and connects with the client ID metadata document", async () => {
  const callbackUrl = callbackOf(OUR_BASE, "remote");
  const documents = servingOurDocument([callbackUrl]);
  const remote = await startRemoteGatehouse(documents.origin);
  const store = openStore(":memory:");
  try {
    const recording = recordingFetch();
    const target = remoteOAuthTarget(
      backendAt(remote.mcpUrl),
      await dependencies(store, { fetch: recording }),
    );
    const server = await target.server();
    assert.equal(server.issuer, remote.base);
    assert.deepEqual(recording.requests.slice(0, 3), [
      `POST ${remote.mcpUrl}`,
      `GET ${remote.base}/.well-known/oauth-protected-resource/mcp`,
      `GET ${remote.base}/.well-known/oauth-authorization-server`,
    ], "the metadata named by WWW-Authenticate, then RFC 8414");
    assert.equal(await target.resource(), remote.mcpUrl);
    assert.deepEqual(await target.scopes(), ["mcp"]);
    const { client } = await target.client(server);
    assert.equal(client.client_id, `${OUR_BASE}/oauth/client-metadata.json`);
    assert.equal(client.token_endpoint_auth_method, "none");
    assert.deepEqual(listUpstreamClients(store), [], "nothing registered");
    assert.equal(await connectAlice(target, callbackUrl, remote.mcpUrl), 200);
    assert.deepEqual(remote.fetchedDocuments, [`${OUR_BASE}/oauth/client-metadata.json`]);
    assert.equal(recording.requests.length, 3, "discovery ran once");
  } finally {
    store.close();
    await remote.close();
    await documents.close();
  }
});

Deno.test("clientMetadataDocument() describes Gatehouse as a public client with every backend's callback", () => {
  assert.deepEqual(
    clientMetadataDocument("https://gw.example.com", [
      callbackOf("https://gw.example.com", "a"),
      "https://x/cb",
    ]),
    {
      client_id: "https://gw.example.com/oauth/client-metadata.json",
      client_name: "Gatehouse",
      client_uri: "https://gw.example.com",
      redirect_uris: ["https://gw.example.com/connect/backend%3Aa/callback", "https://x/cb"],
      grant_types: ["authorization_code", "refresh_token"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    },
  );
});

forEachStore(
  "remoteOAuthTarget() registers dynamically where metadata documents are not taken, once, and a new target reads it from the store",
  async (store) => {
    const remote = await startRemoteGatehouse();
    try {
      // The real Gatehouse takes metadata documents: this one's metadata says it does not.
      const recording = recordingFetch((url, response) =>
        url.endsWith("/.well-known/oauth-authorization-server")
          ? withJson(response, (body) => delete body.client_id_metadata_document_supported)
          : response
      );
      const deps = await dependencies(store, { fetch: recording });
      const first = remoteOAuthTarget(backendAt(remote.mcpUrl), deps);
      const server = await first.server();
      const [one, two] = await Promise.all([first.client(server), first.client(server)]);
      assert.equal(one.client.client_id, two.client.client_id);
      const registrations = () =>
        recording.requests.filter((line) => line === `POST ${remote.base}/register`);
      assert.equal(registrations().length, 1, "one registration for two concurrent uses");
      const [row] = listUpstreamClients(store);
      assert.equal(row?.backend, "remote");
      assert.equal(row.issuer, remote.base);
      assert.equal(row.clientId, one.client.client_id);
      assert.equal(row.sealedSecret, undefined, "a public client has no secret");
      assert.equal(row.authMethod, "none");
      assert.equal(row.redirectUri, deps.callbackUrl);

      // A restart: a new target object, the same store.
      const second = remoteOAuthTarget(backendAt(remote.mcpUrl), deps);
      const again = await second.client(await second.server());
      assert.equal(again.client.client_id, one.client.client_id);
      assert.equal(registrations().length, 1, "read from the store, not registered again");
      assert.equal(await connectAlice(second, deps.callbackUrl, remote.mcpUrl), 200);
      assert.ok(deps.logs.some((line) => line.includes("registered at a remote authorization server")));
    } finally {
      await remote.close();
    }
  },
);

Deno.test("remoteOAuthTarget() registers dynamically when public_url is plain http (a metadata document's client id must be https), again when it changes", async () => {
  const remote = await startRemoteGatehouse();
  const store = openStore(":memory:");
  try {
    const base = "http://127.0.0.1:47123";
    const deps = await dependencies(store, { base });
    const target = remoteOAuthTarget(backendAt(remote.mcpUrl), deps);
    const { client } = await target.client(await target.server());
    assert.doesNotMatch(client.client_id, /^http/);
    assert.equal(listUpstreamClients(store)[0]?.clientId, client.client_id);
    assert.equal(await connectAlice(target, deps.callbackUrl, remote.mcpUrl), 200);
    // Another public_url: the registration names the old callback, so Gatehouse registers again.
    const moved = await dependencies(store, { base: "http://127.0.0.1:47124" });
    const after = remoteOAuthTarget(backendAt(remote.mcpUrl), moved);
    const { client: again } = await after.client(await after.server());
    assert.notEqual(again.client_id, client.client_id);
    assert.deepEqual(
      listUpstreamClients(store).map((row) => [row.clientId, row.redirectUri]),
      [[again.client_id, moved.callbackUrl]],
    );
  } finally {
    store.close();
    await remote.close();
  }
});

Deno.test("remoteOAuthTarget() finds the metadata at the well-known URIs when the 401 names none, with a configured client", async () => {
  const mock = await startMockAuthorizationServer();
  mock.metadata.token_endpoint_auth_methods_supported = ["client_secret_post"];
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized('Bearer realm="mcp"');
    if (path === "/.well-known/oauth-protected-resource") {
      return Response.json({
        resource: `${origin}/mcp`,
        authorization_servers: [mock.issuer],
        scopes_supported: ["read", "write"],
      });
    }
  });
  const store = openStore(":memory:");
  try {
    const recording = recordingFetch();
    const target = remoteOAuthTarget(
      backendAt(`${resource.origin}/mcp`, {
        clientId: "gatehouse-at-mock",
        clientSecret: "configured-secret",
      }),
      await dependencies(store, { fetch: recording }),
    );
    const server = await target.server();
    assert.equal(server.issuer, mock.issuer);
    assert.deepEqual(resource.requests, [
      "POST /mcp",
      "GET /.well-known/oauth-protected-resource/mcp",
      "GET /.well-known/oauth-protected-resource",
    ]);
    assert.deepEqual(recording.requests.slice(3), [
      `GET ${mock.issuer}/.well-known/oauth-authorization-server`,
      `GET ${mock.issuer}/.well-known/openid-configuration`,
    ], "RFC 8414 first, then OIDC discovery");
    assert.equal(await target.resource(), `${resource.origin}/mcp`);
    assert.deepEqual(await target.scopes(), ["read", "write"]);
    const { client, auth } = await target.client(server);
    assert.equal(client.client_id, "gatehouse-at-mock");
    assert.equal(client.token_endpoint_auth_method, "client_secret_post");
    const body = new URLSearchParams();
    await auth(server, client, body, new Headers());
    assert.equal(body.get("client_secret"), "configured-secret");
    assert.deepEqual(listUpstreamClients(store), []);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() asks for the configured scopes, else the 401 challenge's, else scopes_supported, else none", async () => {
  const mock = await startMockAuthorizationServer();
  let challenge = "";
  let scopesSupported: string[] | undefined = ["read"];
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(challenge);
    if (path === "/prm") {
      return Response.json({
        resource: `${origin}/mcp`,
        authorization_servers: [mock.issuer],
        scopes_supported: scopesSupported,
      });
    }
  });
  const store = openStore(":memory:");
  try {
    const deps = await dependencies(store);
    const url = `${resource.origin}/mcp`;
    const scopes = (configured?: string[]) =>
      remoteOAuthTarget(backendAt(url, { scopes: configured }), deps).scopes();
    challenge =
      `Bearer error="invalid_token", scope="files:read files:write", resource_metadata="${resource.origin}/prm"`;
    assert.deepEqual(await scopes(["only"]), ["only"]);
    assert.deepEqual(await scopes([]), []);
    assert.deepEqual(await scopes(), ["files:read", "files:write"]);
    challenge = `Bearer resource_metadata="${resource.origin}/prm"`;
    assert.deepEqual(await scopes(), ["read"]);
    scopesSupported = undefined;
    assert.deepEqual(await scopes(), []);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() refuses resource metadata for another resource, unless oauth.resource names it", async () => {
  const mock = await startMockAuthorizationServer();
  let named = "";
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(`Bearer resource_metadata="${origin}/prm"`);
    if (path === "/prm") return Response.json({ resource: named, authorization_servers: [mock.issuer] });
  });
  const store = openStore(":memory:");
  try {
    const deps = await dependencies(store);
    const url = `${resource.origin}/mcp`;
    for (
      const other of ["http://127.0.0.1:1/mcp", `${resource.origin}/other`, `${resource.origin}/mcp/deeper`]
    ) {
      named = other;
      await rejectsWith(
        remoteOAuthTarget(backendAt(url), deps).server(),
        "resource_mismatch",
        /RFC 9728 §3\.3/,
      );
    }
    named = "http://127.0.0.1:1/mcp";
    const configured = remoteOAuthTarget(backendAt(url, { resource: named }), deps);
    assert.equal((await configured.server()).issuer, mock.issuer);
    assert.equal(await configured.resource(), named);
    // A less specific resource of the same origin stands for the endpoint (RFC 8707 §2), and is what is asked.
    named = `${resource.origin}/`;
    assert.equal(await remoteOAuthTarget(backendAt(url), deps).resource(), `${resource.origin}/`);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() without a client id, metadata documents or a registration endpoint says to set oauth.client_id", async () => {
  const mock = await startMockAuthorizationServer();
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(`Bearer resource_metadata="${origin}/prm"`);
    if (path === "/prm") {
      return Response.json({ resource: `${origin}/mcp`, authorization_servers: [mock.issuer] });
    }
  });
  const store = openStore(":memory:");
  try {
    const target = remoteOAuthTarget(backendAt(`${resource.origin}/mcp`), await dependencies(store));
    await rejectsWith(
      target.client(await target.server()),
      "registration",
      /supports neither client ID metadata documents .* nor dynamic registration.*set oauth\.client_id .* of backend remote/,
    );
    // Metadata documents need an https public_url: on plain http the server's support does not help.
    mock.metadata.client_id_metadata_document_supported = true;
    const onHttp = remoteOAuthTarget(
      backendAt(`${resource.origin}/mcp`),
      await dependencies(store, { base: "http://127.0.0.1:47123" }),
    );
    await rejectsWith(onHttp.client(await onHttp.server()), "registration", /oauth\.client_id/);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() refuses an authorization server that does not list PKCE with S256", async () => {
  const mock = await startMockAuthorizationServer();
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(`Bearer resource_metadata="${origin}/prm"`);
    if (path === "/prm") {
      return Response.json({ resource: `${origin}/mcp`, authorization_servers: [mock.issuer] });
    }
  });
  const store = openStore(":memory:");
  try {
    const deps = await dependencies(store);
    mock.metadata.code_challenge_methods_supported = undefined;
    await rejectsWith(remoteOAuthTarget(backendAt(`${resource.origin}/mcp`), deps).server(), "pkce", /S256/);
    mock.metadata.code_challenge_methods_supported = ["plain"];
    await rejectsWith(remoteOAuthTarget(backendAt(`${resource.origin}/mcp`), deps).server(), "pkce", /S256/);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() keeps no failure: discovery and registration are tried again on the next use", async () => {
  const mock = await startMockAuthorizationServer();
  let metadataAnswers = 500;
  let registrationAnswers: Response[] = [];
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(`Bearer resource_metadata="${origin}/prm"`);
    if (path === "/prm") {
      if (metadataAnswers !== 200) return new Response("down", { status: metadataAnswers });
      return Response.json({ resource: `${origin}/mcp`, authorization_servers: [mock.issuer] });
    }
    if (path === "/register") return registrationAnswers.shift();
  });
  mock.metadata.registration_endpoint = `${resource.origin}/register`;
  const store = openStore(":memory:");
  const vault = await openVault("/nonexistent", VAULT_KEY);
  try {
    const deps = await dependencies(store, { vault });
    const target = remoteOAuthTarget(backendAt(`${resource.origin}/mcp`), deps);
    await rejectsWith(target.server(), "resource_metadata", /\/prm answered 500/);
    metadataAnswers = 200;
    const server = await target.server();
    assert.equal(server.issuer, mock.issuer);
    assert.equal(resource.requests.filter((line) => line === "POST /mcp").length, 2, "discovery ran again");

    registrationAnswers = [
      Response.json({ error: "invalid_client_metadata", error_description: "try later" }, { status: 400 }),
      Response.json({
        client_id: "registered-with-secret",
        client_secret: "secret-from-registration",
        client_secret_expires_at: 0,
        token_endpoint_auth_method: "client_secret_post",
      }, { status: 201 }),
    ];
    await rejectsWith(
      target.client(server),
      "registration",
      /answered 400 invalid_client_metadata: try later/,
    );
    assert.deepEqual(listUpstreamClients(store), []);
    const { client, auth } = await target.client(server);
    assert.equal(client.client_id, "registered-with-secret");
    const body = new URLSearchParams();
    await auth(server, client, body, new Headers());
    assert.equal(body.get("client_secret"), "secret-from-registration");
    const [row] = listUpstreamClients(store);
    assert.ok(row?.sealedSecret !== undefined && !row.sealedSecret.includes("secret-from-registration"));
    assert.equal(
      await vault.open(row.sealedSecret, "gatehouse:upstream_client", mock.issuer),
      "secret-from-registration",
    );
    assert.ok(
      deps.logs.every((line) => !line.includes("secret-from-registration")),
      "the secret is never logged",
    );
    assert.equal(resource.requests.filter((line) => line === "POST /register").length, 2);
  } finally {
    store.close();
    await resource.close();
    await mock.stop();
  }
});

Deno.test("remoteOAuthTarget() forgetClient() drops a registration the server no longer knows; the next use registers again", async () => {
  const remote = await startRemoteGatehouse();
  const store = openStore(":memory:");
  try {
    const target = remoteOAuthTarget(
      backendAt(remote.mcpUrl),
      await dependencies(store, { base: "http://127.0.0.1:47123" }),
    );
    const server = await target.server();
    const first = (await target.client(server)).client.client_id;
    assert.equal(target.forgetClient(server, "some-other-id"), false, "only the registration named");
    assert.equal(target.forgetClient(server, first), true);
    const second = (await target.client(server)).client.client_id;
    assert.notEqual(second, first);
    assert.equal(listUpstreamClients(store)[0]?.clientId, second);
  } finally {
    store.close();
    await remote.close();
  }
});

Deno.test("describeRemoteOAuth() says what discovery found, or which step failed", async () => {
  const remote = await startRemoteGatehouse();
  const mock = await startMockAuthorizationServer();
  const slowAnswer = Promise.withResolvers<Response>();
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(undefined);
    if (path === "/.well-known/oauth-protected-resource/mcp") {
      return Response.json({ resource: `${origin}/mcp`, authorization_servers: [mock.issuer] });
    }
    if (path === "/huge/mcp") return unauthorized(`Bearer resource_metadata="${origin}/huge/prm"`);
    if (path === "/huge/prm") return new Response("x".repeat(300 * 1024));
    // Answers only once the test is done with it (so that the server can stop).
    if (path === "/slow/mcp") return slowAnswer.promise;
  });
  const store = openStore(":memory:");
  try {
    assert.deepEqual(
      await describeRemoteOAuth(backendAt(remote.mcpUrl), { baseUrl: () => OUR_BASE }),
      {
        facts: [
          `resource metadata: ${remote.base}/.well-known/oauth-protected-resource/mcp (from the 401 challenge)`,
          `resource: ${remote.mcpUrl}`,
          `authorization server: ${remote.base}`,
          `registration: client ID metadata document ${OUR_BASE}/oauth/client-metadata.json`,
          "scopes: mcp",
        ],
        failure: undefined,
      },
    );
    const onHttp = { baseUrl: () => "http://127.0.0.1:47123", store };
    assert.match(
      (await describeRemoteOAuth(backendAt(remote.mcpUrl), onHttp)).facts[3]!,
      /^registration: dynamic registration at .*\/register \(on first use\)$/,
    );
    const target = remoteOAuthTarget(
      backendAt(remote.mcpUrl),
      await dependencies(store, { base: "http://127.0.0.1:47123" }),
    );
    const { client } = await target.client(await target.server());
    assert.match(
      (await describeRemoteOAuth(backendAt(remote.mcpUrl), onHttp)).facts[3]!,
      new RegExp(`\\(client id ${client.client_id}, registered \\d{4}-`),
    );

    const withMock = await describeRemoteOAuth(
      backendAt(`${resource.origin}/mcp`, { scopes: ["a", "b"], clientId: "by-hand" }),
      { baseUrl: () => OUR_BASE },
    );
    assert.deepEqual(withMock.facts.slice(1), [
      `resource: ${resource.origin}/mcp`,
      `authorization server: ${mock.issuer}`,
      "registration: configured client id by-hand",
      "scopes: a b",
    ]);
    assert.match(
      withMock.facts[0]!,
      /\/\.well-known\/oauth-protected-resource\/mcp \(at the well-known URI\)$/,
    );
    const cannotRegister = await describeRemoteOAuth(backendAt(`${resource.origin}/mcp`), {
      baseUrl: () => OUR_BASE,
    });
    assert.equal(cannotRegister.failure?.step, "registration");
    assert.match(cannotRegister.failure.message, /set oauth\.client_id/);
    assert.equal(cannotRegister.facts.at(-1), "registration: none possible");

    const closed = startHandWrittenServer(() => undefined);
    await closed.close();
    const unreachable = await describeRemoteOAuth(backendAt(`${closed.origin}/mcp?key=kept-out`), {
      baseUrl: () => OUR_BASE,
    });
    assert.deepEqual(unreachable.facts, []);
    assert.equal(unreachable.failure?.step, "mcp_request");
    assert.doesNotMatch(unreachable.failure.message, /kept-out/, "a URL's query is never shown");

    const huge = await describeRemoteOAuth(backendAt(`${resource.origin}/huge/mcp`), {
      baseUrl: () => OUR_BASE,
    });
    assert.equal(huge.failure?.step, "resource_metadata");
    assert.match(huge.failure.message, /larger than 262144 bytes/);

    const slow = await describeRemoteOAuth(backendAt(`${resource.origin}/slow/mcp`), {
      baseUrl: () => OUR_BASE,
      timeoutMs: 200,
    });
    assert.equal(slow.failure?.step, "mcp_request");
    assert.match(slow.failure.message, /no answer in time/);
  } finally {
    slowAnswer.resolve(new Response("late"));
    store.close();
    await resource.close();
    await mock.stop();
    await remote.close();
  }
});

Deno.test("remoteOAuthTarget() refuses plain http off this machine and metadata naming no authorization server", async () => {
  const store = openStore(":memory:");
  const resource = startHandWrittenServer((request, origin) => {
    const path = new URL(request.url).pathname;
    if (path === "/mcp") return unauthorized(`Bearer resource_metadata="${origin}/prm"`);
    if (path === "/prm") {
      return Response.json({ resource: `${origin}/mcp`, authorization_servers: ["http://as.example.com"] });
    }
  });
  try {
    const deps = await dependencies(store);
    await rejectsWith(
      remoteOAuthTarget(backendAt("http://mcp.example.com/mcp"), deps).server(),
      "mcp_request",
      /must be https/,
    );
    await rejectsWith(
      remoteOAuthTarget(backendAt(`${resource.origin}/mcp`), deps).server(),
      "resource_metadata",
      /names no https authorization server/,
    );
  } finally {
    store.close();
    await resource.close();
  }
});
