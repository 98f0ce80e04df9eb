/**
 * Two gateways on one host name, different ports (as when trying out two chained gateways on localhost), in
 * one real browser: browsers keep cookies per host name whatever the port, so with one cookie name the
 * sign-in at one replaced the session at the other (and a consent link between them looped on "not signed
 * in"). Each gateway's cookies carry its port: both sessions live side by side.
 */
import assert from "node:assert/strict";
import { launchChromium } from "../helpers/browser.ts";
import { startTestGateway } from "../helpers/mcp_clients.ts";
import { ALICE, aliceHashOnce } from "../oauth/_flow.ts";

Deno.test("in Chromium, signing in at a second gateway on the same host keeps the session at the first", async () => {
  const registry = {
    gateway: { auth: "oauth" },
    login: { users: { alice: { password_hash: await aliceHashOnce(), groups: ["staff"] } } },
    backends: {},
  };
  const [a, b] = [await startTestGateway(registry), await startTestGateway(registry)];
  const browser = await launchChromium();
  try {
    const page = await browser.newPage();
    for (const base of [a.gateway.url, b.gateway.url]) {
      await page.goto(`${base}/connections`);
      await page.getByLabel("User name").fill(ALICE.username);
      await page.getByLabel("Password").fill(ALICE.password);
      await Promise.all([
        page.waitForURL(`${base}/connections`),
        page.getByRole("button", { name: "Sign in" }).click(),
      ]);
      await page.waitForSelector("h1:has-text('Your connections')");
    }
    // Back at the first gateway: still signed in there.
    await page.goto(`${a.gateway.url}/connections`);
    assert.equal(await page.locator("h1").first().innerText(), "Your connections");
    const names = (await browser.context.cookies(a.gateway.url)).map((cookie) => cookie.name).sort();
    const ports = [new URL(a.gateway.url).port, new URL(b.gateway.url).port];
    for (const port of ports) assert.ok(names.includes(`gatehouse_${port}`), JSON.stringify(names));
    assert.deepEqual(browser.offLoopbackRequests, []);
  } finally {
    await browser.close();
    await a.close();
    await b.close();
  }
});
