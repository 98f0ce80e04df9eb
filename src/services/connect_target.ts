// What the connection flow needs of whatever a user connects to (a registry service, or an OAuth-protected
// backend): its authorization server, Gatehouse as its client, the scopes and the resource to ask for.
import type * as oauth from "oauth4webapi";

export interface ConnectTarget {
  /** The authorization server's metadata. */
  server(): Promise<oauth.AuthorizationServer>;
  /** Gatehouse as a client of that server, registered when needed, with how it authenticates at /token. */
  client(server: oauth.AuthorizationServer): Promise<{ client: oauth.Client; auth: oauth.ClientAuth }>;
  /** Scopes to ask for (configured, else the resource metadata's scopes_supported, else none). */
  scopes(): Promise<readonly string[]>;
  /** RFC 8707 resource indicator for authorization and token requests. */
  resource(): Promise<string | undefined>;
}
