/**
 * `/connections`, the page after connecting a service, and signing out, in a real browser (Debian's
 * Chromium through Playwright) at 1280 and 390 px: a success is not shown as an error, the granted scope
 * and the expiry are labelled and readable, and every page of a signed-in user has a sign-out button that
 * ends the session at the gateway too. A screenshot at 390 px is kept in `test-artifacts/`.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import type { Page } from "npm:playwright-core@1.65.1";
import {
  assertFitsViewport,
  computedStyle,
  launchChromium,
  type LocalBrowser,
  VIEWPORTS,
} from "../helpers/browser.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import { ALICE, connectClient, consentLinkOf, signIn, withWorld, type World } from "./_world.ts";
import { gatewayCookieName } from "../../src/core/cookies.ts";

/** Screenshots for people to look at (the assertions are on layout and content), as the status tests keep. */
const ARTIFACTS = join(ROOT, "test-artifacts");

/** The error colour of the pages (`.error`), as Chromium computes it. */
const ERROR_COLOUR = "rgb(176, 0, 32)";

/** Signs alice in on the sign-in form `/connections` shows first, and waits for her connections. */
async function signInToConnections(page: Page, base: string): Promise<void> {
  await page.goto(`${base}/connections`);
  await page.getByLabel("User name").fill(ALICE.username);
  await page.getByLabel("Password").fill(ALICE.password);
  await Promise.all([
    page.waitForURL(`${base}/connections`),
    page.getByRole("button", { name: "Sign in" }).click(),
  ]);
  await page.waitForSelector("h1:has-text('Your connections')");
}

/** Alice's consent link, asked for by an MCP client of hers. */
async function consentLink(world: World): Promise<string> {
  const alice = await signIn(world, ALICE);
  const client = await connectClient(world.gateway.mcpUrl, alice.token, "plain");
  try {
    return await consentLinkOf(client);
  } finally {
    await client.close();
  }
}

/** Signs alice in on `page` and follows her consent link through the mock service, back to the callback. */
async function connectMock(page: Page, world: World): Promise<void> {
  await signInToConnections(page, world.base);
  await page.goto(await consentLink(world));
  await page.waitForURL((url) => url.pathname === "/connect/mock/callback");
}

async function withChromium(work: (browser: LocalBrowser) => Promise<void>): Promise<void> {
  const browser = await launchChromium();
  try {
    await work(browser);
    assert.deepEqual(browser.offLoopbackRequests, [], "the browser only spoke to 127.0.0.1");
  } finally {
    await browser.close().catch(() => {});
  }
}

Deno.test('/connect callback in Chromium: "Connected" is a success, not in the error colour, with a way on and a way out', async () => {
  await withWorld(async (world) => {
    await withChromium(async (browser) => {
      const page = await browser.newPage();
      await connectMock(page, world);
      assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Connected");
      const message = page.getByRole("status");
      assert.match(await message.innerText(), /Your mock account is connected/);
      assert.equal(await message.getAttribute("class"), "ok");
      assert.equal(await page.locator("main .error").count(), 0, "nothing in the error style");
      const colour = await computedStyle(page, "[role=status]", "color");
      assert.notEqual(colour, ERROR_COLOUR);
      assert.equal(colour, "rgb(17, 101, 42)", "the success colour");
      assert.equal(
        await page.getByRole("link", { name: "Your connections" }).getAttribute("href"),
        "/connections",
      );
      for (const viewport of [VIEWPORTS.desktop, VIEWPORTS.phone]) {
        await page.setViewportSize(viewport);
        await assertFitsViewport(page, `the page after connecting at ${viewport.width} px`);
        assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible(), "a way to sign out");
      }
    });
  });
});

