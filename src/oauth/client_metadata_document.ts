import { OAuthError } from "./errors.ts";

/** Limits on fetching a client ID metadata document (CIMD): an attacker chooses the URL. */
const FETCH_TIMEOUT_MS = 5000;
const MAX_DOCUMENT_BYTES = 64 * 1024;
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

/** True for addresses a fetch on behalf of a stranger must never reach (SSRF). */
export function isPrivateAddress(address: string): boolean {
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(address);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 0 || a === 10 || a === 127 || (a === 169 && b === 254) ||
      (a === 172 && b >= 16 && b <= 31) ||
      (a === 192 && b === 168) || (a === 100 && b >= 64 && b <= 127) || a >= 224;
  }
  const v6 = address.toLowerCase().replace(/^\[|\]$/g, "");
  // IPv4-mapped (::ffff:a.b.c.d or ::ffff:7f00:1) and NAT64 (64:ff9b::/96) addresses carry an IPv4 one.
  const embedded = /^(?:::ffff:|64:ff9b::)(?:(\d+\.\d+\.\d+\.\d+)|([0-9a-f]{1,4}):([0-9a-f]{1,4}))$/.exec(v6);
  if (embedded) {
    if (embedded[1]) return isPrivateAddress(embedded[1]);
    const high = parseInt(embedded[2]!, 16);
    const low = parseInt(embedded[3]!, 16);
    return isPrivateAddress(`${high >> 8}.${high & 255}.${low >> 8}.${low & 255}`);
  }
  if (v6.startsWith("64:ff9b:")) return true;
  return v6 === "::" || v6 === "::1" || v6.startsWith("fc") || v6.startsWith("fd") || v6.startsWith("fe8") ||
    v6.startsWith("fe9") || v6.startsWith("fea") || v6.startsWith("feb") || v6.startsWith("ff");
}

export interface MetadataDocumentFetcher {
  /** Resolves a host name to its addresses. */
  resolve(hostname: string): Promise<string[]>;
  fetch(url: string, init: RequestInit): Promise<Response>;
  /** Tests serve documents on 127.0.0.1; production never allows it. */
  allowPrivateAddresses?: boolean;
}

export const defaultFetcher: MetadataDocumentFetcher = {
  async resolve(hostname) {
    if (/^[\d.]+$/.test(hostname) || hostname.includes(":")) return [hostname.replace(/^\[|\]$/g, "")];
    const records = await Promise.allSettled([
      Deno.resolveDns(hostname, "A"),
      Deno.resolveDns(hostname, "AAAA"),
    ]);
    return records.flatMap((record) => record.status === "fulfilled" ? record.value : []);
  },
  fetch: (url, init) => fetch(url, init),
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
  const addresses = await fetcher.resolve(url.hostname);
  if (addresses.length === 0) throw new OAuthError("invalid_client", "The client id's host does not resolve");
  if (!fetcher.allowPrivateAddresses && addresses.some(isPrivateAddress)) {
    throw new OAuthError("invalid_client", "The client id's host resolves to a private address");
  }
  let response: Response;
  try {
    response = await fetcher.fetch(clientId, {
      redirect: "manual",
      headers: { accept: "application/json" },
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
  } catch {
    throw new OAuthError("invalid_client", "The client metadata document could not be fetched");
  }
  if (response.status !== 200) {
    await response.body?.cancel();
    throw new OAuthError("invalid_client", "The client metadata document could not be fetched");
  }
  const body = await readBounded(response, MAX_DOCUMENT_BYTES);
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
