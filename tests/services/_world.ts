/**
 * The world of the consent-link tests (product section 6): a third-party service (oauth2-mock-server), the
 * token echo fixture as an HTTP backend, and a gateway with OAuth on, users alice and bob, service `mock`,
 * and the backends `stdio-tok` (env) and `http-tok` (headers) that need it. Not a test file itself.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { OAuth2Server } from "npm:oauth2-mock-server@9.3.0";
import { hashPassword } from "../../src/login/password.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import {
  JSON_HEADERS,
  messagesOf,
  startTestGateway,
  type TestGateway,
  textOf,
  within,
} from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce, signedInTokens } from "../oauth/_flow.ts";

export { ALICE };
export const BOB = { username: "bob", password: "bob-password-for-tests" } as const;
export type Credentials = { readonly username: string; readonly password: string };

/** Every test's bound: a flow that hangs must fail its test, not the suite. */
export const TEST_BOUND_MS = 45_000;
const FIXTURE = join(ROOT, "tests", "fixtures", "token_echo_server.ts");
const CONFIG = join(ROOT, "deno.json");
/**
 * Letters only: oauth4webapi form-encodes the Basic credentials (RFC 6749 §2.3.1, "-" becomes "%2D") and
 * the mock puts them undecoded in the ID token's `aud`, which the gateway then rightly refuses.
 */
export const SERVICE_CLIENT_ID = "gatehouseatmock";
export const SERVICE_CLIENT_SECRET = "mock-client-secret-for-tests";
/** Where the mock's revocation endpoint is advertised (a route of ours, to see what is revoked). */
const REVOKE_PATH = "/recorded-revoke";

let bobHash: Promise<string> | undefined;
function bobHashOnce(): Promise<string> {
  bobHash ??= hashPassword(BOB.password);
  return bobHash;
}

/** One answer of the service's token endpoint, as the gateway received it. */
export interface Issued {
  readonly grantType: string;
  /** The refresh token the gateway presented (refresh grants). */
  readonly presented: string | undefined;
  readonly status: number;
  readonly accessToken: string | undefined;
  readonly refreshToken: string | undefined;
  /** How the client authenticated (RFC 6749 §2.3.1): an Authorization header, form fields, or neither. */
  readonly clientAuth: "basic" | "post" | "none";
}

/** The third-party service: oauth2-mock-server with knobs and a record of what it did. */
export interface MockService {
  readonly server: OAuth2Server;
  readonly issuer: string;
  readonly origin: string;
  /** `expires_in` of the next answers to the code grant / the refresh grant (undefined: the mock's own). */
  codeExpiresInSeconds: number | undefined;
  refreshExpiresInSeconds: number | undefined;
  /** Answer refresh grants with 400 `invalid_grant`. */
  refuseRefresh: boolean;
  /**
   * When set, the token endpoint answers 401 `invalid_client` unless the client presents exactly this
   * secret. Like many servers it does not percent-decode Basic credentials (RFC 6749 §2.3.1 says to).
   */
  clientSecret: string | undefined;
  /** When set, the answer to code grants (an OAuth error, RFC 6749 §5.2). */
  codeGrantAnswer: { status: number; body: Record<string, unknown> } | undefined;
  /** When set, the `aud` of the ID tokens it signs. */
  idTokenAudience: string | undefined;
  /** Fields laid over its discovery document; a field set to `undefined` is taken out. */
  metadata: Record<string, unknown>;
  readonly issued: Issued[];
  /** The query of every authorization request. */
  readonly authorizations: URLSearchParams[];
  /** The form of every revocation request, with its Authorization header. */
  readonly revocations: { form: Record<string, unknown>; authorization: string | undefined }[];
  stop(): Promise<void>;
}

