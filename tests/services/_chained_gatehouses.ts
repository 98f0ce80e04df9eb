/**
 * Two Gatehouses chained (issue 18), for the end-to-end tests of OAuth-protected remote backends:
 * Gatehouse B (`auth: oauth`, its own users alice and bob, a stdio backend `who` that answers with the B
 * user who called) behind a wiretap that records every request reaching it; Gatehouse A (`auth: oauth`,
 * users alice and bob with other passwords) whose backend `remote` is B's /mcp with `oauth: true`; and a
 * browser with one cookie jar per site, as when A and B have host names of their own. Not a test file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { hashPassword } from "../../src/login/password.ts";
import type { MetadataDocumentFetcher } from "../../src/oauth/client_metadata_document.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import { ALLOW_EVERYONE, startTestGateway, type TestGateway, within } from "../helpers/mcp_clients.ts";
import { signedInTokens } from "../oauth/_flow.ts";
import { ALICE, BOB, type Credentials } from "./_world.ts";

export { ALICE, BOB };

/** The same people's accounts at B: other passwords, so that signing in at B is signing in as B's user. */
export const ALICE_AT_B = { username: "alice", password: "alice-signs-in-at-b" } as const;
export const BOB_AT_B = { username: "bob", password: "bob-signs-in-at-b" } as const;

/** Every test's bound: a flow that hangs must fail its test, not the suite. */
export const CHAIN_BOUND_MS = 45_000;
/** A's backend, and the name its users' tokens are kept under. */
export const BACKEND = "remote";
export const SERVICE = `backend:${BACKEND}`;
/** B's `who` backend's tool as A's /mcp names it: A's prefix, then B's. */
export const WHOAMI = `${BACKEND}__who__whoami`;
/** The placeholder tool A's /mcp lists for the backend before its user connected (prefixed, like all tools). */
export const PLACEHOLDER_TOOL = `${BACKEND}__gatehouse_connect_backend_${BACKEND}`;

const FIXTURE = join(ROOT, "tests", "fixtures", "token_echo_server.ts");
const CONFIG = join(ROOT, "deno.json");

const hashes = new Map<string, Promise<string>>();
/** argon2id hashes, made once per password per test module (each takes ~150 ms). */
export function hashOnce(password: string): Promise<string> {
  let hash = hashes.get(password);
  if (hash === undefined) {
    hash = hashPassword(password);
    hashes.set(password, hash);
  }
  return hash;
}

/** One request that reached B through the wiretap. */
export interface Tapped {
  readonly method: string;
  readonly path: string;
  /** The Authorization header it carried, if any. */
  readonly authorization: string | null;
  readonly status: number;
}

/** A relay on 127.0.0.1 in front of B that records every request; B's public URL is the tap's. */
export interface Wiretap {
  readonly origin: string;
  readonly requests: Tapped[];
  /** Where requests go (B's listener); set once B listens. */
  target: string | undefined;
  close(): Promise<void>;
}

export function startWiretap(): Wiretap {
  const requests: Tapped[] = [];
  const tap: Wiretap = {
    origin: "",
    requests,
    target: undefined,
    close: () => server.shutdown(),
  };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    if (tap.target === undefined) return new Response("not ready", { status: 503 });
    const body = request.method === "GET" || request.method === "HEAD"
      ? undefined
      : await request.arrayBuffer();
    const response = await fetch(`${tap.target}${url.pathname}${url.search}`, {
      method: request.method,
      headers: request.headers,
      body,
      redirect: "manual",
    });
    requests.push({
      method: request.method,
      path: url.pathname,
      authorization: request.headers.get("authorization"),
      status: response.status,
    });
    return new Response(response.body, { status: response.status, headers: response.headers });
  });
  Object.assign(tap, { origin: `http://127.0.0.1:${server.addr.port}` });
  return tap;
}

