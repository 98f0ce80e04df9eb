import assert from "node:assert/strict";
import { join } from "node:path";
import { startGateway } from "../../src/gateway.ts";
import { hashPassword } from "../../src/login/password.ts";
import { createLogger } from "../../src/log/logger.ts";
import type { MetadataDocumentFetcher } from "../../src/oauth/client_metadata_document.ts";
import { isPrivateAddress } from "../../src/oauth/client_metadata_document.ts";
import { ScriptedBrowser, signInAndApprove } from "../helpers/browser_session.ts";

const CLIENT_ID = "https://client.example.test/oauth/metadata.json";
const REDIRECT = "http://127.0.0.1:47001/callback";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/** Serves metadata documents from memory, as if their hosts resolved to `address`. */
function fetcherFor(
  documents: Record<string, unknown>,
  address = "203.0.113.7",
): MetadataDocumentFetcher & { fetched: string[] } {
  const fetched: string[] = [];
  return {
    fetched,
    resolve: () => Promise.resolve([address]),
    fetch(url) {
      fetched.push(url);
      const document = documents[url];
      if (document === undefined) return Promise.resolve(new Response("not found", { status: 404 }));
      return Promise.resolve(Response.json(document, { headers: { "cache-control": "max-age=60" } }));
    },
  };
}

async function withGateway(fetcher: MetadataDocumentFetcher, work: (url: string) => Promise<void>) {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-cimd-" });
  const registry = {
    gateway: { auth: "oauth", shutdown_timeout: "1s" },
    login: { users: { alice: { password_hash: await hashPassword("pw-alice-123"), groups: [] } } },
    backends: { mis: { stdio: { command: "true" } } },
  };
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry));
  const gateway = await startGateway({
    registryPath: join(dir, "registry.yaml"),
    listen: "127.0.0.1:0",
    dataDir: join(dir, "data"),
    log: createLogger({ write: () => {} }),
    watch: false,
    clientMetadataFetcher: fetcher,
  });
  try {
    await work(gateway.url);
  } finally {
    await gateway.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
}

const authorizeUrl = (base: string, clientId = CLIENT_ID) =>
  `${base}/authorize?${new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: REDIRECT,
    code_challenge: CHALLENGE,
    code_challenge_method: "S256",
    state: "s1",
  })}`;

Deno.test("a client metadata document (CIMD) client signs in and gets tokens, the document fetched once", async () => {
  const fetcher = fetcherFor({
    [CLIENT_ID]: { client_id: CLIENT_ID, client_name: "Document Client", redirect_uris: [REDIRECT] },
  });
  await withGateway(fetcher, async (base) => {
    const callback = await signInAndApprove(new ScriptedBrowser(), authorizeUrl(base), {
      username: "alice",
      password: "pw-alice-123",
    });
    assert.equal(callback.searchParams.get("state"), "s1");
    const response = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: callback.searchParams.get("code")!,
        code_verifier: VERIFIER,
        redirect_uri: REDIRECT,
        client_id: CLIENT_ID,
      }),
    });
    assert.equal(response.status, 200);
    assert.ok((await response.json()).access_token);
    assert.deepEqual(fetcher.fetched, [CLIENT_ID], "cached per its Cache-Control");
  });
});

Deno.test("a client metadata document whose client_id lies is refused without a redirect", async () => {
  const fetcher = fetcherFor({
    [CLIENT_ID]: { client_id: "https://someone-else.example.test/doc.json", redirect_uris: [REDIRECT] },
  });
  await withGateway(fetcher, async (base) => {
    const response = await fetch(authorizeUrl(base), { redirect: "manual" });
    assert.equal(response.status, 400);
    assert.equal(response.headers.get("location"), null);
    assert.match(await response.text(), /names another client_id/);
  });
});

Deno.test("a client metadata document on a host that resolves to a private address is never fetched", async () => {
  const fetcher = fetcherFor({
    [CLIENT_ID]: { client_id: CLIENT_ID, redirect_uris: [REDIRECT] },
  }, "10.1.2.3");
  await withGateway(fetcher, async (base) => {
    const response = await fetch(authorizeUrl(base), { redirect: "manual" });
    assert.equal(response.status, 400);
    assert.match(await response.text(), /private address/);
    assert.deepEqual(fetcher.fetched, []);
  });
});

Deno.test("isPrivateAddress() knows loopback, private, link-local and mapped addresses", () => {
  for (
    const address of [
      "127.0.0.1",
      "10.0.0.1",
      "172.16.5.4",
      "192.168.1.1",
      "169.254.169.254",
      "::1",
      "fd00::1",
      "fe80::1",
      "::ffff:127.0.0.1",
      "::ffff:7f00:1",
      "[::ffff:a00:1]",
      "64:ff9b::a00:1",
      "0.0.0.0",
    ]
  ) {
    assert.equal(isPrivateAddress(address), true, address);
  }
  for (const address of ["203.0.113.7", "8.8.8.8", "2001:db8::1", "172.32.0.1"]) {
    assert.equal(isPrivateAddress(address), false, address);
  }
});