export async function startMockService(): Promise<MockService> {
  const server = new OAuth2Server();
  await server.issuer.keys.generate("RS256");
  await server.start(0, "127.0.0.1");
  // The mock names itself `localhost`; everything here stays on 127.0.0.1.
  server.issuer.url = `http://127.0.0.1:${server.address().port}`;
  const issuer = server.issuer.url;
  const mock: MockService = {
    server,
    issuer,
    origin: new URL(issuer).origin,
    codeExpiresInSeconds: undefined,
    refreshExpiresInSeconds: undefined,
    refuseRefresh: false,
    clientSecret: undefined,
    codeGrantAnswer: undefined,
    idTokenAudience: undefined,
    metadata: {},
    issued: [],
    authorizations: [],
    revocations: [],
    stop: () => server.stop(),
  };
  // Every token unique, even two signed within the same second for the same subject.
  server.service.on("beforeTokenSigning", (token: { payload: Record<string, unknown> }) => {
    token.payload.jti = crypto.randomUUID();
    // The mock's access tokens carry a scope, its ID tokens none.
    if (mock.idTokenAudience !== undefined && !("scope" in token.payload)) {
      token.payload.aud = mock.idTokenAudience;
    }
  });
  server.service.on(
    "beforeResponse",
    (
      response: { statusCode: number; body: Record<string, unknown> | "" },
      request: { body: Record<string, unknown>; headers: Record<string, string | undefined> },
    ) => {
      const grantType = String(request.body.grant_type);
      const clientAuth = clientAuthOf(request);
      if (mock.clientSecret !== undefined && clientAuth.secret !== mock.clientSecret) {
        response.statusCode = 401;
        response.body = { error: "invalid_client", error_description: "Client authentication failed" };
      } else if (grantType === "authorization_code" && mock.codeGrantAnswer) {
        response.statusCode = mock.codeGrantAnswer.status;
        response.body = mock.codeGrantAnswer.body;
      } else if (grantType === "refresh_token" && mock.refuseRefresh) {
        response.statusCode = 400;
        response.body = { error: "invalid_grant", error_description: "The refresh token was revoked" };
      } else if (typeof response.body === "object") {
        const expiresIn = grantType === "refresh_token"
          ? mock.refreshExpiresInSeconds
          : mock.codeExpiresInSeconds;
        if (expiresIn !== undefined) response.body.expires_in = expiresIn;
      }
      const body = typeof response.body === "object" ? response.body : {};
      mock.issued.push({
        grantType,
        presented: typeof request.body.refresh_token === "string" ? request.body.refresh_token : undefined,
        status: response.statusCode,
        accessToken: typeof body.access_token === "string" ? body.access_token : undefined,
        refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : undefined,
        clientAuth: clientAuth.method,
      });
    },
  );
  server.service.on("beforeAuthorizeRedirect", (_redirect: unknown, request: { url?: string }) => {
    mock.authorizations.push(new URL(request.url ?? "/", issuer).searchParams);
  });
  server.service.on("beforeWellKnownOpenIdConfiguration", (response: { body: Record<string, unknown> }) => {
    response.body.revocation_endpoint = `${mock.origin}${REVOKE_PATH}`;
    for (const [field, value] of Object.entries(mock.metadata)) {
      if (value === undefined) delete response.body[field];
      else response.body[field] = value;
    }
  });
  server.service.addRoute("POST", REVOKE_PATH, (request, response) => {
    const authorization = request.headers.authorization;
    mock.revocations.push({ form: (request.body ?? {}) as Record<string, unknown>, authorization });
    response.statusCode = 200;
    response.end();
  });
  return mock;
}

/** How a token request authenticated its client, and the secret as presented (Basic: not decoded). */
function clientAuthOf(
  request: { body: Record<string, unknown>; headers: Record<string, string | undefined> },
): { method: Issued["clientAuth"]; secret: string | undefined } {
  const basic = /^Basic (.+)$/i.exec(request.headers.authorization ?? "")?.[1];
  if (basic !== undefined) {
    // RFC 7617 §2: the user-id ends at the first colon; the password may hold more.
    const pair = atob(basic);
    return { method: "basic", secret: pair.slice(pair.indexOf(":") + 1) };
  }
  const secret = request.body.client_secret;
  return typeof secret === "string" ? { method: "post", secret } : { method: "none", secret: undefined };
}

/** The token echo fixture over Streamable HTTP, on 127.0.0.1. */
export interface EchoHttpBackend {
  readonly url: string;
  stop(): Promise<void>;
}

export async function startEchoHttpBackend(): Promise<EchoHttpBackend> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--config=${CONFIG}`, FIXTURE, "http"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const draining = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) stderr += chunk;
  })();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch {
      // Already exited.
    }
    await reader.cancel().catch(() => {});
    await child.status;
    await draining;
  };
  try {
    let text = "";
    const url = await within(
      20_000,
      (async () => {
        while (!text.includes("\n")) {
          const { value, done } = await reader.read();
          if (done) throw new Error(`token echo fixture exited: ${stderr}`);
          text += value;
        }
        return (JSON.parse(text.slice(0, text.indexOf("\n"))) as { url: string }).url;
      })(),
      "token echo fixture start",
    );
    return { url, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

export interface World {
  readonly mock: MockService;
  readonly echo: EchoHttpBackend;
  readonly gateway: TestGateway;
  /** `http://127.0.0.1:PORT` */
  readonly base: string;
}

