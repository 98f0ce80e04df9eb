// Host and Origin checks on /mcp against DNS rebinding (MCP 2025-11-25, Streamable HTTP security warning),
// and the one rule of which browser Origins may call the gateway.
import { JSONRPC, jsonRpcErrorResponse } from "../core/jsonrpc.ts";
import { LOOPBACK_URL_HOSTNAMES } from "../core/urls.ts";
import type { GatewaySettings } from "../config/types.ts";

/** What the checks read of the gateway's settings. */
export type OriginSettings = Pick<GatewaySettings, "auth" | "publicUrl" | "allowedOrigins">;

function hostnameOf(hostHeader: string): string {
  return hostHeader.startsWith("[")
    ? hostHeader.slice(0, hostHeader.indexOf("]") + 1)
    : hostHeader.split(":")[0]!;
}

/**
 * Whether a page of `origin` may call the gateway. With `auth: none` only the gateway's own origins and
 * `allowed_origins`: anything that reaches it is served. With `auth: oauth` any: only a bearer token gets
 * an answer, a browser never attaches one by itself, and /mcp uses no cookies.
 */
export function isOriginAllowed(origin: string, gateway: OriginSettings, listenUrl?: string): boolean {
  if (gateway.auth === "oauth") return true;
  const own = [gateway.publicUrl, listenUrl].flatMap((url) => url === undefined ? [] : [new URL(url).origin]);
  return own.includes(origin) || gateway.allowedOrigins.includes(origin);
}

/**
 * Refuses requests whose Host is not a name of this gateway (both auth modes), and browser requests
 * from an Origin that `isOriginAllowed()` refuses. Returns the 403 to send, or undefined.
 */
export function checkHostAndOrigin(
  request: Request,
  gateway: OriginSettings,
  listenUrl: string,
): Response | undefined {
  const hosts = new Set([
    ...LOOPBACK_URL_HOSTNAMES,
    new URL(gateway.publicUrl ?? listenUrl).hostname.toLowerCase(),
    new URL(listenUrl).hostname,
  ]);
  const host = request.headers.get("host");
  if (!host || !hosts.has(hostnameOf(host.toLowerCase()))) return forbidden("Host not allowed");
  const origin = request.headers.get("origin");
  if (origin !== null && !isOriginAllowed(origin, gateway, listenUrl)) return forbidden("Origin not allowed");
  return undefined;
}

function forbidden(message: string): Response {
  return jsonRpcErrorResponse(403, JSONRPC.invalidRequest, message);
}
