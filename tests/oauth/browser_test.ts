/**
 * The sign-in and consent pages in a real browser: Debian's Chromium, driven by Playwright, against an
 * in-process gateway on 127.0.0.1, with a loopback server as the client's redirect URI.
 *
 * Set GATEHOUSE_SCREENSHOTS to a folder to keep the screenshots of the login and consent pages.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page, Response as PageResponse } from "npm:playwright-core@1.65.1";
import { hashPassword } from "../../src/login/password.ts";
import {
  assertFitsViewport,
  type CallbackServer,
  computedStyle,
  launchChromium,
  type LocalBrowser,
  pkcePair,
  startCallbackServer,
  VIEWPORTS,
} from "../helpers/browser.ts";
import { JSON_HEADERS, startTestGateway, type TestGateway } from "../helpers/mcp_clients.ts";

const USERNAME = "alice";
const PASSWORD = "correct horse battery staple";

interface Fixture {
  gateway: TestGateway;
  /** `http://127.0.0.1:PORT` of the gateway (its issuer). */
  origin: string;
  callback: CallbackServer;
  browser: LocalBrowser;
  page: Page;
  screenshots: string;
}

/** Runs `test` against a fresh gateway, callback server and browser, and stops all three after it. */
async function withBrowser(test: (fixture: Fixture) => Promise<void>): Promise<void> {
  const kept = Deno.env.get("GATEHOUSE_SCREENSHOTS");
  const screenshots = kept ?? await Deno.makeTempDir({ prefix: "gatehouse-screenshots-" });
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: { users: { [USERNAME]: { password_hash: await hashPassword(PASSWORD), groups: ["staff"] } } },
    backends: {},
  });
  let callback: CallbackServer | undefined;
  let browser: LocalBrowser | undefined;
  try {
    callback = startCallbackServer();
    browser = await launchChromium();
    const page = await browser.newPage();
    const origin = new URL(gateway.mcpUrl).origin;
    await test({ gateway, origin, callback, browser, page, screenshots });
    assert.deepEqual(browser.offLoopbackRequests, [], "the browser only spoke to 127.0.0.1");
  } catch (error) {
    if (error instanceof Error && browser && browser.consoleMessages.length > 0) {
      error.message += `\nbrowser console:\n${browser.consoleMessages.join("\n")}`;
    }
    throw error;
  } finally {
    await browser?.close().catch(() => {});
    await callback?.close().catch(() => {});
    await gateway.close();
    if (!kept) await Deno.remove(screenshots, { recursive: true });
  }
}

/** Registers a public client (RFC 7591) whose redirect URI is the callback server's. */
async function registerClient(fixture: Fixture, name: string): Promise<string> {
  const response = await fetch(`${fixture.origin}/register`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      client_name: name,
      redirect_uris: [fixture.callback.redirectUri],
      grant_types: ["authorization_code"],
      response_types: ["code"],
      token_endpoint_auth_method: "none",
    }),
  });
  const body = await response.json();
  assert.equal(response.status, 201, JSON.stringify(body));
  return body.client_id;
}

interface AuthorizationAttempt {
  url: string;
  state: string;
  verifier: string;
}

/** An authorization request (RFC 6749 §4.1.1) with PKCE S256, a fresh state and the gateway's /mcp. */
async function authorizationRequest(fixture: Fixture, clientId: string): Promise<AuthorizationAttempt> {
  const { verifier, challenge } = await pkcePair();
  const state = crypto.randomUUID();
  const query = new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: fixture.callback.redirectUri,
    code_challenge: challenge,
    code_challenge_method: "S256",
    state,
    scope: "mcp",
    resource: fixture.gateway.mcpUrl,
  });
  return { url: `${fixture.origin}/authorize?${query}`, state, verifier };
}

/** Waits for the browser to arrive at the client's redirect URI and returns that URL. */
async function arrivalAtClient(fixture: Fixture, page: Page): Promise<URL> {
  await page.waitForURL((url) => url.href.startsWith(`${fixture.callback.redirectUri}?`));
  return new URL(page.url());
}

