/**
 * The remote servers of the OAuth-protected backend tests: a real second Gatehouse (its /mcp answers 401
 * with resource_metadata; RFC 9728/8414 metadata, dynamic registration, client ID metadata documents
 * fetched over loopback), oauth2-mock-server as an authorization server without registration, and a
 * hand-written protected resource on 127.0.0.1. Not a test file itself.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import * as oauth from "oauth4webapi";
import { OAuth2Server } from "npm:oauth2-mock-server@9.3.0";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { MetadataDocumentFetcher } from "../../src/oauth/client_metadata_document.ts";
import type { ConnectTarget } from "../../src/services/connect_target.ts";
import { ScriptedBrowser, signInAndApprove } from "../helpers/browser_session.ts";
import { ALLOW_EVERYONE, within } from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce, mcpInitialize } from "../oauth/_flow.ts";

/** A second Gatehouse, the remote MCP server of the tests, with user alice. */
export interface RemoteGatehouse {
  readonly gateway: RunningGateway;
  /** Its base URL, which is also its issuer. */
  readonly base: string;
  /** Its MCP endpoint. */
  readonly mcpUrl: string;
  /** The client ID metadata documents it fetched, by URL. */
  readonly fetchedDocuments: string[];
  close(): Promise<void>;
}

/**
 * Starts a Gatehouse with `auth: oauth` on 127.0.0.1. Client ID metadata documents it is asked to fetch are
 * fetched from `documentOrigin` (a server on 127.0.0.1 standing for our own Gatehouse's public URL),
 * whatever host their URL names.
 */
export async function startRemoteGatehouse(documentOrigin?: string): Promise<RemoteGatehouse> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-remote-" });
  const registry = {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: [] } } },
    backends: { mis: { stdio: { command: "true" } } },
    policies: [ALLOW_EVERYONE],
  };
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry));
  const fetchedDocuments: string[] = [];
  const fetcher: MetadataDocumentFetcher = {
    allowPrivateAddresses: true,
    resolve: () => Promise.resolve(["127.0.0.1"]),
    fetch(url, _address, init) {
      fetchedDocuments.push(url);
      if (documentOrigin === undefined) return Promise.resolve(new Response("not found", { status: 404 }));
      return fetch(`${documentOrigin}${new URL(url).pathname}`, { ...init, redirect: "manual" });
    },
  };
  const gateway = await startGateway({
    registryPath: join(dir, "registry.yaml"),
    listen: "127.0.0.1:0",
    dataDir: join(dir, "data"),
    log: createLogger({ write: () => {} }),
    watch: false,
    clientMetadataFetcher: fetcher,
  });
  return {
    gateway,
    base: gateway.url,
    mcpUrl: `${gateway.url}/mcp`,
    fetchedDocuments,
    async close() {
      try {
        await within(8_000, gateway.shutdown(), "gateway shutdown");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** oauth2-mock-server on 127.0.0.1, with fields laid over its discovery document (`undefined` removes one). */
export interface MockAuthorizationServer {
  readonly issuer: string;
  readonly metadata: Record<string, unknown>;
  stop(): Promise<void>;
}

export async function startMockAuthorizationServer(): Promise<MockAuthorizationServer> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate("RS256");
  await server.start(0, "127.0.0.1");
  // The mock names itself `localhost`; everything here stays on 127.0.0.1.
  server.issuer.url = `http://127.0.0.1:${server.address().port}`;
  const metadata: Record<string, unknown> = {};
  server.service.on("beforeWellKnownOpenIdConfiguration", (response: { body: Record<string, unknown> }) => {
    for (const [field, value] of Object.entries(metadata)) {
      if (value === undefined) delete response.body[field];
      else response.body[field] = value;
    }
  });
  return { issuer: server.issuer.url, metadata, stop: () => server.stop() };
}

/** A hand-written HTTP server on 127.0.0.1: `answer` decides (undefined: 404); every request is recorded. */
export interface HandWrittenServer {
  readonly origin: string;
  /** "METHOD /path" of every request, in order. */
  readonly requests: string[];
  close(): Promise<void>;
}

export function startHandWrittenServer(
  answer: (request: Request, origin: string) => Response | Promise<Response> | undefined,
): HandWrittenServer {
  const requests: string[] = [];
  let origin = "";
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    requests.push(`${request.method} ${url.pathname}`);
    await request.body?.cancel();
    return (await answer(request, origin)) ?? new Response("not found", { status: 404 });
  });
  origin = `http://127.0.0.1:${server.addr.port}`;
  return { origin, requests, close: () => server.shutdown() };
}

/** A protected resource's 401, with this `WWW-Authenticate` value (none when undefined). */
export function unauthorized(challenge: string | undefined): Response {
  return new Response(JSON.stringify({ error: "unauthorized" }), {
    status: 401,
    headers: {
      "content-type": "application/json",
      ...(challenge === undefined ? {} : { "www-authenticate": challenge }),
    },
  });
}

/** A fetch that records "METHOD url" and lets `rewrite` change an answer (say, drop a metadata field). */
export function recordingFetch(
  rewrite: (url: string, response: Response) => Response | Promise<Response> = (_url, response) => response,
): typeof fetch & { readonly requests: string[] } {
  const requests: string[] = [];
  const recording = async (input: string | URL | Request, init?: RequestInit) => {
    const url = input instanceof Request ? input.url : String(input);
    requests.push(`${init?.method ?? "GET"} ${url}`);
    return await rewrite(url, await fetch(input, init));
  };
  return Object.assign(recording, { requests });
}

/** The answer with the JSON object of its body changed by `change`. */
export async function withJson(
  response: Response,
  change: (body: Record<string, unknown>) => void,
): Promise<Response> {
  const body = await response.json();
  change(body);
  return Response.json(body, { status: response.status, headers: { "cache-control": "no-store" } });
}

/**
 * Alice connects through `target` as the connection flow does (authorization URL with PKCE, scope and
 * resource; sign-in at the remote Gatehouse; code exchange with the resource), then uses the token at its
 * MCP endpoint. Returns the status of that MCP request.
 */
export async function connectAlice(
  target: ConnectTarget,
  callbackUrl: string,
  mcpUrl: string,
): Promise<number> {
  const server = await target.server();
  const { client, auth } = await target.client(server);
  const scopes = await target.scopes();
  const resource = await target.resource();
  const verifier = oauth.generateRandomCodeVerifier();
  const state = oauth.generateRandomState();
  const url = new URL(server.authorization_endpoint!);
  url.searchParams.set("client_id", client.client_id);
  url.searchParams.set("redirect_uri", callbackUrl);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", await oauth.calculatePKCECodeChallenge(verifier));
  url.searchParams.set("code_challenge_method", "S256");
  if (scopes.length > 0) url.searchParams.set("scope", scopes.join(" "));
  if (resource !== undefined) url.searchParams.set("resource", resource);
  const callback = await signInAndApprove(new ScriptedBrowser(), url.href, ALICE);
  assert.equal(`${callback.origin}${callback.pathname}`, callbackUrl);
  const parameters = oauth.validateAuthResponse(server, client, callback, state);
  const response = await oauth.authorizationCodeGrantRequest(
    server,
    client,
    auth,
    parameters,
    callbackUrl,
    verifier,
    {
      additionalParameters: resource === undefined ? {} : { resource },
      [oauth.allowInsecureRequests]: true,
    },
  );
  const tokens = await oauth.processAuthorizationCodeResponse(server, client, response);
  return (await mcpInitialize(mcpUrl, tokens.access_token)).status;
}
