/**
 * Crash safety, end to end: a real gatehouse process takes a stream of writes in parallel (registrations,
 * consents, code and client_credentials grants, refreshes, registry reloads), is killed with SIGKILL at a
 * random moment, and is restarted on the same data directory; the store must open and hold everything that
 * got a 2xx answer, and a refresh whose answer the kill swallowed must still work (the reuse interval).
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { decodeJwt } from "jose";
import { hashPassword } from "../../src/login/password.ts";
import { hashSecret } from "../../src/core/secrets.ts";
import { openStore } from "../../src/store/store.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { type GatehouseProcess, startGatehouse } from "../helpers/gatehouse_process.ts";
import { ALLOW_EVERYONE } from "../helpers/mcp_clients.ts";
import { basic, pkce, REDIRECT_URI } from "../oauth/_flow.ts";

const ROUNDS = 20;
/** The kill comes this long after a round's stream starts, at random. */
const KILL_AFTER_MS = { min: 150, max: 700 };
const ALICE = { username: "alice", password: "alice-password-for-crash-tests" } as const;
const CI = { id: "ci", secret: "ci-secret-for-crash-tests-0123456789" } as const;
const reloadClientSecret = (n: number) => `reload-secret-for-crash-tests-${n}`;

/** A refresh family as the client holds it. */
interface Family {
  readonly clientId: string;
  refreshToken: string;
  /** A refresh of `refreshToken` was in flight at a kill: it may have rotated, its answer lost. */
  uncertain: boolean;
  busy: boolean;
  /** The last round that acknowledged something of it. */
  round: number;
}

/** What got a 2xx answer, and so must survive a kill. */
class Ledger {
  /** client_id -> registration access token (RFC 7592). */
  readonly clients = new Map<string, { token: string; round: number }>();
  /** Clients alice approved: client_id -> round. */
  readonly consents = new Map<string, number>();
  readonly families: Family[] = [];
  /** Every access token answered, by jti. */
  readonly accessTokens = new Set<string>();
  /** Reload numbers whose registry was seen in effect, with their round. */
  readonly reloads = new Map<number, number>();
  /** The newest registry written to disk (numbered like the reloads). */
  reloadWritten = 0;
  /** Acknowledged writes of the current round. */
  acknowledged = 0;
  /** Answers that were neither a success nor a kill: each one is a bug. */
  readonly problems: string[] = [];
}

function registryOf(reloads: number, passwordHash: string): string {
  const clients: Record<string, unknown> = {
    [CI.id]: { secret: CI.secret, grant_types: ["client_credentials"] },
  };
  for (let n = 1; n <= reloads; n++) {
    clients[`reload-${n}`] = { secret: reloadClientSecret(n), grant_types: ["client_credentials"] };
  }
  // JSON is YAML.
  return JSON.stringify({
    gateway: { auth: "oauth", registrations_per_hour: 1_000_000, shutdown_timeout: "1s" },
    login: { users: { alice: { password_hash: passwordHash, groups: ["staff"] } } },
    clients,
    policies: [ALLOW_EVERYONE],
  });
}

/** Replaces registry.yaml whole (rename), so that no reader ever sees half of it. */
async function writeRegistry(dir: string, text: string): Promise<void> {
  const temporary = join(dir, "registry.yaml.tmp");
  await Deno.writeTextFile(temporary, text);
  await Deno.rename(temporary, join(dir, "registry.yaml"));
}

/** A free port on 127.0.0.1, kept across restarts so that the issuer and the resource stay the same. */
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** A JSON answer read whole: a body cut by the kill throws, so nothing half-read counts as acknowledged. */
async function json(response: Response): Promise<Record<string, string>> {
  const text = await response.text();
  return text ? JSON.parse(text) : {};
}

/** What Deno's fetch takes: RequestInit and the connection pool to use. */
type Init = RequestInit & { client: Deno.HttpClient };