/** Gatehouse B, seen through its wiretap. */
export interface GatehouseB {
  readonly gateway: RunningGateway;
  /** Its directory: registry.yaml and data/. */
  readonly dir: string;
  readonly tap: Wiretap;
  /** Its public URL (the tap's origin): its issuer, and the base of its resource. */
  readonly base: string;
  readonly mcpUrl: string;
  /** Every log line it wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** The client ID metadata documents it fetched, by URL. */
  readonly fetchedDocuments: string[];
  close(): Promise<void>;
}

export interface BOptions {
  /** `gateway.registration` of B (default open). */
  readonly registration?: "open" | "off";
  /**
   * Where B fetches client ID metadata documents from (A's listener), whatever host their URL names; a
   * getter, as A starts after B. Undefined: every document is "not found".
   */
  readonly documentOrigin?: () => string | undefined;
}

export async function startGatehouseB(options: BOptions = {}): Promise<GatehouseB> {
  const tap = startWiretap();
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-b-" });
  const registry = {
    gateway: {
      auth: "oauth",
      public_url: tap.origin,
      shutdown_timeout: "1s",
      ...(options.registration === undefined ? {} : { registration: options.registration }),
    },
    login: {
      users: {
        alice: { password_hash: await hashOnce(ALICE_AT_B.password), groups: [] },
        bob: { password_hash: await hashOnce(BOB_AT_B.password), groups: [] },
      },
    },
    backends: {
      who: {
        stdio: {
          command: Deno.execPath(),
          args: ["run", "-A", `--config=${CONFIG}`, FIXTURE, "stdio"],
          env: { SERVICE_TOKEN: "${user:id}" },
        },
        isolation: "user",
      },
    },
    policies: [ALLOW_EVERYONE],
  };
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry, null, 2));
  const fetchedDocuments: string[] = [];
  const fetcher: MetadataDocumentFetcher = {
    allowPrivateAddresses: true,
    resolve: () => Promise.resolve(["127.0.0.1"]),
    fetch(url, _address, init) {
      fetchedDocuments.push(url);
      const origin = options.documentOrigin?.();
      if (origin === undefined) return Promise.resolve(new Response("not found", { status: 404 }));
      return fetch(`${origin}${new URL(url).pathname}`, { ...init, redirect: "manual" });
    },
  };
  const logs: Record<string, unknown>[] = [];
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({
      registryPath: join(dir, "registry.yaml"),
      listen: "127.0.0.1:0",
      dataDir: join(dir, "data"),
      log: createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) }),
      watch: false,
      clientMetadataFetcher: fetcher,
    });
  } catch (error) {
    await tap.close();
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  tap.target = gateway.url;
  return {
    gateway,
    dir,
    tap,
    base: tap.origin,
    mcpUrl: `${tap.origin}/mcp`,
    logs,
    fetchedDocuments,
    async close() {
      try {
        await within(8_000, gateway.shutdown(), "gateway B shutdown");
      } finally {
        await tap.close();
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

/** A's registry: users alice and bob (A's passwords), and `backend` (B's /mcp with `oauth: true`). */
export async function registryOfA(
  backend: Record<string, unknown>,
  gateway: Record<string, unknown> = {},
): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s", ...gateway },
    login: {
      users: {
        alice: { password_hash: await hashOnce(ALICE.password), groups: [] },
        bob: { password_hash: await hashOnce(BOB.password), groups: [] },
      },
    },
    backends: { [BACKEND]: backend },
    policies: [ALLOW_EVERYONE],
  };
}

/**
 * A browser with a cookie jar per site (origin), as when A and B have host names of their own; `aliases`
 * maps a public origin (say, A's https public URL) to the listener that serves it, as DNS and a reverse
 * proxy would: the two are one site, with one jar.
 */
export class SitesBrowser extends ScriptedBrowser {
  readonly #jars = new Map<string, ScriptedBrowser>();
  readonly #aliases: ReadonlyMap<string, string>;
  /** The public origin of each listener that has one. */
  readonly #sites: ReadonlyMap<string, string>;

  constructor(aliases: Record<string, string> = {}) {
    super();
    this.#aliases = new Map(Object.entries(aliases));
    this.#sites = new Map(Object.entries(aliases).map(([site, listener]) => [listener, site]));
  }

  override fetch(url: string, init: RequestInit = {}): Promise<Response> {
    const parsed = new URL(url);
    const site = this.#sites.get(parsed.origin) ?? parsed.origin;
    let jar = this.#jars.get(site);
    if (jar === undefined) {
      jar = new ScriptedBrowser();
      this.#jars.set(site, jar);
    }
    const served = this.#aliases.get(parsed.origin);
    return jar.fetch(served === undefined ? url : `${served}${parsed.pathname}${parsed.search}`, init);
  }
}

/** A user of A: their browser (signed in at A) and an A access token for /mcp. */
export interface UserOfA {
  readonly credentials: Credentials;
  readonly browser: SitesBrowser;
  readonly token: string;
}

/** Signs `credentials` in at A (on A's listener `base`) with a fresh browser; returns the user. */
export async function signInAtA(
  base: string,
  credentials: Credentials,
  aliases: Record<string, string> = {},
): Promise<UserOfA> {
  const browser = new SitesBrowser(aliases);
  const { tokens } = await signedInTokens(base, { browser, credentials });
  return { credentials, browser, token: tokens.access_token };
}

/** What following a consent link went through. */
export interface ConsentJourney {
  /** The query of the authorization request A sent the browser to at B. */
  readonly authorization: URLSearchParams;
  /** Whether B showed its sign-in page (the browser had no session at B). */
  readonly signInAsked: boolean;
  /** Whether B showed its consent page (it remembers an approval per user and client). */
  readonly consentAsked: boolean;
  /** The page A showed at the end. */
  readonly page: string;
}

/** The location of a redirect (resolved against the request's URL), after checking the status. */
async function redirectOf(response: Response, status: number, from: string): Promise<string> {
  const body = await response.text();
  assert.equal(response.status, status, `${from}: ${body.slice(0, 500)}`);
  return new URL(response.headers.get("location")!, from).href;
}

/**
 * Opens the consent link `link` in the user's browser (signed in at A) and goes all the way: A sends the
 * browser to B's /authorize; B shows its own sign-in page unless the browser has a session at B, where the
 * user signs in with `atB`; B's consent page, unless B remembers the user's approval of A; B sends the
 * browser back to A's callback (under `aPublicBase`), which must say "Connected". Asserts every hop.
 */
export async function connectThroughB(
  browser: SitesBrowser,
  link: string,
  b: GatehouseB,
  aPublicBase: string,
  atB: Credentials,
): Promise<ConsentJourney> {
  const toB = await redirectOf(await browser.fetch(link), 303, link);
  assert.ok(toB.startsWith(`${b.base}/authorize?`), `A sends the browser to B's /authorize: ${toB}`);
  const authorization = new URL(toB).searchParams;

  let answer = await browser.fetch(toB);
  let page = answer.status === 200 ? await answer.text() : "";
  // B's own sign-in page, where the user signs in as B's user.
  const signInAsked = page.includes('action="/login"');
  if (signInAsked) {
    const signedIn = await browser.post(`${b.base}/login`, { ...formFields(page), ...atB });
    const afterSignIn = await redirectOf(signedIn, 303, `${b.base}/login`);
    assert.ok(afterSignIn.startsWith(`${b.base}/authorize?`), `back to B's /authorize: ${afterSignIn}`);
    answer = await browser.fetch(afterSignIn);
    page = answer.status === 200 ? await answer.text() : "";
  }
  // B's consent page: A, as B's client, asks for B's /mcp.
  const consentAsked = answer.status === 200;
  if (consentAsked) {
    assert.ok(page.includes('action="/authorize/consent"'), `B's consent page: ${page.slice(0, 500)}`);
    answer = await browser.post(`${b.base}/authorize/consent`, { ...formFields(page), decision: "allow" });
  }
  const callback = await redirectOf(answer, 303, `${b.base}/authorize`);
  assert.ok(
    callback.startsWith(`${aPublicBase}/connect/${SERVICE}/callback?`),
    `B sends the browser back to A's callback: ${callback}`,
  );
  const back = new URL(callback).searchParams;
  assert.ok(back.get("code"), "with a code");
  assert.equal(back.get("iss"), b.base, "and B's issuer (RFC 9207)");

  const done = await browser.fetch(callback);
  const donePage = await done.text();
  assert.equal(done.status, 200, donePage);
  assert.match(donePage, /Connected/);
  return { authorization, signInAsked, consentAsked, page: donePage };
}

/** The two gateways of a test. */
export interface Chain {
  readonly b: GatehouseB;
  readonly a: TestGateway;
  /** A's listener. */
  readonly aBase: string;
  /** A's public URL (its listener unless a test gives it another). */
  readonly aPublic: string;
  /** Maps A's public origin to its listener, for browsers (empty when they are the same). */
  readonly aliases: Record<string, string>;
}

export interface ChainOptions {
  readonly b?: Omit<BOptions, "documentOrigin">;
  /** Settings of A's `gateway` (say, an https `public_url`). */
  readonly aGateway?: Record<string, unknown>;
  /** More settings of A's backend `remote` (say, `protocol: legacy`). */
  readonly backend?: Record<string, unknown>;
}

/** Starts B then A, runs `work` bounded, stops both. */
export async function withChain(work: (chain: Chain) => Promise<void>, options: ChainOptions = {}) {
  let aListener: string | undefined;
  const b = await startGatehouseB({ ...options.b, documentOrigin: () => aListener });
  let a: TestGateway | undefined;
  try {
    a = await startTestGateway(
      await registryOfA(
        { http: { url: b.mcpUrl, oauth: true }, ...options.backend },
        options.aGateway,
      ),
    );
    aListener = a.gateway.url;
    const aPublic = a.gateway.publicUrl().replace(/\/$/, "");
    const aliases: Record<string, string> = aPublic === a.gateway.url ? {} : { [aPublic]: a.gateway.url };
    const chain = { b, a, aBase: a.gateway.url, aPublic, aliases };
    await within(CHAIN_BOUND_MS, work(chain), "the test");
  } finally {
    try {
      await a?.close();
    } finally {
      await b.close();
    }
  }
}

/** The requests to B's /mcp that carried a token, with the JWT claims of each. */
export function tokensSentToB(b: GatehouseB): { status: number; claims: Record<string, unknown> }[] {
  return b.tap.requests
    .filter((request) => request.path === "/mcp" && request.authorization !== null)
    .map((request) => {
      const match = /^Bearer (.+)$/.exec(request.authorization!);
      assert.ok(match, `a bearer token: ${request.authorization!.slice(0, 12)}…`);
      return { status: request.status, claims: decodeJwt(match[1]!) as Record<string, unknown> };
    });
}

/**
 * No token A issued reached B, and every token that did was B's own for its /mcp, of `users` only;
 * `refusals` is how many of those B answered with 401.
 */
export function assertOnlyBTokensReachedB(
  chain: Chain,
  aTokens: readonly string[],
  users: readonly string[],
  refusals = 0,
): void {
  for (const request of chain.b.tap.requests) {
    for (const token of aTokens) {
      assert.ok(!(request.authorization ?? "").includes(token), `A's own token reached B (${request.path})`);
    }
  }
  const sent = tokensSentToB(chain.b);
  assert.ok(sent.length > 0, "B's /mcp was called with tokens");
  for (const { claims } of sent) {
    assert.equal(claims.iss, chain.b.base, "B's own token");
    assert.equal(claims.aud, chain.b.mcpUrl, "for B's /mcp");
    assert.ok(users.includes(String(claims.sub)), `of a user of this test: ${claims.sub}`);
  }
  assert.equal(sent.filter(({ status }) => status === 401).length, refusals, "B's refusals of tokens");
}

/** The user's stored token row for `backend:remote` at A (sealed), if any. */
export function storedAtA(a: TestGateway, userId: string): { sealed: string; scope: string } | undefined {
  return a.gateway.store.db.prepare(
    "SELECT sealed, scope FROM service_tokens WHERE user_id = ? AND service = ?",
  ).get(userId, SERVICE) as { sealed: string; scope: string } | undefined;
}
