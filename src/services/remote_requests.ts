// Requests to a remote MCP server and its authorization server, for discovery and registration: bounded in
// time and size, never redirected, their failures named by step and worded without secrets.
import { readAtMost } from "../core/streams.ts";
import { insecureAllowed } from "../core/urls.ts";

/** Each request of discovery and registration ends within this; an answer larger than the bound is refused. */
export const REMOTE_REQUEST_TIMEOUT_MS = 10_000;
export const MAX_REMOTE_ANSWER_BYTES = 256 * 1024;

/** The step at which finding out how to get a token for a remote server failed. */
export type RemoteOAuthStep =
  /** The unauthenticated MCP request to the server. */
  | "mcp_request"
  /** Finding, fetching or reading its protected resource metadata (RFC 9728). */
  | "resource_metadata"
  /** That metadata names another resource than the backend (RFC 9728 §3.3). */
  | "resource_mismatch"
  /** The authorization server's metadata (RFC 8414, OIDC discovery). */
  | "authorization_server"
  /** The authorization server does not support PKCE with S256. */
  | "pkce"
  /** Gatehouse cannot become, or did not become, a client of the authorization server. */
  | "registration";

/** A failure of discovery or registration, with the step it happened at as a stable `code`. */
export class RemoteOAuthError extends Error {
  readonly code: RemoteOAuthStep;

  constructor(code: RemoteOAuthStep, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RemoteOAuthError";
    this.code = code;
  }
}

/** A URL as it may appear in messages and logs: no query (it may hold a key), no user info. */
export function shown(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return JSON.stringify(url.slice(0, 100));
  }
}

/** https, or http to this machine (tests, a server beside Gatehouse). */
export function secureOrLoopback(url: string): boolean {
  try {
    return new URL(url).protocol === "https:" || insecureAllowed(url);
  } catch {
    return false;
  }
}

/** `fetch` bounded in time and size, never following redirects; the answer's body is read whole. */
export type BoundedFetch = (url: string, init?: RequestInit) => Promise<Response>;

export function boundedFetcher(fetchFn: typeof fetch, timeoutMs: number): BoundedFetch {
  return async (url, init = {}) => {
    const response = await fetchFn(url, {
      ...init,
      redirect: "manual",
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (NULL_BODY_STATUSES.has(response.status) || response.body === null) {
      await response.body?.cancel().catch(() => {});
      return new Response(null, { status: response.status, headers: response.headers });
    }
    const bytes = await readAtMost(response.body, MAX_REMOTE_ANSWER_BYTES);
    if (bytes === undefined) throw new Error(`its answer is larger than ${MAX_REMOTE_ANSWER_BYTES} bytes`);
    return new Response(bytes, { status: response.status, headers: response.headers });
  };
}

const NULL_BODY_STATUSES = new Set([101, 204, 205, 304]);

/**
 * The parameters of the `Bearer` challenge of a `WWW-Authenticate` value (RFC 9110 §11.6.1: challenges
 * separated by commas, each a scheme and `name=value` or `name="quoted"` parameters), if it has one.
 */
export function bearerChallenge(header: string): Map<string, string> | undefined {
  const token = /[!#$%&'*+\-.^_`|~0-9A-Za-z]+/y;
  let bearer: Map<string, string> | undefined;
  let inBearer = false;
  let i = 0;
  while (i < header.length) {
    const char = header[i]!;
    if (char === " " || char === "\t" || char === ",") {
      i += 1;
      continue;
    }
    token.lastIndex = i;
    const name = token.exec(header)?.[0];
    if (name === undefined) {
      i += 1; // not a token: skipped, the parse goes on
      continue;
    }
    i += name.length;
    while (header[i] === " " || header[i] === "\t") i += 1;
    if (header[i] !== "=") {
      // A scheme begins a challenge; only the first Bearer one counts.
      inBearer = name.toLowerCase() === "bearer" && bearer === undefined;
      if (inBearer) bearer = new Map();
      continue;
    }
    i += 1;
    while (header[i] === " " || header[i] === "\t") i += 1;
    let value = "";
    if (header[i] === '"') {
      i += 1;
      while (i < header.length && header[i] !== '"') {
        if (header[i] === "\\" && i + 1 < header.length) i += 1;
        value += header[i];
        i += 1;
      }
      i += 1;
    } else {
      // A token by the RFC; taken up to the next separator, as servers do send unquoted URLs.
      const start = i;
      while (i < header.length && header[i] !== "," && header[i] !== " " && header[i] !== "\t") i += 1;
      value = header.slice(start, i);
    }
    const key = name.toLowerCase();
    if (inBearer && !bearer!.has(key)) bearer!.set(key, value);
  }
  return bearer;
}

/** A JSON object answer, or a failure saying it is not one. */
export async function jsonObjectOf(response: Response): Promise<Record<string, unknown>> {
  let value: unknown;
  try {
    value = await response.json();
  } catch {
    throw new Error("its answer is not JSON");
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error("its answer is not a JSON object");
  }
  return value as Record<string, unknown>;
}

/** What went wrong, in words that hold no secret (a timeout, a refusal, a library's check). */
export function reason(error: unknown): string {
  if (error instanceof DOMException && error.name === "TimeoutError") return "no answer in time";
  if (error instanceof TypeError) return "the connection failed";
  if (error instanceof Error) return error.message;
  return String(error);
}
