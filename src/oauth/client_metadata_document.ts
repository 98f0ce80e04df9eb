// Fetches and checks client ID metadata documents (CIMD, draft-ietf-oauth-client-id-metadata-document):
// a stranger chooses the URL, so the request goes to one checked public address, bounded in time and size.
import { readAtMost } from "../core/streams.ts";
import http, { type IncomingMessage } from "node:http";
import https from "node:https";
import { Readable } from "node:stream";
import { isPublicAddress, parseIPv4, parseIPv6 } from "../core/address_ranges.ts";
import { OAuthError } from "../core/oauth_error.ts";

/** Limits on fetching a client ID metadata document (CIMD): an attacker chooses the URL. */
const FETCH_TIMEOUT_MS = 5000;
const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Status line and header fields of the response together (Node's `maxHeaderSize`). */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
const DEFAULT_CACHE_SECONDS = 300;
const MAX_CACHE_SECONDS = 24 * 3600;

/** True for a client id that names a metadata document: an https URL with a path (CIMD §3). */
export function isMetadataDocumentClientId(clientId: string): boolean {
  try {
    const url = new URL(clientId);
    return url.protocol === "https:" && url.pathname !== "/" && !url.hash && !url.username && !url.password;
  } catch {
    return false;
  }
}

/** True for every address a fetch on behalf of a stranger must never reach (SSRF), and for non-addresses. */
export function isPrivateAddress(address: string): boolean {
  return !isPublicAddress(address);
}

/** What the document request carries: its headers, and a signal that ends it (the timeout). */
export interface MetadataDocumentRequest {
  readonly headers: Readonly<Record<string, string>>;
  readonly signal: AbortSignal;
}

export interface MetadataDocumentFetcher {
  /** Resolves a host name (or IP literal) to its addresses; asked once per document fetch. */
  resolve(hostname: string): Promise<string[]>;
  /** GETs `url` over a connection to `address`, which the caller checked: the name is not resolved again. */
  fetch(url: string, address: string, init: MetadataDocumentRequest): Promise<Response>;
  /** Tests serve documents on 127.0.0.1; production never allows it. */
  allowPrivateAddresses?: boolean;
}

export const defaultFetcher: MetadataDocumentFetcher = {
  async resolve(hostname) {
    if (isIPAddress(unbracketed(hostname))) return [unbracketed(hostname)];
    const records = await Promise.allSettled([
      Deno.resolveDns(hostname, "A"),
      Deno.resolveDns(hostname, "AAAA"),
    ]);
    return records.flatMap((record) => record.status === "fulfilled" ? record.value : []);
  },
  fetch: (url, address, init) => fetchFromAddress(url, address, init),
};

/**
 * Fetches and checks a client ID metadata document: the host must not resolve to a private address,
 * no redirects, bounded time and size, JSON whose `client_id` is exactly the URL, redirect URIs present,
 * and no client secret (these clients are public). Returns the metadata and how long it may be cached.
 */
export async function fetchClientMetadataDocument(
  clientId: string,
  fetcher: MetadataDocumentFetcher,
): Promise<{ metadata: Record<string, unknown>; maxAgeSeconds: number }> {
  const url = new URL(clientId);
  // Resolved once: the connection goes to an address checked here, so DNS cannot rebind in between.
  const addresses = await fetcher.resolve(url.hostname);
  const address = addresses[0];
  if (address === undefined) throw new OAuthError("invalid_client", "The client id's host does not resolve");
  if (!fetcher.allowPrivateAddresses && addresses.some(isPrivateAddress)) {
    throw new OAuthError("invalid_client", "The client id's host resolves to a private address");
  }
  const cannotFetch = () =>
    new OAuthError("invalid_client", "The client metadata document could not be fetched");
  let response: Response;
  try {
    // No redirects are followed: a redirect answers with a status other than 200.
    response = await fetcher.fetch(clientId, address, {
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch {
    throw cannotFetch();
  }
  if (response.status !== 200) {
    await response.body?.cancel().catch(() => {});
    throw cannotFetch();
  }
  let body: string;
  try {
    body = await readBounded(response, MAX_DOCUMENT_BYTES);
  } catch (error) {
    if (error instanceof OAuthError) throw error;
    throw cannotFetch();
  }
  let metadata: unknown;
  try {
    metadata = JSON.parse(body);
  } catch {
    throw new OAuthError("invalid_client", "The client metadata document is not JSON");
  }
  if (!metadata || typeof metadata !== "object" || Array.isArray(metadata)) {
    throw new OAuthError("invalid_client", "The client metadata document is not a JSON object");
  }
  const document = metadata as Record<string, unknown>;
  if (document.client_id !== clientId) {
    throw new OAuthError("invalid_client", "The client metadata document names another client_id");
  }
  if ("client_secret" in document || "client_secret_expires_at" in document) {
    throw new OAuthError("invalid_client", "A client metadata document must not carry a secret");
  }
  const method = document.token_endpoint_auth_method ?? "none";
  if (method !== "none") {
    throw new OAuthError("invalid_client", "Only public clients (auth method none) are supported");
  }
  return {
    metadata: { ...document, token_endpoint_auth_method: "none" },
    maxAgeSeconds: cacheSeconds(response),
  };
}

async function readBounded(response: Response, maxBytes: number): Promise<string> {
  if (!response.body) return "";
  const bytes = await readAtMost(response.body, maxBytes);
  if (!bytes) throw new OAuthError("invalid_client", "The client metadata document is too large");
  return new TextDecoder().decode(bytes);
}

/** Seconds to cache per Cache-Control (no-store/no-cache: not at all), bounded. */
function cacheSeconds(response: Response): number {
  const header = response.headers.get("cache-control") ?? "";
  if (/no-store|no-cache/i.test(header)) return 0;
  const maxAge = /max-age=(\d+)/i.exec(header);
  return Math.min(MAX_CACHE_SECONDS, maxAge ? Number(maxAge[1]) : DEFAULT_CACHE_SECONDS);
}

/**
 * GETs `url` with Node's HTTP client over a connection to `address`, never resolving the URL's host name:
 * `host` is the address itself (so no lookup happens), the Host header carries the URL's host, and for
 * https the TLS handshake sends the URL's name (SNI) and checks the certificate against it. Deno's fetch
 * cannot pin so: a `Deno.createHttpClient` `tcp` proxy sends https requests unencrypted. `ca` overrides the
 * trusted roots (tests). The response body streams; cancelling it destroys the connection.
 */
export async function fetchFromAddress(
  url: string,
  address: string,
  init: MetadataDocumentRequest,
  options: { ca?: string } = {},
): Promise<Response> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  if (!secure && target.protocol !== "http:") {
    throw new TypeError(`Cannot fetch "${url}": not an http(s) URL`);
  }
  const host = unbracketed(address);
  if (!isIPAddress(host)) throw new TypeError(`Cannot fetch "${url}": "${address}" is not an IP address`);
  const name = unbracketed(target.hostname);
  init.signal.throwIfAborted();
  return await new Promise((resolve, reject) => {
    const request = (secure ? https.request : http.request)({
      host,
      port: Number(target.port) || (secure ? 443 : 80),
      path: `${target.pathname}${target.search}`,
      method: "GET",
      headers: { ...init.headers, host: target.host, "accept-encoding": "identity", connection: "close" },
      agent: false,
      maxHeaderSize: MAX_RESPONSE_HEAD_BYTES,
      // RFC 6066 §3: SNI carries names only; an IP-literal URL is checked against its address (`host`).
      ...(secure ? { servername: isIPAddress(name) ? undefined : name, ca: options.ca } : {}),
    });
    let response: IncomingMessage | undefined;
    // The one signal bounds every stage: connecting, the TLS handshake, the head, and the body.
    const abort = () => (response ?? request).destroy(init.signal.reason);
    init.signal.addEventListener("abort", abort, { once: true });
    request.once("close", () => init.signal.removeEventListener("abort", abort));
    request.on("error", reject);
    request.once("response", (message: IncomingMessage) => {
      response = message;
      const coding = message.headers["content-encoding"];
      if (coding !== undefined && coding.trim().toLowerCase() !== "identity") {
        message.destroy();
        return reject(new Error(`Cannot read the response: content-encoding "${coding}"`));
      }
      const headers = new Headers();
      for (let i = 0; i + 1 < message.rawHeaders.length; i += 2) {
        headers.append(message.rawHeaders[i]!, message.rawHeaders[i + 1]!);
      }
      const status = message.statusCode ?? 0;
      if (NULL_BODY_STATUSES.has(status)) {
        message.destroy();
        return resolve(new Response(null, { status, headers }));
      }
      resolve(new Response(Readable.toWeb(message) as ReadableStream<Uint8Array>, { status, headers }));
    });
    request.end();
  });
}

/** Statuses a `Response` must have no body for (Fetch standard). */
const NULL_BODY_STATUSES = new Set([204, 205, 304]);

function unbracketed(host: string): string {
  return host.replace(/^\[|\]$/g, "");
}

function isIPAddress(host: string): boolean {
  return parseIPv4(host) !== undefined || parseIPv6(host) !== undefined;
}
