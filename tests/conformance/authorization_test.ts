import assert from "node:assert/strict";
import { hashPassword } from "../../src/login/password.ts";
import { ScriptedBrowser, signInAndApprove } from "../helpers/browser_session.ts";
import { CONFORMANCE_PACKAGE } from "../helpers/conformance.ts";
import { freePort, misbehaving, startTestGateway } from "../helpers/mcp_clients.ts";

const SUITE_TIMEOUT_MS = 3 * 60_000;

interface Check {
  id: string;
  status: string;
  errorMessage?: string;
}

/** Every check the suite wrote under `dir`, whatever the scenario folders are called. */
async function readChecks(dir: string): Promise<Check[]> {
  const checks: Check[] = [];
  for await (const entry of Deno.readDir(dir)) {
    if (!entry.isDirectory) continue;
    const text = await Deno.readTextFile(`${dir}/${entry.name}/checks.json`).catch(() => undefined);
    if (text) checks.push(...JSON.parse(text) as Check[]);
  }
  return checks;
}

Deno.test("conformance suite's authorization scenarios pass against the gateway, the browser step driven", async () => {
  const password = "conformance-password-1";
  const port = freePort();
  const gateway = await startTestGateway({
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: { users: { alice: { password_hash: await hashPassword(password), groups: [] } } },
    // A pre-registered public client, as the suite expects one (`--client-id`).
    clients: {
      conformance: { name: "Conformance suite", redirect_uris: [`http://127.0.0.1:${port}/callback`] },
    },
    backends: { mis: misbehaving("mis") },
  });
  const issuer = new URL(gateway.mcpUrl).origin;
  const outputDir = await Deno.makeTempDir({ prefix: "gatehouse-conformance-auth-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--no-config",
      "--no-lock",
      CONFORMANCE_PACKAGE,
      "authorization",
      "--url",
      issuer,
      "--client-id",
      "conformance",
      "--resource",
      gateway.mcpUrl,
      "-p",
      String(port),
      "-o",
      outputDir,
    ],
    cwd: outputDir,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), SUITE_TIMEOUT_MS);
  let stdout = "";
  try {
    // The suite prints the authorization URL for a person to open; the scripted browser is that person.
    const decoder = new TextDecoder();
    let signedIn: Promise<void> | undefined;
    for await (const chunk of child.stdout) {
      stdout += decoder.decode(chunk, { stream: true });
      const url = stdout.split("\n").map((line) => line.trim()).find((line) =>
        line.startsWith(`${issuer}/authorize?`)
      );
      if (url && !signedIn) {
        signedIn = (async () => {
          const callback = await signInAndApprove(new ScriptedBrowser(), url, {
            username: "alice",
            password,
          });
          const delivered = await fetch(callback);
          await delivered.body?.cancel();
        })();
      }
    }
    await signedIn;
    const status = await child.status;
    const stderr = new TextDecoder().decode(await new Response(child.stderr).arrayBuffer());
    const checks = await readChecks(outputDir);
    const ids = checks.map((check) => check.id);
    assert.ok(ids.includes("authorization-code-grant"), `${stdout}\n${stderr}`);
    assert.ok(ids.some((id) => id.startsWith("authorization-server-metadata")), stdout);
    assert.equal(checks.find((check) => check.id === "authorization-code-grant")?.status, "SUCCESS", stdout);
    const failed = checks.filter((check) => check.status === "FAILURE");
    assert.deepEqual(failed, [], stdout);
    assert.equal(status.code, 0, stdout);
  } finally {
    clearTimeout(timer);
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await Deno.remove(outputDir, { recursive: true });
    await gateway.close();
  }
});
