/**
 * The status page in a real browser (Debian's Chromium through Playwright): a gateway with one healthy and
 * one broken backend and a rejected registry edit, looked at by an admin and by a plain user. The
 * screenshots are kept in `test-artifacts/` at the top of the repository.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { Page } from "npm:playwright-core@1.65.1";
import { hashPassword } from "../../src/login/password.ts";
import { assertFitsViewport, launchChromium, type LocalBrowser, VIEWPORTS } from "../helpers/browser.ts";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { ROOT } from "../helpers/gatehouse_process.ts";
import { misbehaving, startTestGateway, type TestGateway } from "../helpers/mcp_clients.ts";
import { gatewayToken } from "../services/_world.ts";

export const ARTIFACTS = join(ROOT, "test-artifacts");
const ROOT_USER = { username: "root", password: "root-password-for-status-tests" };
const PLAIN_USER = { username: "pat", password: "pat-password-for-status-tests" };

async function statusRegistry(): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s", status_page: "users" },
    login: {
      users: {
        root: { password_hash: await hashPassword(ROOT_USER.password), groups: ["admin"] },
        pat: { password_hash: await hashPassword(PLAIN_USER.password), groups: ["staff"] },
      },
    },
    backends: {
      healthy: misbehaving("healthy"),
      broken: { stdio: { command: "gatehouse-test-no-such-command", args: [] } },
      hidden: misbehaving("hidden"),
    },
    policies: [
      { id: "admins", effect: "allow", subjects: ["group:admin"], backends: ["*"] },
      { id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["healthy", "broken"] },
    ],
  };
}

/** Signs in on the page's sign-in form, which `/status` shows first, and waits for the status page. */
async function signInToStatus(page: Page, base: string, user: { username: string; password: string }) {
  await page.goto(`${base}/status`);
  await page.fill('input[name="username"]', user.username);
  await page.fill('input[name="password"]', user.password);
  await Promise.all([page.waitForURL(`${base}/status`), page.click('button[type="submit"]')]);
  await page.waitForSelector("h1:has-text('Gatehouse status')");
}

async function mcpClient(base: string, user: { username: string; password: string }): Promise<Client> {
  const token = await gatewayToken(base, new ScriptedBrowser(), user);
  const client = new Client({ name: "status-test", version: "1.0.0" });
  await client.connect(
    new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
      requestInit: { headers: { authorization: `Bearer ${token}` } },
    }),
  );
  return client;
}

Deno.test("status page: an admin sees everything, a plain user their backends, in Chromium; screenshots kept", async () => {
  await Deno.mkdir(ARTIFACTS, { recursive: true });
  const gateway: TestGateway = await startTestGateway(await statusRegistry());
  let browser: LocalBrowser | undefined;
  try {
    const base = gateway.gateway.url;
    // Traffic: the healthy backend answers, the broken one cannot start.
    const client = await mcpClient(base, ROOT_USER);
    try {
      const tools = await client.listTools();
      assert.ok(tools.tools.some((tool) => tool.name === "healthy__echo"));
      await client.callTool({ name: "healthy__echo", arguments: { message: "hi" } });
      const broken = await client.callTool({ name: "broken__anything", arguments: {} }).then(
        (result) => result,
        (error: Error) => error,
      );
      assert.ok(broken instanceof Error, "the broken backend fails its call");
    } finally {
      await client.close();
    }
    // A rejected registry edit: the last good registry keeps serving.
    await Deno.writeTextFile(
      join(gateway.dir, "registry.yaml"),
      "gateway:\n  auth: oauth\n  no_such_key: 1\n",
    );
    assert.equal(await gateway.gateway.watcher!.reload(), false);

    browser = await launchChromium();
    const adminPage = await browser.newPage();
    await signInToStatus(adminPage, base, ROOT_USER);
    const adminText = await adminPage.textContent("body") ?? "";
    assert.match(adminText, /Signed in as root \(admin\)/);
    assert.match(adminText, /The last edit was rejected/);
    assert.match(adminText, /registry\.yaml:3:3: .*no_such_key/, "the problem with its file:line:col");
    // As rendered: at this width the column labels are the table's header, not in the cells.
    const row = async (page: Page, name: string) =>
      await page.locator(`tr[data-backend="${name}"]`).innerText();
    assert.match(await row(adminPage, "healthy"), /stdio.*up/);
    assert.match(await row(adminPage, "broken"), /down.*gatehouse-test-no-such-command|down/);
    assert.match(
      await row(adminPage, "broken"),
      /No such file|not found|spawn|failed/i,
      "admins see the last error",
    );
    assert.match(await row(adminPage, "hidden"), /stdio.*up/, "admins see every backend");
    assert.match(await row(adminPage, "healthy"), /\bup\s+9\s/, "with its tools count (9)");
    assert.match(adminText, /Recent errors/);
    assert.match(adminText, /open 2025-era session/);
    assert.equal(
      await adminPage.getAttribute('meta[http-equiv="refresh"]', "content"),
      "15",
      "the page refreshes itself",
    );
    await adminPage.screenshot({ path: join(ARTIFACTS, "status-admin.png"), fullPage: true });

    const plainPage = await (await launchChromium().then((second) => {
      browser!.close();
      browser = second;
      return second;
    })).newPage();
    await signInToStatus(plainPage, base, PLAIN_USER);
    const plainText = await plainPage.textContent("body") ?? "";
    assert.match(plainText, /Signed in as pat/);
    assert.doesNotMatch(plainText, /\(admin\)/);
    assert.match(plainText, /The last edit was rejected/);
    assert.doesNotMatch(plainText, /no_such_key/, "problems are for admins");
    assert.match(await row(plainPage, "healthy"), /up/);
    assert.match(await row(plainPage, "broken"), /down/);
    assert.equal(
      await plainPage.locator('tr[data-backend="hidden"]').count(),
      0,
      "a backend pat may not use is not shown",
    );
    assert.doesNotMatch(plainText, /Last error/);
    assert.doesNotMatch(plainText, /open 2025-era session/);
    assert.match(plainText, /Your connections/);
    await plainPage.screenshot({ path: join(ARTIFACTS, "status-user.png"), fullPage: true });

    // The same data as JSON, with the page's browser session.
    const jsonResponse = await plainPage.goto(`${base}/status.json`);
    const json = await jsonResponse!.json();
    assert.deepEqual(json.backends.map((backend: { name: string }) => backend.name).sort(), [
      "broken",
      "healthy",
    ]);
    assert.equal(json.viewer.admin, false);
    assert.equal(json.registry.last_error.problems, undefined);
    assert.deepEqual(browser.offLoopbackRequests, [], "the page loads nothing from outside");
  } finally {
    await browser?.close().catch(() => {});
    await gateway.close();
  }
  for (const name of ["status-admin.png", "status-user.png"]) {
    assert.ok((await Deno.stat(join(ARTIFACTS, name))).size > 1000, `${name} was saved`);
  }
});

