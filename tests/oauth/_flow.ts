/**
 * Shared steps for the authorization server's tests: a gateway with OAuth on, PKCE pairs, client
 * registration, the browser leg of the code flow, and the token endpoint. Not a test file itself.
 */
import assert from "node:assert/strict";
import { base64url } from "jose";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { hashPassword } from "../../src/login/password.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import {
  misbehaving,
  startTestGateway,
  type TestGateway,
  withDefaultPolicy,
  within,
} from "../helpers/mcp_clients.ts";

export const ALICE = { username: "alice", password: "alice-password-for-tests" } as const;
export const REDIRECT_URI = "http://127.0.0.1:53682/callback";

let aliceHash: Promise<string> | undefined;
/** The argon2id hash of alice's password, made once per test module (it takes ~150 ms). */
export function aliceHashOnce(): Promise<string> {
  aliceHash ??= hashPassword(ALICE.password);
  return aliceHash;
}

/**
 * A gateway with `auth: oauth`, user alice (groups staff), and two stdio backends `mis` and `other`
 * (started only when a call reaches them). `gateway` and the top-level keys of `extra` are merged in.
 */
export async function startOAuthGateway(
  gateway: Record<string, unknown> = {},
  extra: Record<string, unknown> = {},
): Promise<TestGateway & { base: string }> {
  const started = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s", ...gateway },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
    backends: { mis: misbehaving("mis"), other: misbehaving("other") },
    ...extra,
  });
  return Object.assign(started, { base: started.gateway.url });
}

/** A fresh PKCE pair (RFC 7636, S256). */
export async function pkce(): Promise<{ verifier: string; challenge: string }> {
  const verifier = base64url.encode(crypto.getRandomValues(new Uint8Array(32)));
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return { verifier, challenge: base64url.encode(new Uint8Array(digest)) };
}

/** RFC 7591 registration; returns the parsed answer after checking it is a 201. */
export async function register(
  base: string,
  metadata: Record<string, unknown> = {},
): Promise<Record<string, string> & { client_id: string }> {
  const response = await fetch(`${base}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: "Test client",
      redirect_uris: [REDIRECT_URI],
      token_endpoint_auth_method: "none",
      ...metadata,
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body;
}

/** The /authorize URL for `clientId` with sensible defaults; `undefined` values leave a parameter out. */
export function authorizeUrl(
  base: string,
  params: Record<string, string | undefined>,
): string {
  const query = new URLSearchParams();
  const all: Record<string, string | undefined> = {
    response_type: "code",
    redirect_uri: REDIRECT_URI,
    code_challenge_method: "S256",
    state: "state-123",
    ...params,
  };
  for (const [name, value] of Object.entries(all)) if (value !== undefined) query.set(name, value);
  return `${base}/authorize?${query}`;
}

/**
 * Signs alice in (when the browser has no session yet) and approves; returns the gateway's final
 * response, unread, whatever it is (a 303 to the client, a refused sign-in, or an error page).
 */
export async function authorizeAs(
  browser: ScriptedBrowser,
  url: string,
  credentials: { username: string; password: string } = ALICE,
): Promise<Response> {
  const origin = new URL(url).origin;
  let response = await browser.fetch(url);
  if (response.status !== 200) return response;
  let page = await response.text();
  if (page.includes('action="/login"')) {
    response = await browser.post(`${origin}/login`, { ...formFields(page), ...credentials });
    if (response.status !== 303) return response;
    await response.body?.cancel();
    response = await browser.fetch(new URL(response.headers.get("location")!, origin).href);
    if (response.status !== 200) return response;
    page = await response.text();
  }
  assert.ok(page.includes('action="/authorize/consent"'), `expected the consent page, got: ${page}`);
  return await browser.post(`${origin}/authorize/consent`, { ...formFields(page), decision: "allow" });
}

/** Runs the browser leg for a public client and returns the code (and the callback URL). */
export async function obtainCode(
  base: string,
  clientId: string,
  options: {
    browser?: ScriptedBrowser;
    credentials?: { username: string; password: string };
    challenge: string;
    params?: Record<string, string | undefined>;
  },
): Promise<{ code: string; callback: URL }> {
  const response = await authorizeAs(
    options.browser ?? new ScriptedBrowser(),
    authorizeUrl(base, { client_id: clientId, code_challenge: options.challenge, ...options.params }),
    options.credentials,
  );
  await response.body?.cancel();
  assert.equal(response.status, 303, "the authorization response is a redirect");
  const callback = new URL(response.headers.get("location")!);
  const code = callback.searchParams.get("code");
  assert.ok(code, `no code in ${callback}`);
  return { code, callback };
}

/** POSTs a form to the token endpoint. */
export function tokenRequest(
  base: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
  path = "/token",
): Promise<Response> {
  return fetch(`${base}${path}`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  });
}

/** A token endpoint response, parsed, with its status and headers. */
export async function tokenCall(
  base: string,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
  path = "/token",
): Promise<{ status: number; headers: Headers; body: Record<string, string> }> {
  const response = await tokenRequest(base, fields, headers, path);
  const text = await response.text();
  return { status: response.status, headers: response.headers, body: text ? JSON.parse(text) : {} };
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

/**
 * Registers a public client, runs the code flow for alice (or `credentials`, in `browser`, which keeps its
 * Gatehouse session), and exchanges the code.
 */
export async function signedInTokens(
  base: string,
  options: {
    resource?: string;
    clientId?: string;
    browser?: ScriptedBrowser;
    credentials?: { username: string; password: string };
  } = {},
): Promise<{ clientId: string; tokens: Tokens; code: string }> {
  const clientId = options.clientId ?? (await register(base)).client_id;
  const { verifier, challenge } = await pkce();
  const { code } = await obtainCode(base, clientId, {
    browser: options.browser,
    credentials: options.credentials,
    challenge,
    params: { resource: options.resource },
  });
  const answer = await tokenCall(base, {
    grant_type: "authorization_code",
    client_id: clientId,
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URI,
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  return { clientId, tokens: answer.body as unknown as Tokens, code };
}

/** `Authorization: Basic` for client credentials (RFC 6749 §2.3.1: form-encoded, then base64). */
export function basic(clientId: string, secret: string): Record<string, string> {
  return { authorization: `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`)}` };
}

/** POSTs an MCP `initialize` with a bearer token; returns the status and the challenge header. */
export async function mcpInitialize(
  url: string,
  token: string | undefined,
): Promise<{ status: number; wwwAuthenticate: string | null }> {
  const response = await fetch(url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      accept: "application/json, text/event-stream",
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
    },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "t", version: "1" } },
    }),
  });
  await response.body?.cancel();
  return { status: response.status, wwwAuthenticate: response.headers.get("www-authenticate") };
}

/** A gateway started by hand in `dir` (registry.yaml and data/ inside), for tests that restart it. */
export async function startGatewayIn(
  dir: string,
  registry: Record<string, unknown>,
  logs: Record<string, unknown>[] = [],
): Promise<RunningGateway> {
  const registryPath = join(dir, "registry.yaml");
  await Deno.writeTextFile(registryPath, JSON.stringify(withDefaultPolicy(registry), null, 2));
  return await startGateway({
    registryPath,
    listen: "127.0.0.1:0",
    dataDir: join(dir, "data"),
    log: createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) }),
    watch: false,
  });
}

/** Stops a gateway started with startGatewayIn, bounded so that a hang fails the test. */
export async function stopGateway(gateway: RunningGateway): Promise<void> {
  await within(8_000, gateway.shutdown(), "gateway shutdown");
}