Deno.test("/connections in Chromium: the scope is labelled, the expiry relative and in local time, at 1280 and 390 px", async () => {
  await withWorld(async (world) => {
    await withChromium(async (browser) => {
      const page = await browser.newPage();
      await connectMock(page, world);
      const connectedAt = Date.now();
      await page.goto(`${world.base}/connections`);

      const item = page.locator("li", { hasText: "mock" });
      // What the service said it granted (the mock grants "dummy", whatever was asked).
      assert.equal((await item.locator("dt:text-is('Granted scope') + dd").innerText()).trim(), "dummy");
      const expiry = item.locator("dt:text-is('Token expires') + dd");
      const time = expiry.locator("time");
      const datetime = Date.parse((await time.getAttribute("datetime")) ?? "");
      // The mock's tokens live an hour.
      assert.ok(Math.abs(datetime - (connectedAt + 3600_000)) < 60_000, `datetime ${datetime}`);
      assert.equal(await time.innerText(), "in 1 hour");
      assert.equal(await time.getAttribute("title"), new Date(datetime).toISOString());
      assert.match(
        await expiry.innerText(),
        /^in 1 hour \(\d{1,2} [A-Z][a-z]{2} \d{4}, \d\d:\d\d \S+\)$/,
        "and the local time, with its zone",
      );
      assert.doesNotMatch(await page.locator("main").innerText(), /\d{4}-\d\d-\d\dT/, "no raw ISO time");
      for (const viewport of [VIEWPORTS.desktop, VIEWPORTS.phone]) {
        await page.setViewportSize(viewport);
        await assertFitsViewport(page, `/connections at ${viewport.width} px`);
        assert.ok(await item.getByRole("button", { name: "Disconnect" }).isVisible());
        assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible(), "a way to sign out");
      }
      await Deno.mkdir(ARTIFACTS, { recursive: true });
      await page.screenshot({ path: join(ARTIFACTS, "connections-phone.png"), fullPage: true });
    });
  });
});

Deno.test("POST /logout in Chromium: the sign-out button ends the session here and at the gateway, and says so", async () => {
  await withWorld(async (world) => {
    await withChromium(async (browser) => {
      const page = await browser.newPage();
      await page.setViewportSize(VIEWPORTS.phone);
      await signInToConnections(page, world.base);
      const [session] = (await browser.context.cookies(world.base)).filter((cookie) =>
        cookie.name === gatewayCookieName("gatehouse", world.base)
      );
      assert.ok(session, "the session cookie");
      assert.match(await page.locator("main").innerText(), /Signed in as alice/);

      const [answer] = await Promise.all([
        page.waitForResponse((response) => new URL(response.url()).pathname === "/logout"),
        page.getByRole("button", { name: "Sign out" }).click(),
      ]);
      assert.equal(answer.request().method(), "POST");
      await page.waitForLoadState();
      assert.equal(await page.getByRole("heading", { level: 1 }).innerText(), "Signed out");
      assert.match(await page.getByRole("status").innerText(), /You are signed out of Gatehouse/);
      assert.equal(await page.locator("main .error").count(), 0, "not in the error style");
      await assertFitsViewport(page, "the signed-out page at 390 px");
      assert.equal(await page.getByRole("button", { name: "Sign out" }).count(), 0, "no one to sign out");
      assert.deepEqual(
        (await browser.context.cookies(world.base)).filter((cookie) =>
          cookie.name === gatewayCookieName("gatehouse", world.base)
        ),
        [],
        "the cookie is gone",
      );

      // The way back in is offered, and asks to sign in again.
      await page.getByRole("link", { name: "Sign in again" }).click();
      await page.waitForURL(`${world.base}/connections`);
      assert.ok(await page.getByLabel("Password").isVisible(), "the sign-in form");
      // The old cookie, presented again, opens nothing: the session ended at the gateway too.
      const replayed = await fetch(`${world.base}/connections`, {
        headers: { cookie: `${gatewayCookieName("gatehouse", world.base)}=${session.value}` },
      });
      const replayedPage = await replayed.text();
      assert.match(replayedPage, /action="\/login"/);
      assert.doesNotMatch(replayedPage, /Your connections/);
    });
  });
});