/** Where each cell of a backend's row is on the screen, and what text of it is rendered. */
async function cellsOf(page: Page, backend: string) {
  const cells = page.locator(`tr[data-backend="${backend}"] td`);
  const found = [];
  for (let index = 0; index < await cells.count(); index++) {
    const cell = cells.nth(index);
    const box = await cell.boundingBox();
    assert.ok(box, `cell ${index} of ${backend} is rendered`);
    found.push({ box, text: (await cell.innerText()).trim() });
  }
  return found;
}

Deno.test("status page in Chromium: at 390 px each backend is a stack of labelled fields, nothing cut; at 1280 px a table", async () => {
  const gateway: TestGateway = await startTestGateway(await statusRegistry());
  let browser: LocalBrowser | undefined;
  try {
    const base = gateway.gateway.url;
    browser = await launchChromium();
    const page = await browser.newPage();
    await page.setViewportSize(VIEWPORTS.phone);
    await signInToStatus(page, base, ROOT_USER);
    await page.waitForSelector('tr[data-backend="broken"]');

    await assertFitsViewport(page, "status page at 390 px");
    const labels = ["Transport", "State", "Tools", "Latency", "Processes", "Last error"];
    const phoneCells = await cellsOf(page, "healthy");
    assert.equal(phoneCells.length, 7, "name and six fields");
    for (const [index, label] of labels.entries()) {
      const cell = phoneCells[index + 1]!;
      assert.ok(cell.text.startsWith(label), `"${cell.text}" is labelled ${label}`);
      assert.ok(
        cell.box.x >= 0 && cell.box.x + cell.box.width <= VIEWPORTS.phone.width,
        `${label} on screen`,
      );
      assert.ok(cell.box.y > phoneCells[index]!.box.y, `${label} is below the field before it`);
    }
    assert.match(phoneCells[1]!.text, /^Transport\s+stdio$/);
    assert.equal(await page.locator("thead").first().isVisible(), false, "no header row over stacked fields");
    assert.ok(await page.getByRole("button", { name: "Sign out" }).isVisible(), "a way to sign out");
    await page.screenshot({ path: join(ARTIFACTS, "status-phone.png"), fullPage: true });

    await page.setViewportSize(VIEWPORTS.desktop);
    await assertFitsViewport(page, "status page at 1280 px");
    const desktopCells = await cellsOf(page, "healthy");
    assert.deepEqual(
      desktopCells.map((cell) => cell.box.y),
      desktopCells.map(() => desktopCells[0]!.box.y),
      "one row: every field beside the name",
    );
    assert.equal(desktopCells[1]!.text, "stdio", "the labels are the table's header, not in the cells");
    assert.deepEqual(
      (await page.locator("thead").first().innerText()).split(/\s+/).filter(Boolean),
      ["Backend", ...labels.flatMap((label) => label.split(" "))],
    );
    assert.deepEqual(browser.offLoopbackRequests, [], "the page loads nothing from outside");
  } finally {
    await browser?.close().catch(() => {});
    await gateway.close();
  }
});
