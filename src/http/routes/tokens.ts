// The token endpoint (RFC 6749 §3.2), revocation (RFC 7009) and introspection (RFC 7662).
import type { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { verifyAccessToken } from "../../oauth/access_token.ts";
import type { AuthorizationServer } from "../../oauth/authorization_server.ts";
import type { ClientDirectory } from "../../oauth/clients.ts";
import type { SigningKey } from "../../oauth/keys.ts";
import { OAuthError } from "../../core/oauth_error.ts";
import { formOf } from "../request_helpers.ts";

export interface TokenRouteDependencies {
  server: Pick<AuthorizationServer, "token" | "revoke" | "issuer" | "resources" | "isRevoked">;
  clients: Pick<ClientDirectory, "authenticate">;
  /** The key access tokens are signed with, to read the one being revoked or introspected. */
  key: SigningKey;
}

/** Mounts `POST /token`, `POST /revoke` and `POST /introspect`; each authenticates the client first. */
export function mountTokenRoutes(app: Hono<AppEnv>, deps: TokenRouteDependencies): void {
  const { server, clients } = deps;
  app.post("/token", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    const tokens = await server.token(client, form);
    return c.json(tokens, 200, { "cache-control": "no-store", pragma: "no-cache" });
  });

  app.post("/revoke", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    const token = form.get("token");
    if (!token) throw new OAuthError("invalid_request", "token is missing");
    const access = await verifyAccessToken(token, deps.key, {
      issuer: server.issuer,
      audiences: server.resources(),
      isRevoked: () => false,
    }).catch(() => undefined);
    await server.revoke(
      client,
      token,
      access && access.clientId === client.clientId ? access.jti : undefined,
      access?.expiresAt,
    );
    return c.body(null, 200, { "cache-control": "no-store" });
  });

  app.post("/introspect", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    // RFC 7662 §4: only clients the administrator trusts with it, never a self-registered stranger.
    if (!client.mayIntrospect) {
      throw new OAuthError("invalid_client", "This client may not introspect tokens", 401);
    }
    const token = form.get("token") ?? "";
    const claims = await verifyAccessToken(token, deps.key, {
      issuer: server.issuer,
      audiences: server.resources(),
      isRevoked: (jti) => server.isRevoked(jti),
    }).catch(() => undefined);
    if (!claims) return c.json({ active: false }, 200, { "cache-control": "no-store" });
    return c.json(
      {
        active: true,
        iss: server.issuer,
        sub: claims.id,
        aud: claims.audience,
        client_id: claims.clientId,
        scope: claims.scope,
        exp: claims.expiresAt,
        jti: claims.jti,
        token_type: "Bearer",
        username: claims.name,
      },
      200,
      { "cache-control": "no-store" },
    );
  });
}
