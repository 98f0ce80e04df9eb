import assert from "node:assert/strict";
import { join } from "node:path";
import { startGateway } from "../../src/gateway.ts";
import { hashPassword } from "../../src/login/password.ts";
import { createLogger } from "../../src/log/logger.ts";
import {
  defaultFetcher,
  fetchClientMetadataDocument,
  fetchFromAddress,
  isPrivateAddress,
  type MetadataDocumentFetcher,
} from "../../src/oauth/client_metadata_document.ts";
import { formFields, ScriptedBrowser, signInAndApprove } from "../helpers/browser_session.ts";

const CLIENT_ID = "https://client.example.test/oauth/metadata.json";
const REDIRECT = "http://127.0.0.1:47001/callback";
const CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/** A self-signed certificate for the name cimd.invalid only, valid 2000-2100, and its (test-only) key. */
const CIMD_INVALID_CERT = `-----BEGIN CERTIFICATE-----
MIIBjDCCATKgAwIBAgIBATAKBggqhkjOPQQDAjAXMRUwEwYDVQQDDAxjaW1kLmlu
dmFsaWQwIBcNMDAwMTAxMDAwMDAwWhgPMjEwMDAxMDEwMDAwMDBaMBcxFTATBgNV
BAMMDGNpbWQuaW52YWxpZDBZMBMGByqGSM49AgEGCCqGSM49AwEHA0IABNP5LRAQ
MjGd5XWzLQmWnuFWA3e3OKYIpabBkJLdBSeG9u4khVkxZPkrmgZ5wgPZk9lryccz
cxRN0bLE5isUge2jbTBrMBcGA1UdEQQQMA6CDGNpbWQuaW52YWxpZDAMBgNVHRMB
Af8EAjAAMA4GA1UdDwEB/wQEAwIHgDATBgNVHSUEDDAKBggrBgEFBQcDATAdBgNV
HQ4EFgQUfCUSSiCwT7jbBEJiNdSZNPaIprMwCgYIKoZIzj0EAwIDSAAwRQIgS213
W0KOszY6HNT5D5al1ouWRXGwoQ7Jq4DRYQCdRaUCIQC29s3jmv2LQ7Roxkphsg3U
8QnUvMV+KcDDY2RqIoUkHw==
-----END CERTIFICATE-----`;
const CIMD_INVALID_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg1LSuFGwoCa78IPJ6
70Tq4lkBN+BnvTDpIAmodjPn+9yhRANCAATT+S0QEDIxneV1sy0Jlp7hVgN3tzim
CKWmwZCS3QUnhvbuJIVZMWT5K5oGecID2ZPZa8nHM3MUTdGyxOYrFIHt
-----END PRIVATE KEY-----`;

/** Serves metadata documents from memory, as if their hosts resolved to `address`. */
function fetcherFor(
  documents: Record<string, unknown>,
  address = "93.184.216.34",
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

const authorizeUrl = (base: string, clientId = CLIENT_ID, redirectUri = REDIRECT) =>
  `${base}/authorize?${new URLSearchParams({
    response_type: "code",
    client_id: clientId,
    redirect_uri: redirectUri,
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

Deno.test("a client metadata document (CIMD) client's consent page says its name is the document's word, and where the document is", async () => {
  const fetcher = fetcherFor({
    [CLIENT_ID]: { client_id: CLIENT_ID, client_name: "Document Client", redirect_uris: [REDIRECT] },
  });
  await withGateway(fetcher, async (base) => {
    const browser = new ScriptedBrowser();
    const login = await (await browser.fetch(authorizeUrl(base))).text();
    const signedIn = await browser.post(`${base}/login`, {
      ...formFields(login),
      username: "alice",
      password: "pw-alice-123",
    });
    await signedIn.body?.cancel();
    const page = await (await browser.fetch(authorizeUrl(base))).text();
    const text = page.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ");
    assert.match(text, /Application Document Client unverified name/);
    assert.match(text, /Registered by its metadata document at client\.example\.test/);
    assert.match(text, /Returns to 127\.0\.0\.1:47001/);
    assert.match(text, /name is stated by a document at client\.example\.test and not verified/);
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

/** The host name `new URL` leaves of a URL host spelling (it normalises 0x7f.1, 127.1, [::127.0.0.1]). */
const urlHost = (host: string) => new URL(`https://${host}/x`).hostname;

Deno.test("isPrivateAddress() refuses every special-purpose range, however it is spelled", () => {
  const refused = [
    // IPv4 (RFC 6890 and the IANA IPv4 special-purpose registry)
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "10.1.2.3",
    "100.64.0.1",
    "100.127.255.254",
    "127.0.0.1",
    "127.255.255.255",
    "169.254.169.254",
    "172.16.5.4",
    "172.31.255.255",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.255",
    "198.51.100.7",
    "203.0.113.7",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    urlHost("0x7f.1"),
    urlHost("127.1"),
    urlHost("2130706433"),
    urlHost("017700000001"),
    urlHost("0300.0250.0.1"),
    // IPv6 (RFC 4291 and the IANA IPv6 special-purpose registry)
    "::",
    "::1",
    "[::1]",
    urlHost("[::1]"),
    urlHost("[::]"),
    "0:0:0:0:0:0:0:1",
    "fe80::1",
    "FE80::1",
    urlHost("[fe80::1]"),
    "febf:ffff::1",
    "fec0::1",
    "fd00::1",
    "fc00::1",
    urlHost("[fd00::1]"),
    "ff02::1",
    "ff05::1:3",
    "2001:db8::1",
    "3fff::1",
    "100::1",
    "2001:2::1",
    "2001:10::1",
    "5f00::1",
    "4000::1",
    // IPv6 forms that embed an IPv4 address
    "::ffff:127.0.0.1",
    "::ffff:7f00:1",
    "[::ffff:a00:1]",
    urlHost("[::ffff:127.0.0.1]"),
    urlHost("[::ffff:7f00:1]"),
    urlHost("[0:0:0:0:0:ffff:7f00:1]"),
    urlHost("[::ffff:169.254.169.254]"),
    "::ffff:93.184.216.34",
    "::127.0.0.1",
    urlHost("[::127.0.0.1]"),
    "::7f00:1",
    "::5db8:d822",
    "64:ff9b::a00:1",
    urlHost("[64:ff9b::10.0.0.1]"),
    "64:ff9b::5db8:d822",
    "64:ff9b:1::1",
    urlHost("[2002:7f00:1::]"),
    "2002:a00:1::1",
    "2002:c0a8:101::",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    urlHost("[2001:0:4136:e378:8000:63bf:3fff:fdd2]"),
    // Not an address at all: zone ids, bad spellings, names
    "2606:4700::1111%eth0",
    "[2606:4700::1111%25eth0]",
    "0x7f.1",
    "127.1",
    "127.0.0.01",
    "2130706433",
    "256.0.0.1",
    "1.2.3.4.5",
    "[127.0.0.1]",
    "[2606:4700::1111",
    "2606:4700::1111]",
    "2606:4700:::1111",
    "2606::4700::1111",
    "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:7:8::",
    "1:2:3:4:5:6:7",
    ":1:2:3:4:5:6:7",
    "12345::1",
    "::ffff:1.2.3",
    "::1.2.3.4:5",
    "localhost",
    "example.com",
    "",
  ];
  for (const address of refused) assert.equal(isPrivateAddress(address), true, `refused: ${address}`);
});

Deno.test("isPrivateAddress() lets public unicast addresses through", () => {
  const allowed = [
    "93.184.216.34",
    "8.8.8.8",
    "1.1.1.1",
    "172.32.0.1",
    "100.128.0.1",
    "192.0.3.1",
    "223.255.255.255",
    "2606:4700::1111",
    "[2606:4700::1111]",
    urlHost("[2606:4700:0:0:0:0:0:1111]"),
    "2a00:1450:4001:82a::200e",
    "2001:4860:4860::8888",
    "2002:5db8:d822::1",
  ];
  for (const address of allowed) assert.equal(isPrivateAddress(address), false, `allowed: ${address}`);
});

Deno.test("fetchClientMetadataDocument() resolves once and connects to the address it checked", async () => {
  let resolutions = 0;
  const connectedTo: string[] = [];
  const fetcher: MetadataDocumentFetcher = {
    // A rebinding name: public for the check, loopback for anyone who asks again.
    resolve() {
      resolutions += 1;
      return Promise.resolve(resolutions === 1 ? ["93.184.216.34"] : ["127.0.0.1"]);
    },
    fetch(_url, address) {
      connectedTo.push(address);
      return Promise.resolve(Response.json({ client_id: CLIENT_ID, redirect_uris: [REDIRECT] }));
    },
  };
  const { metadata } = await fetchClientMetadataDocument(CLIENT_ID, fetcher);
  assert.equal(metadata.client_id, CLIENT_ID);
  assert.deepEqual(connectedTo, ["93.184.216.34"]);
  assert.equal(resolutions, 1);
});

Deno.test("fetchClientMetadataDocument() refuses a host if any of its addresses is private", async () => {
  const fetcher: MetadataDocumentFetcher = {
    resolve: () => Promise.resolve(["93.184.216.34", "::ffff:7f00:1"]),
    fetch: () => Promise.reject(new Error("must not fetch")),
  };
  await assert.rejects(fetchClientMetadataDocument(CLIENT_ID, fetcher), /private address/);
});

/** Serves `body` on 127.0.0.1, recording each request's Host header. */
function documentServer(body: (url: string) => BodyInit) {
  const hosts: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    hosts.push(request.headers.get("host") ?? "");
    const url = `http://${request.headers.get("host")}${new URL(request.url).pathname}`;
    return new Response(body(url), { headers: { "content-type": "application/json" } });
  });
  return { hosts, port: server.addr.port, server };
}

/** The real default fetcher, told that every name resolves to 127.0.0.1. */
const pinnedToLoopback: MetadataDocumentFetcher = {
  ...defaultFetcher,
  resolve: () => Promise.resolve(["127.0.0.1"]),
  allowPrivateAddresses: true,
};

Deno.test("fetchClientMetadataDocument() with the default fetcher reaches the checked address under the URL's name", async () => {
  const { hosts, port, server } = documentServer((url) =>
    JSON.stringify({ client_id: url, redirect_uris: [REDIRECT] })
  );
  try {
    // .invalid never resolves (RFC 6761 §6.4): only a connection pinned to the checked address gets there.
    const clientId = `http://cimd.invalid:${port}/doc.json`;
    const { metadata } = await fetchClientMetadataDocument(clientId, pinnedToLoopback);
    assert.equal(metadata.client_id, clientId);
    assert.deepEqual(hosts, [`cimd.invalid:${port}`]);
  } finally {
    await server.shutdown();
  }
});

Deno.test("fetchClientMetadataDocument() with the default fetcher follows no redirect and bounds the size", async () => {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (request) => {
    if (new URL(request.url).pathname === "/moved.json") {
      return new Response(null, { status: 302, headers: { location: "http://127.0.0.1:1/doc.json" } });
    }
    // Streamed, so sent chunked: the limit holds whatever the framing claims.
    const chunk = new TextEncoder().encode(" ".repeat(16 * 1024));
    let sent = 0;
    return new Response(
      new ReadableStream({
        pull(controller) {
          if (sent++ < 8) controller.enqueue(chunk);
          else controller.close();
        },
      }),
    );
  });
  try {
    const base = `http://cimd.invalid:${server.addr.port}`;
    await assert.rejects(
      fetchClientMetadataDocument(`${base}/moved.json`, pinnedToLoopback),
      /could not be fetched/,
    );
    await assert.rejects(fetchClientMetadataDocument(`${base}/big.json`, pinnedToLoopback), /too large/);
  } finally {
    await server.shutdown();
  }
});

Deno.test("fetchFromAddress() checks TLS against the URL's name, not the address it connects to", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, cert: CIMD_INVALID_CERT, key: CIMD_INVALID_KEY, onListen() {} },
    (request) => Response.json({ host: request.headers.get("host") }),
  );
  const init = () => ({ headers: { accept: "application/json" }, signal: AbortSignal.timeout(5000) });
  const trust = { ca: CIMD_INVALID_CERT };
  try {
    const port = server.addr.port;
    const response = await fetchFromAddress(
      `https://cimd.invalid:${port}/doc.json`,
      "127.0.0.1",
      init(),
      trust,
    );
    assert.equal(response.status, 200);
    assert.deepEqual(await response.json(), { host: `cimd.invalid:${port}` });
    await assert.rejects(
      fetchFromAddress(`https://other.invalid:${port}/doc.json`, "127.0.0.1", init(), trust),
      /altnames/,
    );
    await assert.rejects(
      fetchFromAddress(`https://cimd.invalid:${port}/doc.json`, "127.0.0.1", init()),
      /certificate/,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("fetchFromAddress() connects only to an IP address and stops at its signal", async () => {
  const init = { headers: {}, signal: AbortSignal.timeout(5000) };
  await assert.rejects(fetchFromAddress("http://cimd.invalid/doc.json", "localhost", init), TypeError);
  await assert.rejects(fetchFromAddress("ftp://cimd.invalid/doc.json", "127.0.0.1", init), TypeError);
  // A server that accepts and never answers: the abort ends the wait.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const controller = new AbortController();
  try {
    const fetching = fetchFromAddress(
      `http://cimd.invalid:${listener.addr.port}/doc.json`,
      "127.0.0.1",
      { headers: {}, signal: controller.signal },
    );
    const conn = await listener.accept();
    controller.abort(new Error("timed out"));
    await assert.rejects(fetching, /timed out/);
    conn.close();
  } finally {
    listener.close();
  }
});

/**
 * Accepts one connection on 127.0.0.1, reads the request head, writes `head` (and no more), and waits for
 * the client to close the connection; `closed` then yields the request head it read.
 */
function rawServer(head: string) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const closed = (async () => {
    const conn = await listener.accept();
    const buffer = new Uint8Array(16 * 1024);
    const read = await conn.read(buffer);
    await conn.write(new TextEncoder().encode(head));
    // A read of null (or a reset) means the client closed the connection.
    await conn.read(new Uint8Array(1024)).catch(() => null);
    conn.close();
    return new TextDecoder().decode(buffer.subarray(0, read ?? 0));
  })();
  return { port: listener.addr.port, closed, close: () => listener.close() };
}

Deno.test("fetchFromAddress() stops reading the body at its signal", async () => {
  const server = rawServer("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{");
  const controller = new AbortController();
  try {
    const response = await fetchFromAddress(
      `http://cimd.invalid:${server.port}/doc.json`,
      "127.0.0.1",
      { headers: {}, signal: controller.signal },
    );
    assert.equal(response.status, 200);
    const reading = response.text();
    controller.abort(new Error("timed out"));
    await assert.rejects(reading, /timed out/);
    await server.closed;
  } finally {
    server.close();
  }
});

Deno.test("fetchFromAddress() asks for identity encoding and refuses any other", async () => {
  const server = rawServer("HTTP/1.1 200 OK\r\ncontent-encoding: gzip\r\ncontent-length: 2\r\n\r\n{}");
  try {
    await assert.rejects(
      fetchFromAddress(`http://cimd.invalid:${server.port}/doc.json`, "127.0.0.1", {
        headers: {},
        signal: AbortSignal.timeout(5000),
      }),
      /content-encoding "gzip"/,
    );
    assert.match(await server.closed, /^accept-encoding: identity\r$/im);
  } finally {
    server.close();
  }
});

Deno.test("redirectUriAllowed() lets a CIMD client's port-less http://localhost redirect URI take any port", async () => {
  // Claude Code's document lists http://localhost/callback and listens on a port chosen at run time
  // (RFC 8252 §7.3).
  const listed = "http://localhost/callback";
  const used = "http://localhost:47123/callback";
  const fetcher = fetcherFor({
    [CLIENT_ID]: { client_id: CLIENT_ID, client_name: "Claude Code", redirect_uris: [listed] },
  });
  await withGateway(fetcher, async (base) => {
    const callback = await signInAndApprove(new ScriptedBrowser(), authorizeUrl(base, CLIENT_ID, used), {
      username: "alice",
      password: "pw-alice-123",
    });
    assert.equal(`${callback.origin}${callback.pathname}`, used);
    const response = await fetch(`${base}/token`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: callback.searchParams.get("code")!,
        code_verifier: VERIFIER,
        redirect_uri: used,
        client_id: CLIENT_ID,
      }),
    });
    assert.equal(response.status, 200);
    assert.ok((await response.json()).access_token);
  });
});