/** A connection pool of one gatehouse process: none of its connections is tried on the next process. */
interface Target {
  readonly base: string;
  readonly http: Deno.HttpClient;
}

function tokenForm(
  target: Target,
  fields: Record<string, string>,
  headers: Record<string, string> = {},
): Init {
  return {
    client: target.http,
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded", ...headers },
    body: new URLSearchParams(fields).toString(),
  };
}

/** A GET through the target's pool. */
function pooled(target: Target): Init {
  return { client: target.http };
}

/** A form post, as a browser submits one. */
function form(target: Target, fields: Record<string, string>): Init {
  return {
    client: target.http,
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams(fields).toString(),
  };
}

function authorizeUrl(base: string, clientId: string, challenge: string): string {
  return `${base}/authorize?${new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT_URI,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state: "s",
  })}`;
}

/** The stream of one round: workers in parallel until the process dies. */
class Stream {
  /** Set just before the SIGKILL: from then on a failed request is the kill's doing, not a bug. */
  killed = false;
  readonly #target: Target;
  readonly #ledger: Ledger;
  readonly #round: number;
  readonly #browser: ScriptedBrowser;
  readonly #reload: () => Promise<void>;

  constructor(
    target: Target,
    ledger: Ledger,
    round: number,
    browser: ScriptedBrowser,
    reload: () => Promise<void>,
  ) {
    this.#target = target;
    this.#ledger = ledger;
    this.#round = round;
    this.#browser = browser;
    this.#reload = reload;
  }

  /** Runs the workers; resolves when every one has stopped on the kill. */
  run(): Promise<void> {
    const workers = [
      this.#loop(() => this.#signUp()),
      this.#loop(() => this.#signUp()),
      this.#loop(async () => void await this.#register()),
      this.#loop(() => this.#clientCredentials()),
      this.#loop(() => this.#refresh()),
      this.#loop(() => this.#refresh()),
      this.#loop(() => this.#reload()),
    ];
    return Promise.all(workers).then(() => {});
  }

