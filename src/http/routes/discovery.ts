// Discovery: authorization server metadata (RFC 8414), protected resource metadata (RFC 9728), the JWKS.
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { SUPPORTED_SCOPES } from "../../oauth/scopes.ts";
import type { SigningKey } from "../../oauth/keys.ts";

export interface DiscoveryRouteDependencies {
  /** The public base URL: the issuer, and the prefix of every endpoint. */
  baseUrl: () => string;
  /** The key whose public half `/jwks.json` serves. */
  key: Pick<SigningKey, "publicJwk" | "verificationKeys">;
}

/** Mounts the metadata documents at every path clients look for them, and `/jwks.json`. */
export function mountDiscoveryRoutes(app: Hono<AppEnv>, deps: DiscoveryRouteDependencies): void {
  const metadata = (c: Context<AppEnv>) => {
    const base = deps.baseUrl();
    const { registration } = c.get("snapshot").registry.gateway;
    return {
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwks.json`,
      ...(registration === "open" ? { registration_endpoint: `${base}/register` } : {}),
      revocation_endpoint: `${base}/revoke`,
      introspection_endpoint: `${base}/introspect`,
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      scopes_supported: [...SUPPORTED_SCOPES],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    };
  };
  const serveMetadata = (c: Context<AppEnv>) => c.json(metadata(c), 200, { "cache-control": "max-age=300" });
  // Clients look for these at several paths (RFC 8414 §3, OIDC discovery, and path-inserted forms).
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    app.get(path, serveMetadata);
    app.get(`${path}/mcp`, serveMetadata);
    app.get(`${path}/mcp/:backend`, serveMetadata);
  }
  app.get("/mcp/.well-known/openid-configuration", serveMetadata);

  const protectedResource = (c: Context<AppEnv>, resource: string) =>
    c.json(
      {
        resource,
        authorization_servers: [deps.baseUrl()],
        bearer_methods_supported: ["header"],
        scopes_supported: ["mcp"],
        resource_name: "Gatehouse",
      },
      200,
      { "cache-control": "max-age=300" },
    );
  app.get("/.well-known/oauth-protected-resource", (c) => protectedResource(c, `${deps.baseUrl()}/mcp`));
  app.get("/.well-known/oauth-protected-resource/mcp", (c) => protectedResource(c, `${deps.baseUrl()}/mcp`));
  app.get("/.well-known/oauth-protected-resource/mcp/:backend", (c) => {
    const backend = c.req.param("backend");
    if (!Object.hasOwn(c.get("snapshot").registry.backends, backend)) {
      return c.json({ error: "not_found" }, 404);
    }
    return protectedResource(c, `${deps.baseUrl()}/mcp/${backend}`);
  });

  app.get(
    "/jwks.json",
    (c) =>
      c.json({ keys: deps.key.verificationKeys?.() ?? [deps.key.publicJwk] }, 200, {
        "cache-control": "max-age=300",
      }),
  );
}
