// Where and how Gatehouse talks to a third-party service's authorization server: its endpoints (from the
// registry, else discovered and cached) and how it authenticates at the token endpoint.
import * as oauth from "oauth4webapi";
import type { ServiceSettings } from "../config/types.ts";
import { insecureAllowed } from "../core/urls.ts";

/** Services' authorization servers, discovered once per issuer (a failed discovery is tried again). */
export class ServiceEndpoints {
  readonly #servers = new Map<string, Promise<oauth.AuthorizationServer>>();

  /** The service's endpoints: given in the registry, else discovered (RFC 8414, then OIDC). */
  server(service: ServiceSettings): Promise<oauth.AuthorizationServer> {
    if (service.authorizationEndpoint && service.tokenEndpoint) {
      return Promise.resolve({
        issuer: service.issuer ?? new URL(service.authorizationEndpoint).origin,
        authorization_endpoint: service.authorizationEndpoint,
        token_endpoint: service.tokenEndpoint,
      });
    }
    const issuerText = service.issuer!;
    let server = this.#servers.get(issuerText);
    if (!server) {
      const issuer = new URL(issuerText);
      const options = { [oauth.allowInsecureRequests]: insecureAllowed(issuerText) };
      server = oauth.discoveryRequest(issuer, { ...options, algorithm: "oauth2" })
        .then((response) => oauth.processDiscoveryResponse(issuer, response))
        .catch(() =>
          oauth.discoveryRequest(issuer, { ...options, algorithm: "oidc" })
            .then((response) => oauth.processDiscoveryResponse(issuer, response))
        );
      this.#servers.set(issuerText, server);
      server.catch(() => this.#servers.delete(issuerText));
    }
    return server;
  }
}

/** The client authentication Gatehouse uses at the service's token endpoint. */
export function serviceClientAuth(
  service: ServiceSettings,
  server: oauth.AuthorizationServer,
): oauth.ClientAuth {
  const method = chooseTokenEndpointAuthMethod(service, server);
  if (method === "none" || !service.clientSecret) return oauth.None();
  return method === "client_secret_post"
    ? oauth.ClientSecretPost(service.clientSecret)
    : oauth.ClientSecretBasic(service.clientSecret);
}

/**
 * How Gatehouse authenticates at a service's token endpoint: the registry's setting; else, with a secret,
 * `client_secret_post` unless the service's metadata (RFC 8414 §2) lists only `client_secret_basic` of the
 * two. Post first because many servers do not decode the form-encoded Basic credentials oauth4webapi
 * sends (RFC 6749 §2.3.1), so a secret with `+`, `/`, `=` or `:` fails there; and when the metadata lists
 * nothing, or the endpoints were given by hand, GitHub, Google and most providers accept post (RFC 8414
 * would assume Basic). When it lists neither, Basic, which every server must support (RFC 6749 §2.3.1).
 */
export function chooseTokenEndpointAuthMethod(
  service: Pick<ServiceSettings, "tokenEndpointAuthMethod" | "clientSecret">,
  server: Pick<oauth.AuthorizationServer, "token_endpoint_auth_methods_supported">,
): "client_secret_basic" | "client_secret_post" | "none" {
  if (!service.clientSecret) return "none";
  if (service.tokenEndpointAuthMethod) return service.tokenEndpointAuthMethod;
  const supported = server.token_endpoint_auth_methods_supported ?? [];
  if (supported.length === 0 || supported.includes("client_secret_post")) return "client_secret_post";
  return "client_secret_basic";
}