  async #loop(step: () => Promise<void>): Promise<void> {
    while (true) {
      try {
        await step();
      } catch (error) {
        if (!this.killed) this.#ledger.problems.push(`round ${this.#round}: ${String(error)}`);
        return;
      }
    }
  }

  #unexpected(what: string, status: number, body: unknown): void {
    this.#ledger.problems.push(`round ${this.#round}: ${what} answered ${status} ${JSON.stringify(body)}`);
  }

  /** RFC 7591 registration of a public client; returns its id once acknowledged. */
  async #register(): Promise<string | undefined> {
    const response = await fetch(`${this.#target.base}/register`, {
      client: this.#target.http,
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        client_name: "Crash client",
        redirect_uris: [REDIRECT_URI],
        token_endpoint_auth_method: "none",
      }),
    });
    const body = await json(response);
    if (response.status !== 201) {
      this.#unexpected("POST /register", response.status, body);
      return undefined;
    }
    this.#ledger.clients.set(body.client_id!, { token: body.registration_access_token!, round: this.#round });
    this.#ledger.acknowledged++;
    return body.client_id;
  }

  /** Registers, approves (a consent and a code), and exchanges the code (a refresh family). */
  async #signUp(): Promise<void> {
    const clientId = await this.#register();
    if (!clientId) return;
    const { verifier, challenge } = await pkce();
    const page = await this.#browser.fetch(
      authorizeUrl(this.#target.base, clientId, challenge),
      pooled(this.#target),
    );
    const html = await page.text();
    if (page.status !== 200 || !html.includes('action="/authorize/consent"')) {
      return this.#unexpected("GET /authorize (the consent page)", page.status, html.slice(0, 200));
    }
    const approved = await this.#browser.fetch(
      `${this.#target.base}/authorize/consent`,
      form(this.#target, { ...formFields(html), decision: "allow" }),
    );
    await approved.text();
    const code = approved.status === 303
      ? new URL(approved.headers.get("location")!).searchParams.get("code")
      : null;
    if (!code) {
      return this.#unexpected("POST /authorize/consent", approved.status, approved.headers.get("location"));
    }
    this.#ledger.consents.set(clientId, this.#round);
    this.#ledger.acknowledged++;
    const response = await fetch(
      `${this.#target.base}/token`,
      tokenForm(this.#target, {
        grant_type: "authorization_code",
        client_id: clientId,
        code,
        code_verifier: verifier,
        redirect_uri: REDIRECT_URI,
      }),
    );
    const body = await json(response);
    if (response.status !== 200) return this.#unexpected("the code exchange", response.status, body);
    this.#ledger.accessTokens.add(decodeJwt(body.access_token!).jti!);
    this.#ledger.families.push({
      clientId,
      refreshToken: body.refresh_token!,
      uncertain: false,
      busy: false,
      round: this.#round,
    });
    this.#ledger.acknowledged++;
  }

  async #clientCredentials(): Promise<void> {
    const response = await fetch(
      `${this.#target.base}/token`,
      tokenForm(this.#target, { grant_type: "client_credentials" }, basic(CI.id, CI.secret)),
    );
    const body = await json(response);
    if (response.status !== 200) return this.#unexpected("client_credentials", response.status, body);
    this.#ledger.accessTokens.add(decodeJwt(body.access_token!).jti!);
    this.#ledger.acknowledged++;
  }

  /** Rotates a family no other worker holds; a refresh cut by the kill leaves it uncertain. */
  async #refresh(): Promise<void> {
    const family = this.#ledger.families.find((candidate) => !candidate.busy && !candidate.uncertain);
    if (!family) {
      await this.#clientCredentials();
      return;
    }
    family.busy = true;
    try {
      const answer = await refresh(this.#target, family);
      if (answer.status !== 200) return this.#unexpected("a refresh", answer.status, answer.body);
      this.#ledger.acknowledged++;
    } catch (error) {
      family.uncertain = true;
      throw error;
    } finally {
      family.busy = false;
    }
    // Move it to the back, so that the workers go round every family.
    this.#ledger.families.splice(this.#ledger.families.indexOf(family), 1);
    this.#ledger.families.push(family);
  }
}

/** The refresh grant for `family`; on a 200 the family moves on to the new token. */
async function refresh(
  target: Target,
  family: Family,
): Promise<{ status: number; body: Record<string, string> }> {
  const response = await fetch(
    `${target.base}/token`,
    tokenForm(target, {
      grant_type: "refresh_token",
      client_id: family.clientId,
      refresh_token: family.refreshToken,
    }),
  );
  const body = await json(response);
  if (response.status === 200) {
    family.refreshToken = body.refresh_token!;
    family.uncertain = false;
  }
  return { status: response.status, body };
}

/** Opens the store of the killed process and checks that every acknowledged write is in it. */
async function checkStore(dataDir: string, ledger: Ledger, round: number): Promise<void> {
  const store = openStore(dataDir);
  try {
    const { db } = store;
    const integrity = db.prepare("PRAGMA integrity_check").get() as { integrity_check: string };
    assert.equal(integrity.integrity_check, "ok", `round ${round}: the store is intact`);
    const client = db.prepare("SELECT registration_token_hash FROM oauth_clients WHERE client_id = ?");
    for (const [clientId, { token }] of ledger.clients) {
      const row = client.get(clientId) as { registration_token_hash: string } | undefined;
      assert.equal(
        row?.registration_token_hash,
        await hashSecret(token),
        `round ${round}: client ${clientId}`,
      );
    }
    const consent = db.prepare("SELECT 1 FROM consents WHERE user_id = 'alice' AND client_id = ?");
    for (const clientId of ledger.consents.keys()) {
      assert.ok(consent.get(clientId), `round ${round}: the consent to ${clientId}`);
    }
    const refreshToken = db.prepare("SELECT used_at, revoked_at FROM refresh_tokens WHERE token_hash = ?");
    for (const family of ledger.families) {
      const row = refreshToken.get(await hashSecret(family.refreshToken)) as
        | { used_at: number | null; revoked_at: number | null }
        | undefined;
      assert.ok(row, `round ${round}: the refresh token of ${family.clientId}`);
      assert.equal(row.revoked_at, null, `round ${round}: the refresh token of ${family.clientId} is live`);
      // One whose refresh was cut by the kill may have rotated; its answer was lost.
      if (!family.uncertain) assert.equal(row.used_at, null, `round ${round}: ${family.clientId} unused`);
    }
    const access = db.prepare(
      "SELECT (SELECT count(*) FROM access_token_grants WHERE jti = :jti) AS granted, (SELECT count(*) FROM revoked_access_tokens WHERE jti = :jti) AS revoked",
    );
    for (const jti of ledger.accessTokens) {
      const row = access.get({ jti }) as { granted: number; revoked: number };
      assert.deepEqual({ ...row }, { granted: 1, revoked: 0 }, `round ${round}: access token ${jti}`);
    }
  } finally {
    store.close();
  }
}