/** Fills the login form and submits it; resolves with the response to the POST /login. */
async function signIn(page: Page, password: string): Promise<PageResponse> {
  await page.getByLabel("User name").fill(USERNAME);
  await page.getByLabel("Password").fill(password);
  const [response] = await Promise.all([
    page.waitForResponse((r) => new URL(r.url()).pathname === "/login" && r.request().method() === "POST"),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  return response;
}

/** The CSP directives of a response, by name. */
function cspOf(response: PageResponse): Map<string, string> {
  const header = response.headers()["content-security-policy"] ?? "";
  return new Map(
    header.split(";").map((part) => part.trim()).filter(Boolean).map((directive) => {
      const [name, ...values] = directive.split(/\s+/);
      return [name!, values.join(" ")];
    }),
  );
}

function assertUnframeable(response: PageResponse, what: string): void {
  assert.equal(cspOf(response).get("frame-ancestors"), "'none'", `${what}: CSP frame-ancestors`);
  assert.equal(response.headers()["x-frame-options"], "DENY", `${what}: X-Frame-Options`);
}

/** Exchanges a code at /token as a public client (RFC 6749 §4.1.3, RFC 7636 §4.5). */
async function exchangeCode(
  fixture: Fixture,
  clientId: string,
  code: string,
  verifier: string,
): Promise<Response> {
  return await fetch(`${fixture.origin}/token`, {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: fixture.callback.redirectUri,
      client_id: clientId,
      code_verifier: verifier,
      resource: fixture.gateway.mcpUrl,
    }),
  });
}

Deno.test("/authorize in Chromium: sign-in, a wrong password, consent, then a code the client exchanges", async () => {
  await withBrowser(async (fixture) => {
    const { page, origin } = fixture;
    const clientId = await registerClient(fixture, "Browser Test App");
    const attempt = await authorizationRequest(fixture, clientId);

    // The login page, served unframeable.
    const loginResponse = await page.goto(attempt.url);
    assert.ok(loginResponse);
    assert.equal(loginResponse.status(), 200);
    assertUnframeable(loginResponse, "login page");
    assert.equal(await page.title(), "Sign in · Gatehouse");
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Sign in to Gatehouse");
    assert.ok(await page.getByLabel("User name").isVisible());
    assert.equal(await page.getByLabel("Password").getAttribute("type"), "password");
    await page.screenshot({ path: join(fixture.screenshots, "login.png"), fullPage: true });

    // A wrong password: 401, the same form again with an error and the user name kept.
    const refused = await signIn(page, "not the password");
    assert.equal(refused.status(), 401);
    assertUnframeable(refused, "login page after a wrong password");
    await page.waitForURL(`${origin}/login`);
    assert.equal(await page.getByRole("alert").textContent(), "Wrong user name or password.");
    assert.equal(await page.getByLabel("User name").inputValue(), USERNAME);
    assert.equal(await page.getByLabel("Password").inputValue(), "");
    await page.screenshot({ path: join(fixture.screenshots, "login-error.png"), fullPage: true });

    // The right one: 303 back to /authorize, which asks for consent.
    const consentResponse = page.waitForResponse((r) =>
      new URL(r.url()).pathname === "/authorize" && r.request().method() === "GET"
    );
    const accepted = await signIn(page, PASSWORD);
    assert.equal(accepted.status(), 303);
    const consent = await consentResponse;
    assert.equal(consent.status(), 200);
    assertUnframeable(consent, "consent page");
    // The consent form may post back here and its 303 may lead to the client, nowhere else.
    assert.equal(cspOf(consent).get("form-action"), `'self' ${fixture.callback.origin}`);
    await page.waitForLoadState();
    assert.equal(await page.title(), "Allow access · Gatehouse");
    assert.equal(await page.getByRole("heading", { level: 1 }).textContent(), "Allow Browser Test App?");
    const details = await page.locator("dl").innerText();
    assert.match(details, /Application\s+Browser Test App/);
    assert.match(
      details,
      new RegExp(`Returns to\\s+${RegExp.escape(new URL(fixture.callback.origin).host)}`),
    );
    assert.match(details, new RegExp(`Wants to use\\s+${RegExp.escape(fixture.gateway.mcpUrl)}`));
    assert.match(await page.locator("main").innerText(), new RegExp(`Signed in as ${USERNAME}`));
    await page.screenshot({ path: join(fixture.screenshots, "consent.png"), fullPage: true });

    // Allow: back at the client with code, state and iss (RFC 9207).
    await page.getByRole("button", { name: "Allow" }).click();
    const arrived = await arrivalAtClient(fixture, page);
    assert.equal(arrived.searchParams.get("state"), attempt.state);
    assert.equal(arrived.searchParams.get("iss"), origin);
    const code = arrived.searchParams.get("code");
    assert.ok(code, "a code");
    assert.equal(fixture.callback.callbacks.length, 1);

    // The client exchanges it, with its PKCE verifier, for a token the gateway accepts at /mcp.
    const tokenResponse = await exchangeCode(fixture, clientId, code, attempt.verifier);
    const tokens = await tokenResponse.json();
    assert.equal(tokenResponse.status, 200, JSON.stringify(tokens));
    assert.equal(tokens.token_type, "Bearer");
    assert.ok(tokens.access_token);
    const initialize = JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "browser-test", version: "1" },
      },
    });
    const anonymous = await fetch(fixture.gateway.mcpUrl, {
      method: "POST",
      headers: JSON_HEADERS,
      body: initialize,
    });
    await anonymous.body?.cancel();
    assert.equal(anonymous.status, 401);
    const authorized = await fetch(fixture.gateway.mcpUrl, {
      method: "POST",
      headers: { ...JSON_HEADERS, authorization: `Bearer ${tokens.access_token}` },
      body: initialize,
    });
    await authorized.body?.cancel();
    assert.equal(authorized.status, 200);

    // A code is good once (RFC 6749 §4.1.2).
    const replay = await exchangeCode(fixture, clientId, code, attempt.verifier);
    assert.equal((await replay.json()).error, "invalid_grant");
  });
});

