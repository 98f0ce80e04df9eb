import { LOOPBACK_URL_HOSTNAMES } from "../config/schema.ts";
import type { GatewaySettings } from "../config/types.ts";

function hostnameOf(hostHeader: string): string {
  return hostHeader.startsWith("[")
    ? hostHeader.slice(0, hostHeader.indexOf("]") + 1)
    : hostHeader.split(":")[0]!;
}

/**
 * Refuses requests whose Host is not a name of this gateway, and browser requests from an Origin
 * that is not allowed: a web page must not reach a local MCP server by DNS rebinding
 * (MCP 2025-11-25, Streamable HTTP security warning). Returns the 403 to send, or undefined.
 */
export function checkHostAndOrigin(
  request: Request,
  gateway: GatewaySettings,
  listenUrl: string,
): Response | undefined {
  const publicUrl = new URL(gateway.publicUrl ?? listenUrl);
  const hosts = new Set([
    ...LOOPBACK_URL_HOSTNAMES,
    publicUrl.hostname.toLowerCase(),
    new URL(listenUrl).hostname,
  ]);
  const host = request.headers.get("host");
  if (!host || !hosts.has(hostnameOf(host.toLowerCase()))) return forbidden("Host not allowed");
  const origin = request.headers.get("origin");
  if (origin !== null) {
    const allowed = new Set([publicUrl.origin, new URL(listenUrl).origin, ...gateway.allowedOrigins]);
    if (!allowed.has(origin)) return forbidden("Origin not allowed");
  }
  return undefined;
}

function forbidden(message: string): Response {
  return Response.json({ jsonrpc: "2.0", id: null, error: { code: -32600, message } }, { status: 403 });
}
