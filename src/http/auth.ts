import type { Registry } from "../config/types.ts";
import { ANONYMOUS, type Caller } from "../mcp/caller.ts";

/**
 * The one place a request becomes a Caller. `gateway.auth: none` (loopback only) makes everyone
 * "anonymous"; with `oauth`, a bearer token is required.
 */
export function authenticate(request: Request, registry: Registry, publicUrl: string): Caller | Response {
  if (registry.gateway.auth === "none") return ANONYMOUS;
  const metadata = `${publicUrl}/.well-known/oauth-protected-resource${new URL(request.url).pathname}`;
  return Response.json(
    { jsonrpc: "2.0", id: null, error: { code: -32001, message: "Authentication required" } },
    { status: 401, headers: { "www-authenticate": `Bearer resource_metadata="${metadata}"` } },
  );
}