Deno.test("/authorize in Chromium: a second authorization of an approved client skips the consent page", async () => {
  await withBrowser(async (fixture) => {
    const { page, origin } = fixture;
    const clientId = await registerClient(fixture, "Remembered App");
    const first = await authorizationRequest(fixture, clientId);
    await page.goto(first.url);
    await signIn(page, PASSWORD);
    await page.getByRole("button", { name: "Allow" }).click();
    await arrivalAtClient(fixture, page);

    const second = await authorizationRequest(fixture, clientId);
    const response = await page.goto(second.url);
    assert.ok(response);
    const arrived = new URL(page.url());
    assert.equal(`${arrived.origin}${arrived.pathname}`, fixture.callback.redirectUri);
    assert.equal(arrived.searchParams.get("state"), second.state);
    assert.equal(arrived.searchParams.get("iss"), origin);
    // Straight there: one 303 from /authorize, no page in between.
    const hop = response.request().redirectedFrom();
    assert.equal(hop && new URL(hop.url()).pathname, "/authorize");
    assert.equal(hop?.redirectedFrom(), null);
    assert.equal((await hop!.response())?.status(), 303);
    const tokens = await exchangeCode(fixture, clientId, arrived.searchParams.get("code")!, second.verifier);
    await tokens.body?.cancel();
    assert.equal(tokens.status, 200);
  });
});

Deno.test("/authorize/consent in Chromium: Deny redirects with access_denied and remembers nothing", async () => {
  await withBrowser(async (fixture) => {
    const { page, origin } = fixture;
    const clientId = await registerClient(fixture, "Denied App");
    const attempt = await authorizationRequest(fixture, clientId);
    await page.goto(attempt.url);
    await signIn(page, PASSWORD);
    await page.getByRole("button", { name: "Deny" }).click();
    const arrived = await arrivalAtClient(fixture, page);
    assert.equal(arrived.searchParams.get("error"), "access_denied");
    assert.equal(arrived.searchParams.get("state"), attempt.state);
    assert.equal(arrived.searchParams.get("iss"), origin);
    assert.equal(arrived.searchParams.get("code"), null);

    // Asked again next time.
    const again = await authorizationRequest(fixture, clientId);
    await page.goto(again.url);
    assert.equal(await page.title(), "Allow access · Gatehouse");
  });
});

// Chromium applies form-action to the redirects after a submission: POST /login -> 303 /authorize -> 303
// to the client must be allowed by the login page's CSP.
Deno.test({
  name: "/authorize in Chromium: an approved client's user who signs in again lands at the redirect URI",
}, async () => {
  await withBrowser(async (fixture) => {
    const { page, origin } = fixture;
    const clientId = await registerClient(fixture, "Returning App");
    const first = await authorizationRequest(fixture, clientId);
    await page.goto(first.url);
    await signIn(page, PASSWORD);
    await page.getByRole("button", { name: "Allow" }).click();
    await arrivalAtClient(fixture, page);

    // A new browser session (cookies gone): sign-in, then straight to the client, approval remembered.
    await fixture.browser.context.clearCookies();
    const second = await authorizationRequest(fixture, clientId);
    await page.goto(second.url);
    assert.equal(await page.title(), "Sign in · Gatehouse");
    await signIn(page, PASSWORD);
    const arrived = await arrivalAtClient(fixture, page);
    assert.equal(arrived.searchParams.get("state"), second.state);
    assert.equal(arrived.searchParams.get("iss"), origin);

    // The same from the form shown again after a wrong password.
    await fixture.browser.context.clearCookies();
    const third = await authorizationRequest(fixture, clientId);
    await page.goto(third.url);
    assert.equal((await signIn(page, "not the password")).status(), 401);
    await signIn(page, PASSWORD);
    const again = await arrivalAtClient(fixture, page);
    assert.equal(again.searchParams.get("state"), third.state);
  });
});

