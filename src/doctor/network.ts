/** Doctor checks over the network: a URL answers, an OAuth or OIDC issuer publishes its metadata. */
import * as oauth from "oauth4webapi";
import { insecureAllowed } from "../core/urls.ts";
import type { Verdict } from "./verdict.ts";

/** What the network checks need: how to fetch, and how long one check may take. */
export interface NetworkOptions {
  readonly fetch: typeof fetch;
  readonly timeoutMs: number;
}

/** A URL as it may be printed: no user info, query or fragment, which can carry credentials. */
export function displayUrl(url: string): string {
  try {
    const { protocol, host, pathname } = new URL(url);
    return `${protocol}//${host}${pathname}`;
  } catch {
    return "(not a URL)";
  }
}

/** Why a request failed, without the URL (Deno's messages quote it whole, query string included). */
export function describeRequestError(error: unknown, timeoutMs: number): string {
  if (error instanceof DOMException && (error.name === "TimeoutError" || error.name === "AbortError")) {
    return `no answer within ${formatSeconds(timeoutMs)}`;
  }
  const cause = error instanceof Error && error.cause instanceof Error ? error.cause : undefined;
  const message = cause?.message ?? (error instanceof Error ? error.message : String(error));
  return message
    .replace(/^error sending request for url \([^)]*\):\s*/, "")
    .replace(/^client error \(Connect\):\s*/, "")
    .replace(/\b[a-z][a-z0-9+.-]*:\/\/\S+/gi, "(url)")
    .split("\n")[0]!;
}

function formatSeconds(milliseconds: number): string {
  return milliseconds % 1000 === 0 ? `${milliseconds / 1000} s` : `${milliseconds} ms`;
}

/**
 * Whether `url` answers at all: any HTTP status counts as reachable (an MCP endpoint answers a bare GET
 * with 401, 405 or 406); a 5xx is a warning; no answer within the bound, or no connection, fails.
 */
export async function probeReachable(
  url: string,
  headers: Record<string, string>,
  options: NetworkOptions,
): Promise<Verdict> {
  const started = performance.now();
  try {
    const response = await options.fetch(url, {
      method: "GET",
      headers: { accept: "application/json, text/event-stream", ...headers },
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
    // Only the status matters; an SSE endpoint would otherwise keep the stream open.
    await response.body?.cancel().catch(() => {});
    const elapsed = `${Math.round(performance.now() - started)} ms`;
    if (response.status >= 500) {
      return {
        result: "warn",
        detail: `${displayUrl(url)} is reachable but answered HTTP ${response.status} (${elapsed})`,
      };
    }
    return { result: "ok", detail: `${displayUrl(url)} answered HTTP ${response.status} (${elapsed})` };
  } catch (error) {
    return {
      result: "FAIL",
      detail: `${displayUrl(url)}: ${describeRequestError(error, options.timeoutMs)}`,
    };
  }
}

/** Answers that say no token endpoint is at a URL: nothing there, or nothing that takes a POST. */
const NOT_A_TOKEN_ENDPOINT = new Set([404, 405, 410]);

/**
 * Whether `url` is a token endpoint: it gets a token request that cannot succeed (an authorization code
 * grant with the client id and no code, no secret), which a token endpoint refuses with 400 or 401
 * (RFC 6749 §5.2), or as GitHub does, with 200 and an error. A 404 (or 405, 410) means the URL is wrong, or
 * that the service does not know the client id (GitHub answers so); a 5xx is a warning.
 * @see https://www.rfc-editor.org/rfc/rfc6749#section-3.2
 */
export async function probeTokenEndpoint(
  url: string,
  clientId: string,
  options: NetworkOptions,
): Promise<Verdict> {
  const started = performance.now();
  let response: Response;
  try {
    response = await options.fetch(url, {
      method: "POST",
      headers: { accept: "application/json", "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ grant_type: "authorization_code", client_id: clientId }),
      redirect: "manual",
      signal: AbortSignal.timeout(options.timeoutMs),
    });
  } catch (error) {
    return {
      result: "FAIL",
      detail: `${displayUrl(url)}: ${describeRequestError(error, options.timeoutMs)}`,
    };
  }
  await response.body?.cancel().catch(() => {});
  const answered = `${displayUrl(url)} answered a token request with HTTP ${response.status}`;
  const elapsed = `${Math.round(performance.now() - started)} ms`;
  if (NOT_A_TOKEN_ENDPOINT.has(response.status)) {
    return {
      result: "FAIL",
      detail: `${answered}: no token endpoint there (check token_endpoint), or the service does not know ` +
        "client_id",
    };
  }
  if (response.status >= 500) return { result: "warn", detail: `${answered} (${elapsed})` };
  return { result: "ok", detail: `${answered} (${elapsed})` };
}

const WELL_KNOWN = { oauth2: "oauth-authorization-server", oidc: "openid-configuration" } as const;

/**
 * Fetches an issuer's metadata the way the gateway will: RFC 8414 `/.well-known/oauth-authorization-server`
 * and/or OpenID Connect Discovery `/.well-known/openid-configuration`, in the order given, within one bound.
 * @see https://www.rfc-editor.org/rfc/rfc8414#section-3
 */
export async function probeDiscovery(
  issuer: string,
  algorithms: readonly ("oauth2" | "oidc")[],
  options: NetworkOptions,
): Promise<Verdict> {
  const issuerUrl = new URL(issuer);
  const signal = AbortSignal.timeout(options.timeoutMs);
  const misses: string[] = [];
  for (const algorithm of algorithms) {
    const document = `/.well-known/${WELL_KNOWN[algorithm]}`;
    let response: Response;
    try {
      response = await oauth.discoveryRequest(issuerUrl, {
        algorithm,
        signal,
        [oauth.customFetch]: options.fetch,
        [oauth.allowInsecureRequests]: insecureAllowed(issuer),
      });
    } catch (error) {
      // No connection (or no time left): the other document lives on the same host.
      return {
        result: "FAIL",
        detail: `${displayUrl(issuer)}: ${describeRequestError(error, options.timeoutMs)}`,
      };
    }
    if (!response.ok) {
      await response.body?.cancel().catch(() => {});
      misses.push(`${document} answered HTTP ${response.status}`);
      continue;
    }
    let server: oauth.AuthorizationServer;
    try {
      server = await oauth.processDiscoveryResponse(issuerUrl, response);
    } catch (error) {
      misses.push(`${document}: ${describeRequestError(error, options.timeoutMs)}`);
      continue;
    }
    if (!server.token_endpoint || !server.authorization_endpoint) {
      misses.push(`${document} names no authorization_endpoint or token_endpoint`);
      continue;
    }
    return {
      result: "ok",
      detail: `${displayUrl(issuer)}: ${document} found; token endpoint ${displayUrl(server.token_endpoint)}`,
    };
  }
  return { result: "FAIL", detail: `${displayUrl(issuer)}: no usable metadata: ${misses.join("; ")}` };
}
