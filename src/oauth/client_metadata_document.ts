// Fetches and checks client ID metadata documents (CIMD, draft-ietf-oauth-client-id-metadata-document):
// a stranger chooses the URL, so the request goes to one checked public address, bounded in time and size.
import { isPublicAddress, parseIPv4, parseIPv6 } from "./address_ranges.ts";
import { OAuthError } from "./errors.ts";

/** Limits on fetching a client ID metadata document (CIMD): an attacker chooses the URL. */
const FETCH_TIMEOUT_MS = 5000;
const MAX_DOCUMENT_BYTES = 64 * 1024;
/** Status line and header fields of the response together. */
const MAX_RESPONSE_HEAD_BYTES = 16 * 1024;
const READ_CHUNK_BYTES = 16 * 1024;
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
    if (parseIPv4(hostname) !== undefined || parseIPv6(hostname)) return [hostname.replace(/^\[|\]$/g, "")];
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
  const reader = response.body?.getReader();
  if (!reader) return "";
  const chunks: Uint8Array[] = [];
  let size = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > maxBytes) {
      await reader.cancel();
      throw new OAuthError("invalid_client", "The client metadata document is too large");
    }
    chunks.push(value);
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.length;
  }
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
 * GETs `url` with HTTP/1.1 (RFC 9112) over a TCP connection to `address`, never resolving the URL's host
 * name: for https the TLS handshake still sends it (SNI) and checks the certificate against it. Deno's
 * fetch cannot pin so: a `Deno.createHttpClient` `tcp` proxy sends https requests unencrypted.
 * `caCerts` adds trusted roots (tests).
 */
