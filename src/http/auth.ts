/** Authentication of `/mcp`: the one place a request becomes a Caller, or a 401 with its challenge. */
import { JSONRPC, jsonRpcErrorResponse } from "../core/jsonrpc.ts";
import type { Registry } from "../config/types.ts";
import { ANONYMOUS, type Caller } from "../core/caller.ts";
import { InvalidTokenError, verifyAccessToken } from "../oauth/access_token.ts";
import type { SigningKey } from "../oauth/keys.ts";

/** What the authentication step needs to check a bearer token. */
export interface TokenChecker {
  readonly key: SigningKey;
  isRevoked(jti: string): boolean;
}

/**
 * The one place a request to `/mcp` or `/mcp/{backend}` becomes a Caller. `gateway.auth: none`
 * (loopback only) makes everyone "anonymous"; with `oauth` a bearer token for this resource is required:
 * `/mcp/{backend}` accepts tokens for itself or for `/mcp`. Anything else is a 401 pointing at the
 * protected resource metadata (RFC 9728 §5.1).
 */
export async function authenticate(
  request: Request,
  registry: Registry,
  baseUrl: string,
  backend: string | undefined,
  checker: TokenChecker | undefined,
): Promise<Caller | Response> {
  if (registry.gateway.auth === "none") return ANONYMOUS;
  const resource = backend === undefined ? `${baseUrl}/mcp` : `${baseUrl}/mcp/${backend}`;
  const metadataUrl = `${baseUrl}/.well-known/oauth-protected-resource${new URL(resource).pathname}`;
  const challenge = (error?: string) =>
    jsonRpcErrorResponse(401, JSONRPC.authenticationRequired, "Authentication required", {
      headers: {
        "www-authenticate": `Bearer resource_metadata="${metadataUrl}"${error ? `, error="${error}"` : ""}`,
      },
    });
  const authorization = request.headers.get("authorization") ?? "";
  if (!authorization.toLowerCase().startsWith("bearer ") || !checker) return challenge();
  try {
    const claims = await verifyAccessToken(authorization.slice(7).trim(), checker.key, {
      issuer: baseUrl,
      audiences: backend === undefined ? [resource] : [resource, `${baseUrl}/mcp`],
      isRevoked: (jti) => checker.isRevoked(jti),
    });
    return {
      id: claims.id,
      name: claims.name,
      email: claims.email,
      groups: claims.groups,
      clientId: claims.clientId,
      provider: claims.provider,
    };
  } catch (error) {
    if (error instanceof InvalidTokenError) return challenge("invalid_token");
    throw error;
  }
}