/** Through the restarted gateway: what the round acknowledged works, and the newest registry serves. */
async function checkServed(
  target: Target,
  ledger: Ledger,
  round: number,
  browser: ScriptedBrowser,
): Promise<void> {
  for (const [clientId, { token, round: acknowledgedIn }] of ledger.clients) {
    if (acknowledgedIn !== round) continue;
    const response = await fetch(`${target.base}/register/${clientId}`, {
      client: target.http,
      headers: { authorization: `Bearer ${token}` },
    });
    const body = await json(response);
    assert.equal(response.status, 200, `round ${round}: GET /register/${clientId}: ${JSON.stringify(body)}`);
    assert.equal(body.client_id, clientId);
  }
  for (const [clientId, acknowledgedIn] of ledger.consents) {
    if (acknowledgedIn !== round) continue;
    // The browser session and the consent are remembered: straight back to the client with a code.
    const response = await browser.fetch(
      authorizeUrl(target.base, clientId, (await pkce()).challenge),
      pooled(target),
    );
    await response.body?.cancel();
    assert.equal(response.status, 303, `round ${round}: /authorize for ${clientId} asks again`);
    assert.ok(new URL(response.headers.get("location")!).searchParams.get("code"));
  }
  for (const family of ledger.families) {
    if (family.round !== round && !family.uncertain) continue;
    const cut = family.uncertain ? " (its last refresh was cut by the kill)" : "";
    const answer = await refresh(target, family);
    assert.equal(
      answer.status,
      200,
      `round ${round}: refreshing ${family.clientId}${cut}: ${JSON.stringify(answer.body)}`,
    );
    family.round = round;
    ledger.accessTokens.add(decodeJwt(answer.body.access_token!).jti!);
  }
  // Every reload acknowledged in the round, and the newest registry written (acknowledged or not).
  const reloads = [...ledger.reloads].filter(([, acknowledgedIn]) => acknowledgedIn === round).map(([n]) =>
    n
  );
  if (ledger.reloadWritten > 0) reloads.push(ledger.reloadWritten);
  for (const n of new Set(reloads)) {
    const response = await fetch(
      `${target.base}/token`,
      tokenForm(target, { grant_type: "client_credentials" }, basic(`reload-${n}`, reloadClientSecret(n))),
    );
    const body = await json(response);
    assert.equal(response.status, 200, `round ${round}: the client of reload ${n}: ${JSON.stringify(body)}`);
    ledger.accessTokens.add(decodeJwt(body.access_token!).jti!);
  }
}

/** Signs alice in once; her browser session is an acknowledged write too. */
async function signIn(target: Target, browser: ScriptedBrowser): Promise<void> {
  const register = await fetch(`${target.base}/register`, {
    client: target.http,
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ redirect_uris: [REDIRECT_URI], token_endpoint_auth_method: "none" }),
  });
  const clientId = (await json(register)).client_id!;
  const page = await browser.fetch(
    authorizeUrl(target.base, clientId, (await pkce()).challenge),
    pooled(target),
  );
  const html = await page.text();
  assert.ok(html.includes('action="/login"'), "the sign-in page");
  const signedIn = await browser.fetch(
    `${target.base}/login`,
    form(target, { ...formFields(html), ...ALICE }),
  );
  await signedIn.body?.cancel();
  assert.equal(signedIn.status, 303, "alice signs in");
}