export async function fetchFromAddress(
  url: string,
  address: string,
  init: MetadataDocumentRequest,
  options: { caCerts?: string[] } = {},
): Promise<Response> {
  const target = new URL(url);
  const secure = target.protocol === "https:";
  if (!secure && target.protocol !== "http:") {
    throw new TypeError(`Cannot fetch "${url}": not an http(s) URL`);
  }
  const hostname = address.replace(/^\[|\]$/g, "");
  if (parseIPv4(hostname) === undefined && !parseIPv6(hostname)) {
    throw new TypeError(`Cannot fetch "${url}": "${address}" is not an IP address`);
  }
  const request = [`GET ${target.pathname}${target.search} HTTP/1.1`, `host: ${target.host}`];
  for (const [name, value] of Object.entries({ ...init.headers, "accept-encoding": "identity" })) {
    if (!/^[!#$%&'*+.^_`|~0-9a-z-]+$/i.test(name) || /[\r\n\0]/.test(value)) {
      throw new TypeError(`Cannot fetch "${url}": bad header "${name}"`);
    }
    request.push(`${name}: ${value}`);
  }
  request.push("connection: close", "", "");
  const exchange = new PinnedExchange(init.signal);
  try {
    const tcp = await exchange.open(
      Deno.connect({ hostname, port: Number(target.port) || (secure ? 443 : 80) }),
    );
    if (secure) {
      const serverName = target.hostname.replace(/^\[|\]$/g, "");
      await exchange.open(Deno.startTls(tcp, { hostname: serverName, caCerts: options.caCerts }));
    }
    await exchange.write(new TextEncoder().encode(request.join("\r\n")));
    return await exchange.response();
  } catch (error) {
    exchange.close();
    throw error;
  }
}

/** One request and its response over one connection, which the signal (or the body's end) closes. */
class PinnedExchange {
  readonly #signal: AbortSignal;
  readonly #aborted: Promise<never>;
  readonly #onAbort = () => this.close();
  #conn: Deno.Conn | undefined;
  #pending = new Uint8Array(0);
  #closed = false;

  constructor(signal: AbortSignal) {
    this.#signal = signal;
    this.#aborted = new Promise<never>((_, reject) => {
      const abort = () => reject(signal.reason);
      if (signal.aborted) abort();
      else signal.addEventListener("abort", abort, { once: true });
    });
    this.#aborted.catch(() => {});
    signal.addEventListener("abort", this.#onAbort, { once: true });
  }

  /** Adopts the connection `opening` yields (closing one that arrives after an abort). */
  async open<Conn extends Deno.Conn>(opening: Promise<Conn>): Promise<Conn> {
    try {
      const conn = await Promise.race([opening, this.#aborted]);
      this.#conn = conn;
      return conn;
    } catch (error) {
      opening.then((late) => late.close(), () => {});
      throw error;
    }
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn?.close();
    } catch {
      // Already closed by the peer or by TLS taking it over.
    }
  }

  async write(bytes: Uint8Array): Promise<void> {
    for (let written = 0; written < bytes.length;) {
      written += await Promise.race([this.#connection().write(bytes.subarray(written)), this.#aborted]);
    }
  }

  /** Reads the response head (skipping 1xx, RFC 9110 §15.2) and streams the body as framed (RFC 9112 §6.3). */
  async response(): Promise<Response> {
    let head = await this.#head();
    while (head.status >= 100 && head.status < 200) {
      if (head.status === 101) throw new Error("Cannot read the response: an unrequested protocol switch");
      head = await this.#head();
    }
    const { status, headers } = head;
    const coding = headers.get("content-encoding");
    if (coding !== null && coding.trim().toLowerCase() !== "identity") {
      throw new Error(`Cannot read the response: content-encoding "${coding}"`);
    }
    if (status === 204 || status === 304) {
      this.close();
      return new Response(null, { status, headers });
    }
    const next = this.#bodyReader(headers);
    const body = new ReadableStream<Uint8Array>({
      pull: async (controller) => {
        try {
          const chunk = await next();
          if (chunk) return controller.enqueue(chunk);
          this.close();
          controller.close();
        } catch (error) {
          this.close();
          controller.error(error);
        }
      },
      cancel: () => this.close(),
    });
    return new Response(body, { status, headers });
  }

  /** The next body chunk, or undefined at its end, per Transfer-Encoding or Content-Length. */
  #bodyReader(headers: Headers): () => Promise<Uint8Array | undefined> {
    const transferEncoding = headers.get("transfer-encoding");
    const contentLength = headers.get("content-length");
    if (transferEncoding !== null) {
      // RFC 9112 §6.3: both framings at once is how requests are smuggled; only chunked is understood.
      if (contentLength !== null || transferEncoding.trim().toLowerCase() !== "chunked") {
        throw new Error(`Cannot read the response: transfer-encoding "${transferEncoding}"`);
      }
      return this.#chunkedReader();
    }
    if (contentLength !== null) {
      const lengths = new Set(contentLength.split(",").map((length) => length.trim()));
      const [length] = lengths;
      if (lengths.size !== 1 || !/^\d{1,15}$/.test(length!)) {
        throw new Error(`Cannot read the response: content-length "${contentLength}"`);
      }
      let remaining = Number(length);
      return async () => {
        if (remaining === 0) return undefined;
        const chunk = await this.#readSome(Math.min(remaining, READ_CHUNK_BYTES));
        if (!chunk) throw new Error("Cannot read the response: it ended before its content-length");
        remaining -= chunk.length;
        return chunk;
      };
    }
    return () => this.#readSome(READ_CHUNK_BYTES);
  }

  /** RFC 9112 §7.1: chunk-size [ext] CRLF data CRLF ..., a last chunk of 0, trailer fields, CRLF. */
  #chunkedReader(): () => Promise<Uint8Array | undefined> {
    let remaining = 0;
    let ended = false;
    return async () => {
      if (ended) return undefined;
      if (remaining === 0) {
        const size = /^([0-9a-f]{1,8})[ \t]*(?:;.*)?$/i.exec(await this.#line());
        if (!size) throw new Error("Cannot read the response: a bad chunk size");
        remaining = parseInt(size[1]!, 16);
        if (remaining === 0) {
          while (await this.#line() !== "");
          ended = true;
          return undefined;
        }
      }
      const chunk = await this.#readSome(Math.min(remaining, READ_CHUNK_BYTES));
      if (!chunk) throw new Error("Cannot read the response: it ended inside a chunk");
      remaining -= chunk.length;
      if (remaining === 0 && await this.#line() !== "") {
        throw new Error("Cannot read the response: a chunk overran its size");
      }
      return chunk;
    };
  }

  async #head(): Promise<{ status: number; headers: Headers }> {
    let end: number;
    while ((end = indexOfSequence(this.#pending, HEAD_END)) < 0) {
      if (this.#pending.length > MAX_RESPONSE_HEAD_BYTES || !await this.#fill()) {
        throw new Error("Cannot read the response: no complete head");
      }
    }
    if (end > MAX_RESPONSE_HEAD_BYTES) throw new Error("Cannot read the response: its head is too large");
    const [statusLine, ...fields] = LATIN1.decode(this.#pending.subarray(0, end)).split("\r\n");
    this.#pending = this.#pending.subarray(end + HEAD_END.length);
    const status = /^HTTP\/1\.[01] ([1-5]\d\d)(?: .*)?$/.exec(statusLine!);
    if (!status) throw new Error(`Cannot read the response: status line "${statusLine}"`);
    const headers = new Headers();
    for (const field of fields) {
      // RFC 9112 §5.2: obsolete line folding (a line starting with white space) is refused with the rest.
      const match = /^([!#$%&'*+.^_`|~0-9a-z-]+):[ \t]*(.*?)[ \t]*$/i.exec(field);
      if (!match) throw new Error(`Cannot read the response: header line "${field}"`);
      headers.append(match[1]!, match[2]!);
    }
    return { status: Number(status[1]), headers };
  }

  /** A CRLF-terminated line (chunk sizes, trailers), without its CRLF. */
  async #line(): Promise<string> {
    let end: number;
    while ((end = indexOfSequence(this.#pending, CRLF)) < 0) {
      if (this.#pending.length > MAX_RESPONSE_HEAD_BYTES || !await this.#fill()) {
        throw new Error("Cannot read the response: a line did not end");
      }
    }
    const line = LATIN1.decode(this.#pending.subarray(0, end));
    this.#pending = this.#pending.subarray(end + CRLF.length);
    return line;
  }

  /** Up to `maxBytes` bytes, or undefined once the peer has closed. */
  async #readSome(maxBytes: number): Promise<Uint8Array | undefined> {
    if (this.#pending.length === 0 && !await this.#fill()) return undefined;
    const chunk = this.#pending.slice(0, maxBytes);
    this.#pending = this.#pending.subarray(chunk.length);
    return chunk;
  }

  /** Reads more from the connection into the pending bytes; false once the peer has closed. */
  async #fill(): Promise<boolean> {
    const buffer = new Uint8Array(READ_CHUNK_BYTES);
    const read = await Promise.race([this.#connection().read(buffer), this.#aborted]);
    if (read === null) return false;
    const joined = new Uint8Array(this.#pending.length + read);
    joined.set(this.#pending);
    joined.set(buffer.subarray(0, read), this.#pending.length);
    this.#pending = joined;
    return true;
  }

  #connection(): Deno.Conn {
    this.#signal.throwIfAborted();
    if (!this.#conn || this.#closed) throw new Error("Cannot use the connection: it is closed");
    return this.#conn;
  }
}

const CRLF = new Uint8Array([13, 10]);
const HEAD_END = new Uint8Array([13, 10, 13, 10]);
const LATIN1 = new TextDecoder("latin1");

function indexOfSequence(bytes: Uint8Array, sequence: Uint8Array): number {
  outer: for (let start = 0; start + sequence.length <= bytes.length; start++) {
    for (let offset = 0; offset < sequence.length; offset++) {
      if (bytes[start + offset] !== sequence[offset]) continue outer;
    }
    return start;
  }
  return -1;
}