Deno.test("/authorize in Chromium: a page of another origin cannot show the login or consent page in a frame", async () => {
  await withBrowser(async (fixture) => {
    const { page } = fixture;
    const clientId = await registerClient(fixture, "Framed App");
    const frameHost = (src: string) =>
      `<!doctype html><title>Framer</title><iframe id="target" src="${src}" width="600" height="400"></iframe>`;

    const check = async (what: string) => {
      const attempt = await authorizationRequest(fixture, clientId);
      fixture.callback.page("/framer", frameHost(attempt.url));
      const framed = page.waitForResponse((r) => new URL(r.url()).pathname === "/authorize");
      await page.goto(`${fixture.callback.origin}/framer`);
      const response = await framed;
      assert.equal(response.status(), 200, `${what}: the gateway answered`);
      assertUnframeable(response, what);
      const frame = await (await page.locator("#target").elementHandle())?.contentFrame();
      assert.ok(frame, `${what}: the iframe is there`);
      // Chromium replaces a frame it refuses with its own error document: none of the page is there.
      assert.equal(
        frame.url(),
        "chrome-error://chromewebdata/",
        `${what}: the frame holds Chromium's error page`,
      );
      assert.equal(await frame.locator("form").count(), 0, `${what}: no form in the frame`);
      assert.equal(
        await frame.getByText("Gatehouse").count(),
        0,
        `${what}: nothing of the page in the frame`,
      );
      assert.ok(
        fixture.browser.consoleMessages.some((message) =>
          message.includes(fixture.origin) && message.includes("frame-ancestors 'none'")
        ),
        `${what}: Chromium says why`,
      );
    };

    // Signed out, the frame would hold the login page.
    await check("login page in a frame");
    // Signed in, it would hold the consent page: the clickjacking target.
    await page.goto((await authorizationRequest(fixture, clientId)).url);
    await signIn(page, PASSWORD);
    assert.equal(await page.title(), "Allow access · Gatehouse");
    await check("consent page in a frame");
    await page.screenshot({ path: join(fixture.screenshots, "framed-consent.png") });
    assert.equal(fixture.callback.callbacks.length, 0, "nothing reached the client");
  });
});

Deno.test("/authorize in Chromium: the consent page says a self-registered client's name is unverified and shows its redirect host prominently, at 1280 and 390 px", async () => {
  await withBrowser(async (fixture) => {
    const { page } = fixture;
    // A name chosen to impersonate: nothing but the page's words says it is the client's own claim.
    const clientId = await registerClient(fixture, "Gatehouse Official Admin Console");
    const host = new URL(fixture.callback.origin).host;
    await page.setViewportSize(VIEWPORTS.desktop);
    await page.goto((await authorizationRequest(fixture, clientId)).url);
    await signIn(page, PASSWORD);
    assert.equal(await page.title(), "Allow access · Gatehouse");

    const application = await page.locator("dt:text-is('Application') + dd").innerText();
    assert.match(application, /Gatehouse Official Admin Console\s+unverified name/);
    assert.match(
      await page.locator("dt:text-is('Registered') + dd").innerText(),
      /by the application itself \(dynamic client registration\)/,
    );
    assert.match(
      await page.getByRole("note").innerText(),
      new RegExp(`registered itself.*not verified.*${RegExp.escape(host)}`, "s"),
    );
    // The host the browser returns to: bold, larger than the text around it, and first in the details.
    const returnsTo = page.locator("dt:text-is('Returns to') + dd");
    assert.equal((await returnsTo.innerText()).trim(), host);
    assert.equal(await page.locator("dl dt").first().innerText(), "Returns to");
    const size = (style: string) => Number.parseFloat(style);
    assert.ok(
      size(await computedStyle(page, "dt:text-is('Returns to') + dd", "font-size")) >
        size(await computedStyle(page, "dt:text-is('Application') + dd", "font-size")),
      "the redirect host is larger than the text",
    );
    assert.ok(Number(await computedStyle(page, "dt:text-is('Returns to') + dd", "font-weight")) >= 600);
    assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible(), "a way to sign out");
    await assertFitsViewport(page, "consent page at 1280 px");

    await page.setViewportSize(VIEWPORTS.phone);
    await assertFitsViewport(page, "consent page at 390 px");
    for (const name of ["Allow", "Deny", "Sign out"]) {
      assert.ok(await page.getByRole("button", { name }).isVisible(), `${name} at 390 px`);
    }
    await page.screenshot({ path: join(fixture.screenshots, "consent-phone.png"), fullPage: true });
  });
});