/** Waits until registry `n` serves: its client gets a token (an acknowledged write as well). */
async function awaitReload(
  running: GatehouseProcess,
  target: Target,
  n: number,
  reloadedBefore: number,
): Promise<Record<string, string>> {
  // SIGHUP and the file watcher each reload; the new client works once one of them has read the new file.
  for (let reloaded = reloadedBefore + 1; reloaded <= reloadedBefore + 3; reloaded++) {
    let seen = 0;
    await running.waitForLine((line) => line.includes('"registry reloaded"') && ++seen >= reloaded, 5_000);
    const response = await fetch(
      `${target.base}/token`,
      tokenForm(target, { grant_type: "client_credentials" }, basic(`reload-${n}`, reloadClientSecret(n))),
    );
    const body = await json(response);
    if (response.status === 200) return body;
  }
  throw new Error(`registry ${n} is not in effect after three reloads`);
}

Deno.test("gatehouse serve keeps every acknowledged write through 20 SIGKILLs mid-stream", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-crash-" });
  const dataDir = join(dir, "data");
  const passwordHash = await hashPassword(ALICE.password);
  const args = ["--listen", `127.0.0.1:${freePort()}`, "--data", dataDir];
  await writeRegistry(dir, registryOf(0, passwordHash));
  const ledger = new Ledger();
  const browser = new ScriptedBrowser();
  const start = async () => {
    const process = await startGatehouse(args, { cwd: dir });
    return { process, target: { base: process.url, http: Deno.createHttpClient({}) } };
  };
  let running = await start();
  try {
    await signIn(running.target, browser);
    const perRound: number[] = [];
    for (let round = 1; round <= ROUNDS; round++) {
      const { process, target } = running;
      const stream: Stream = new Stream(target, ledger, round, browser, async () => {
        const n = ++ledger.reloadWritten;
        const reloadedBefore = process.lines.filter((line) => line.includes('"registry reloaded"')).length;
        await writeRegistry(dir, registryOf(n, passwordHash));
        if (stream.killed) throw new Error("killed");
        process.child.kill("SIGHUP");
        const body = await awaitReload(process, target, n, reloadedBefore);
        ledger.reloads.set(n, round);
        ledger.accessTokens.add(decodeJwt(body.access_token!).jti!);
        ledger.acknowledged++;
      });
      ledger.acknowledged = 0;
      const streaming = stream.run();
      const killAfterMs = KILL_AFTER_MS.min + Math.random() * (KILL_AFTER_MS.max - KILL_AFTER_MS.min);
      await new Promise((resolve) => setTimeout(resolve, killAfterMs)); // the random moment of the kill
      stream.killed = true;
      const status = await process.stop("SIGKILL");
      assert.equal(status.signal, "SIGKILL", `round ${round}: killed, not exited by itself`);
      await streaming;
      target.http.close();
      assert.deepEqual(ledger.problems, [], `round ${round}: every request succeeded until the kill`);
      perRound.push(ledger.acknowledged);

      await checkStore(dataDir, ledger, round);
      running = await start();
      await checkServed(running.target, ledger, round, browser);
    }
    assert.ok(perRound.every((count) => count > 0), `each round acknowledged writes: ${perRound.join(", ")}`);
    assert.ok(ledger.families.length > 0 && ledger.consents.size > 0 && ledger.reloads.size > 0);
  } finally {
    await running.process.stop("SIGKILL");
    try {
      running.target.http.close();
    } catch {
      // Already closed after its process was killed.
    }
    await Deno.remove(dir, { recursive: true });
  }
});