/** What a test changes of the world before it starts. */
export interface WorldOptions {
  /** Settings laid over those of the service `mock` in the registry. */
  readonly service?: Record<string, unknown>;
}

/** The registry of the world's gateway. */
export async function worldRegistry(
  issuer: string,
  echoUrl: string,
  options: WorldOptions = {},
): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await bobHashOnce(), groups: ["staff"] },
      },
    },
    services: {
      mock: {
        issuer,
        client_id: SERVICE_CLIENT_ID,
        client_secret: SERVICE_CLIENT_SECRET,
        scopes: ["read"],
        ...options.service,
      },
    },
    backends: {
      "stdio-tok": {
        stdio: {
          command: Deno.execPath(),
          args: ["run", "-A", `--config=${CONFIG}`, FIXTURE, "stdio"],
          env: { SERVICE_TOKEN: "${service:mock}" },
        },
      },
      "http-tok": { http: { url: echoUrl, headers: { Authorization: "Bearer ${service:mock}" } } },
    },
  };
}

/** Starts the service, the HTTP fixture and the gateway; runs `work` bounded; stops all three. */
export async function withWorld(
  work: (world: World) => Promise<void>,
  options: WorldOptions = {},
): Promise<void> {
  const mock = await startMockService();
  let echo: EchoHttpBackend | undefined;
  let gateway: TestGateway | undefined;
  try {
    echo = await startEchoHttpBackend();
    gateway = await startTestGateway(await worldRegistry(mock.issuer, echo.url, options));
    await within(TEST_BOUND_MS, work({ mock, echo, gateway, base: gateway.gateway.url }), "the test");
  } finally {
    try {
      await gateway?.close();
    } finally {
      try {
        await echo?.stop();
      } finally {
        await mock.stop();
      }
    }
  }
}

/**
 * Signs `credentials` in with `browser` and runs the gateway's code flow for a fresh public client;
 * returns the gateway access token (for `/mcp`). The browser keeps its Gatehouse session.
 */
export async function gatewayToken(base: string, browser: ScriptedBrowser, credentials: Credentials) {
  return (await signedInTokens(base, { browser, credentials })).tokens.access_token;
}

/** A user of the world: a browser signed in to Gatehouse and a gateway access token. */
export interface User {
  readonly credentials: Credentials;
  readonly browser: ScriptedBrowser;
  readonly token: string;
}

export async function signIn(world: World, credentials: Credentials): Promise<User> {
  const browser = new ScriptedBrowser();
  return { credentials, browser, token: await gatewayToken(world.base, browser, credentials) };
}

export type ClientKind =
  /** 2026-07-28 with URL elicitation: consent arrives as `input_required`. */
  | "modern"
  /** 2025-11-25 declaring `elicitation.url`: consent arrives as -32042. */
  | "legacy-url"
  /** 2025-11-25 without elicitation: the link comes in the tool result or in the error's data. */
  | "plain"
  /** 2026-07-28 without elicitation: it cannot answer a URL elicitation either. */
  | "modern-plain";

export interface ClientOptions {
  /** For `modern` and `legacy-url`: the answer to URL elicitations (the user opening the link). */
  onElicitation?: (params: { mode?: string; url?: string; message?: string; elicitationId?: string }) =>
    | Promise<Record<string, unknown>>
    | Record<string, unknown>;
  /** For `legacy-url`: `notifications/elicitation/complete` as it arrives. */
  onComplete?: (elicitationId: string) => void;
}

