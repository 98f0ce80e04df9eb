/** Who may read `/status.json`, by `gateway.status_page`, and what each viewer is shown. */
import assert from "node:assert/strict";
import { hashPassword } from "../../src/login/password.ts";
import { formFields, ScriptedBrowser } from "../helpers/browser_session.ts";
import { misbehaving, startTestGateway } from "../helpers/mcp_clients.ts";

const ADMIN = { username: "root", password: "root-password-for-visibility" };
const USER = { username: "pat", password: "pat-password-for-visibility" };

async function registry(statusPage: string): Promise<Record<string, unknown>> {
  return {
    gateway: { auth: "oauth", shutdown_timeout: "1s", status_page: statusPage },
    login: {
      users: {
        root: { password_hash: await hashPassword(ADMIN.password), groups: ["admin"] },
        pat: { password_hash: await hashPassword(USER.password), groups: ["staff"] },
      },
    },
    backends: { open: misbehaving("open"), secret: misbehaving("secret") },
    policies: [
      { id: "admins", effect: "allow", subjects: ["group:admin"], backends: ["*"] },
      { id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["open"] },
    ],
  };
}

/** A browser signed in through the sign-in page `/status` shows first. */
async function signedIn(
  base: string,
  user: { username: string; password: string },
): Promise<ScriptedBrowser> {
  const browser = new ScriptedBrowser();
  const page = await (await browser.fetch(`${base}/status`)).text();
  assert.match(page, /action="\/login"/, "the sign-in page comes first");
  const response = await browser.post(`${base}/login`, { ...formFields(page), ...user });
  assert.equal(response.status, 303);
  assert.equal(new URL(response.headers.get("location")!, base).pathname, "/status", "and leads back");
  await response.body?.cancel();
  return browser;
}

async function statusJson(browser: ScriptedBrowser | undefined, base: string) {
  const response = browser ? await browser.fetch(`${base}/status.json`) : await fetch(`${base}/status.json`);
  return { status: response.status, body: await response.json() };
}

Deno.test("status visibility: users (default) needs sign-in; admins see all, users their backends and no internals", async () => {
  const gateway = await startTestGateway(await registry("users"));
  try {
    const base = gateway.gateway.url;
    const anonymous = await statusJson(undefined, base);
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.body.error, "sign_in_required");

    const admin = await statusJson(await signedIn(base, ADMIN), base);
    assert.equal(admin.status, 200);
    assert.deepEqual(admin.body.viewer, { user: "root", admin: true });
    assert.deepEqual(admin.body.backends.map((backend: { name: string }) => backend.name), [
      "open",
      "secret",
    ]);
    assert.ok("last_error" in admin.body.backends[0], "admins see backend errors");
    assert.ok(admin.body.sessions, "and session counts");

    const user = await statusJson(await signedIn(base, USER), base);
    assert.equal(user.status, 200);
    assert.deepEqual(user.body.viewer, { user: "pat", admin: false });
    assert.deepEqual(user.body.backends.map((backend: { name: string }) => backend.name), ["open"]);
    assert.ok(!("last_error" in user.body.backends[0]));
    assert.equal(user.body.sessions, undefined);
    assert.deepEqual(user.body.connections, []);
  } finally {
    await gateway.close();
  }
});

Deno.test("status visibility: admins-only refuses other users; public shows health to anyone, nothing about anyone", async () => {
  const gateway = await startTestGateway(await registry("admins"));
  try {
    const base = gateway.gateway.url;
    const user = await statusJson(await signedIn(base, USER), base);
    assert.equal(user.status, 403);
    assert.equal((await statusJson(await signedIn(base, ADMIN), base)).status, 200);

    await gateway.reload(await registry("public"));
    const anonymous = await statusJson(undefined, base);
    assert.equal(anonymous.status, 200);
    assert.deepEqual(anonymous.body.viewer, { user: null, admin: false });
    assert.deepEqual(anonymous.body.backends.map((backend: { name: string }) => backend.name), [
      "open",
      "secret",
    ]);
    assert.equal(anonymous.body.recent, undefined, "no events, which name users");
    assert.equal(anonymous.body.connections, undefined);
    assert.ok(!("last_error" in anonymous.body.backends[0]));
    const page = await fetch(`${base}/status`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /Gatehouse status/);
    assert.match(page.headers.get("content-security-policy") ?? "", /default-src 'none'/);
  } finally {
    await gateway.close();
  }
});