/** An SDK v2 MCP client with the user's gateway token, at `/mcp` or `/mcp/{backend}`. */
export async function connectClient(
  url: string,
  token: string,
  kind: ClientKind,
  options: ClientOptions = {},
): Promise<Client> {
  const modern = kind === "modern" || kind === "modern-plain";
  const client = new Client(
    { name: `consent-test-${kind}`, version: "1.0.0" },
    {
      capabilities: kind === "modern" || kind === "legacy-url" ? { elicitation: { url: {} } } : {},
      ...(modern ? { versionNegotiation: { mode: "auto" as const } } : {}),
    },
  );
  if (kind === "modern" || kind === "legacy-url") {
    const onElicitation = options.onElicitation ?? (() => ({ action: "decline" }));
    client.setRequestHandler(
      "elicitation/create",
      // deno-lint-ignore no-explicit-any
      async (request) => await onElicitation(request.params as unknown as Record<string, string>) as any,
    );
  }
  if (options.onComplete) {
    const onComplete = options.onComplete;
    client.setNotificationHandler(
      "notifications/elicitation/complete",
      (notification) => onComplete(String(notification.params.elicitationId)),
    );
  }
  await client.connect(
    new StreamableHTTPClientTransport(new URL(url), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  assert.equal(client.getProtocolEra(), modern ? "modern" : "legacy");
  return client;
}

/** What the token echo fixture answered: `{token, pid}` (stdio) or `{authorization}` (HTTP). */
export interface WhoAmI {
  token?: string | null;
  pid?: number;
  authorization?: string | null;
}

export async function whoami(client: Client, backend: "stdio-tok" | "http-tok"): Promise<WhoAmI> {
  const result = await client.callTool({ name: `${backend}__whoami`, arguments: {} });
  assert.ok(!result.isError, `whoami failed: ${JSON.stringify(result)}`);
  return JSON.parse(textOf(result)) as WhoAmI;
}

/** The consent link of a tool result that asks for one (clients without elicitation). */
export function linkOfToolResult(result: Record<string, unknown>): string {
  assert.equal(result.isError, true, `expected the consent answer: ${JSON.stringify(result)}`);
  const link = (result._meta as { auth_url?: string } | undefined)?.auth_url;
  assert.ok(link, `no _meta.auth_url in ${JSON.stringify(result)}`);
  assert.ok(textOf(result).includes(link), "the text gives the link");
  return link;
}

/** Asserts the shape of a consent link: `{base}/connect/mock?ticket=...`. */
export function assertConsentLink(base: string, link: string | undefined): string {
  assert.ok(link, "a consent link");
  const url = new URL(link);
  assert.equal(`${url.origin}${url.pathname}`, `${base}/connect/mock`);
  assert.ok((url.searchParams.get("ticket") ?? "").length >= 20, "a ticket");
  return link;
}

/** The location of a redirect, resolved against `base`, after checking the status. */
export async function locationOf(response: Response, status: number, base: string): Promise<string> {
  const body = await response.text();
  assert.equal(response.status, status, body);
  return new URL(response.headers.get("location")!, base).href;
}

/**
 * Opens a consent link in `browser` as a person would: signs in first when Gatehouse asks (with
 * `credentials`), goes to the service, which sends the browser straight back to the callback; returns
 * the callback's page. Asserts every hop on the way.
 */
export async function openConsentLink(
  world: World,
  browser: ScriptedBrowser,
  link: string,
  credentials?: Credentials,
): Promise<{ status: number; page: string }> {
  let response = await browser.fetch(link);
  if (response.status === 200) {
    const page = await response.text();
    assert.ok(page.includes('action="/login"'), `expected the sign-in page, got: ${page}`);
    assert.ok(credentials, "the browser must sign in first");
    const signedIn = await browser.post(`${world.base}/login`, { ...formFields(page), ...credentials });
    assert.equal(await locationOf(signedIn, 303, world.base), link, "sign-in returns to the link");
    response = await browser.fetch(link);
  }
  const done = await browser.fetch(await serviceCallback(world, browser, response));
  return { status: done.status, page: await done.text() };
}

/**
 * Follows the consent link's answer (`response`, the redirect to the service) to the service, which
 * sends the browser straight back; returns the callback URL, not yet opened.
 */
export async function serviceCallback(world: World, browser: ScriptedBrowser, response: Response) {
  const toService = await locationOf(response, 303, world.base);
  assert.ok(toService.startsWith(`${world.mock.origin}/authorize?`), `to the service: ${toService}`);
  const callback = await locationOf(await browser.fetch(toService), 302, world.mock.origin);
  assert.ok(callback.startsWith(`${world.base}/connect/mock/callback?`), `back to Gatehouse: ${callback}`);
  return callback;
}

/** `openConsentLink`, asserting the friendly "connected" page. */
export async function connectService(
  world: World,
  browser: ScriptedBrowser,
  link: string,
  credentials?: Credentials,
): Promise<void> {
  const { status, page } = await openConsentLink(world, browser, link, credentials);
  const warnings = world.gateway.logs.filter((line) => line.level === "warn");
  assert.equal(status, 200, `${page}\n${JSON.stringify(warnings)}`);
  assert.match(page, /Connected/);
  assert.match(page, /Return to your client/);
}

/** The latest access token the service issued (successfully) to the gateway. */
export function latestAccessToken(mock: MockService): string {
  const issued = mock.issued.filter((entry) => entry.accessToken !== undefined).at(-1);
  assert.ok(issued?.accessToken, "the service issued a token");
  return issued.accessToken;
}

/** The stored row of a user's token for `mock` (sealed), if any. */
export function storedToken(
  world: World,
  userId: string,
): { sealed: string; expires_at: number | null; scope: string } | undefined {
  return world.gateway.gateway.store.db.prepare(
    "SELECT sealed, expires_at, scope FROM service_tokens WHERE user_id = ? AND service = 'mock'",
  ).get(userId) as { sealed: string; expires_at: number | null; scope: string } | undefined;
}

/** A JSON-RPC answer: its `result` or its `error`. */
export interface RpcAnswer {
  /** The HTTP status the answer came with. */
  status: number;
  result?: Record<string, unknown>;
  error?: { code: number; message: string; data?: Record<string, unknown> };
}

/**
 * A 2025-11-25 session spoken by hand (no SDK client in between, so that nothing is held back by what
 * the server announced), with the user's gateway token.
 */
export async function rawSession(url: string, token: string, capabilities: Record<string, unknown> = {}) {
  const headers = { ...JSON_HEADERS, authorization: `Bearer ${token}` };
  let nextId = 1;
  const post = async (message: Record<string, unknown>, sessionId?: string) => {
    const response = await fetch(url, {
      method: "POST",
      headers: sessionId === undefined
        ? headers
        : { ...headers, "mcp-session-id": sessionId, "mcp-protocol-version": "2025-11-25" },
      body: JSON.stringify({ jsonrpc: "2.0", ...message }),
    });
    return { response, messages: await messagesOf(response) };
  };
  const opened = await post({
    id: nextId++,
    method: "initialize",
    params: { protocolVersion: "2025-11-25", capabilities, clientInfo: { name: "raw", version: "1" } },
  });
  const sessionId = opened.response.headers.get("mcp-session-id");
  const initialized = opened.messages[0] as RpcAnswer | undefined;
  assert.ok(sessionId && initialized?.result, `initialize failed: ${JSON.stringify(opened.messages)}`);
  await post({ method: "notifications/initialized" }, sessionId);
  return {
    /** What the server announced. */
    capabilities: initialized.result.capabilities as Record<string, unknown>,
    async request(method: string, params: Record<string, unknown> = {}): Promise<RpcAnswer> {
      const id = nextId++;
      const { response, messages } = await post({ id, method, params }, sessionId);
      const answer = messages.find((message) => message.id === id) as Omit<RpcAnswer, "status"> | undefined;
      assert.ok(answer, `no answer to ${method} (HTTP ${response.status}): ${JSON.stringify(messages)}`);
      return { status: response.status, ...answer };
    },
    async close(): Promise<void> {
      const response = await fetch(url, {
        method: "DELETE",
        headers: { authorization: `Bearer ${token}`, "mcp-session-id": sessionId },
      });
      await response.body?.cancel();
    },
  };
}

/** A plain client's first call to `backend`: the consent answer, and its link. */
export async function consentLinkOf(client: Client, backend: "stdio-tok" | "http-tok" = "stdio-tok") {
  const result = await client.callTool({ name: `${backend}__whoami`, arguments: {} });
  return linkOfToolResult(result);
}

/** Gets `user` connected to the service through a plain client's consent answer and their browser. */
export async function connectedClient(world: World, user: User, url = world.gateway.mcpUrl): Promise<Client> {
  const client = await connectClient(url, user.token, "plain");
  try {
    await connectService(world, user.browser, await consentLinkOf(client));
  } catch (error) {
    await client.close();
    throw error;
  }
  return client;
}

/**
 * Moves the user's stored token to the end of its life, as if the time had passed: the gateway's next
 * use of it must refresh it.
 */
export function makeRefreshDue(world: World, userId: string): void {
  const expiresAt = storedToken(world, userId)?.expires_at;
  assert.ok(typeof expiresAt === "number", "the service gave an expiry");
  world.gateway.gateway.store.db.prepare(
    "UPDATE service_tokens SET expires_at = ? WHERE user_id = ? AND service = 'mock'",
  ).run(Date.now(), userId);
}

/** The refresh grants the service received. */
export function refreshes(mock: MockService): Issued[] {
  return mock.issued.filter((entry) => entry.grantType === "refresh_token");
}
