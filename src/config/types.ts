/**
 * The resolved registry: every setting with its default filled in, as the rest of the gateway reads it.
 */
import type { Template } from "./template.ts";

/**
 * The resolved registry: validated, defaults filled, references to env and secrets substituted,
 * deeply frozen. Runtime objects are built from it; handlers read one snapshot per request.
 */
export interface Registry {
  /** Directory of the registry file; relative paths in it are resolved against it. */
  readonly baseDir: string;
  /** Every file the registry was read from (registry first, then policy files), absolute. */
  readonly files: readonly string[];
  readonly gateway: GatewaySettings;
  readonly login: {
    readonly users: Readonly<Record<string, LocalUser>>;
    readonly providers: Readonly<Record<string, LoginProvider>>;
  };
  readonly clients: Readonly<Record<string, StaticClient>>;
  readonly services: Readonly<Record<string, ServiceSettings>>;
  readonly backends: Readonly<Record<string, BackendSettings>>;
  readonly policies: readonly PolicyRule[];
  readonly limits: readonly RateLimit[];
}

export interface GatewaySettings {
  /** Base of the issuer, resource ids and links; undefined means "http://" + the listening address. */
  readonly publicUrl: string | undefined;
  readonly listen: { readonly hostname: string; readonly port: number };
  readonly dataDir: string;
  /** A PostgreSQL URL shared by several replicas; undefined: SQLite in the data directory. */
  readonly store: string | undefined;
  readonly policiesDir: string;
  readonly auth: "oauth" | "none";
  /** With `auth: none`, browser Origins allowed on /mcp, normalised to `scheme://host[:port]`. */
  readonly allowedOrigins: readonly string[];
  /** Addresses and CIDR ranges whose `X-Forwarded-For` is believed. */
  readonly trustedProxies: readonly string[];
  readonly statusPage: "public" | "users" | "admins";
  readonly registration: "open" | "off";
  /** Open registration: new clients per client address (IPv6: /64) and hour. */
  readonly registrationsPerHour: number;
  /** Dynamic clients that never obtained a grant are deleted after this long. */
  readonly unusedClientTtlSeconds: number;
  readonly accessTokenTtlSeconds: number;
  readonly refreshTokenTtlSeconds: number;
  readonly maxBodyBytes: number;
  /** How long a shutdown waits for in-flight requests before closing anyway. */
  readonly shutdownTimeoutSeconds: number;
  /** How long a client may take to send a request's headers; then the connection is closed. */
  readonly headerTimeoutSeconds: number;
  /** How long a client may take to send a request's body. */
  readonly bodyTimeoutSeconds: number;
  /** How long an idle keep-alive connection stays open. */
  readonly keepaliveTimeoutSeconds: number;
  /** Open connections in total; past it new ones are refused. */
  readonly maxConnections: number;
  /** Open connections of one client address (IPv6: its /64); past it new ones are refused. */
  readonly maxConnectionsPerAddress: number;
  /** A refresh token reused within this long of its rotation, its successor unused, is accepted once more. */
  readonly refreshReuseIntervalSeconds: number;
  /** 2025-era sessions one user may hold open; one more closes their least recently used. */
  readonly maxSessionsPerUser: number;
  /** How long `/mcp` waits for each backend's list; a slower one is shown as last known, or left out. */
  readonly listTimeoutSeconds: number;
  /** How long audit rows are kept. */
  readonly auditRetentionSeconds: number;
  /** The key for third-party tokens at rest; undefined: generated into the data directory. */
  readonly vaultKey: string | undefined;
  /** The bearer token for `/metrics` from anywhere but loopback; undefined: loopback only. */
  readonly metricsToken: string | undefined;
}

export interface LocalUser {
  readonly name: string;
  readonly passwordHash: string;
  readonly groups: readonly string[];
  readonly email: string | undefined;
}

export type LoginProvider =
  & { readonly name: string; readonly label: string; readonly clientId: string }
  & (
    | {
      readonly type: "github";
      readonly clientSecret: string;
      /** GitHub Enterprise Server endpoints; undefined means github.com. */
      readonly authorizationEndpoint: string | undefined;
      readonly tokenEndpoint: string | undefined;
      readonly apiUrl: string | undefined;
      readonly allow: { readonly users: readonly string[]; readonly orgs: readonly string[] };
    }
    | {
      readonly type: "oidc";
      readonly issuer: string;
      readonly clientSecret: string | undefined;
      readonly scopes: readonly string[];
      readonly groupsClaim: string;
      readonly allow: {
        readonly users: readonly string[];
        readonly emails: readonly string[];
        readonly groups: readonly string[];
      };
    }
  );

export type GrantType = "client_credentials" | "authorization_code" | "refresh_token";

export interface StaticClient {
  readonly id: string;
  readonly name: string;
  readonly secret: string | undefined;
  readonly grantTypes: readonly GrantType[];
  readonly redirectUris: readonly string[];
  /** The user a client_credentials token acts as. */
  readonly user: string;
  readonly groups: readonly string[];
  /** May call `/introspect`. */
  readonly introspect: boolean;
}

export interface ServiceSettings {
  readonly name: string;
  readonly issuer: string | undefined;
  readonly authorizationEndpoint: string | undefined;
  readonly tokenEndpoint: string | undefined;
  readonly clientId: string;
  readonly clientSecret: string | undefined;
  readonly scopes: readonly string[];
  readonly authorizationParams: Readonly<Record<string, string>>;
  /**
   * The registry's `token_endpoint_auth_method`; `none` without a secret. Undefined: chosen from the
   * service's metadata at each use (see `chooseTokenEndpointAuthMethod()`).
   */
  readonly tokenEndpointAuthMethod: "client_secret_basic" | "client_secret_post" | "none" | undefined;
}

export type BackendTransport =
  | {
    readonly kind: "stdio";
    readonly command: string;
    readonly args: readonly string[];
    readonly env: Readonly<Record<string, Template>>;
    readonly cwd: string | undefined;
  }
  | {
    readonly kind: "http" | "sse";
    readonly url: string;
    readonly headers: Readonly<Record<string, Template>>;
    /** A remote server with its own OAuth: each user's token is sent as `Authorization` (http only). */
    readonly oauth?: RemoteOAuthSettings;
  };

/** `backends.<name>.http.oauth`: what the registry says; the rest is discovered. */
export interface RemoteOAuthSettings {
  /** A client registered by hand at the server's authorization server; else Gatehouse registers itself. */
  readonly clientId: string | undefined;
  readonly clientSecret: string | undefined;
  /** Scopes to ask for; undefined: those the server's resource metadata lists. */
  readonly scopes: readonly string[] | undefined;
  /** The resource indicator (RFC 8707) to ask a token for; undefined: the server's own. */
  readonly resource: string | undefined;
}

/** A backend with its own OAuth (`http.oauth`): its MCP endpoint and settings; undefined for any other. */
export function remoteOAuthOf(
  backend: BackendSettings,
): { readonly url: string; readonly oauth: RemoteOAuthSettings } | undefined {
  const transport = backend.transport;
  return transport.kind === "http" && transport.oauth !== undefined
    ? { url: transport.url, oauth: transport.oauth }
    : undefined;
}

/**
 * The name under which users' tokens for an OAuth-protected backend are kept, connected and shown (beside
 * the registry's `services`, whose names cannot hold a colon).
 */
export function remoteOAuthServiceName(backend: string): string {
  return `backend:${backend}`;
}

/** How people read a service's name: "your NAME account" for a service, "your account at NAME" for a backend. */
export function accountPhrase(service: string): string {
  const backend = remoteOAuthBackendOf(service);
  return backend === undefined ? `your ${service} account` : `your account at ${backend}`;
}

/** `text` with its first letter upper-case. */
export function capitalized(text: string): string {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The backend a `remoteOAuthServiceName()` names, or undefined for a registry service. */
export function remoteOAuthBackendOf(service: string): string | undefined {
  return service.startsWith("backend:") ? service.slice("backend:".length) : undefined;
}

export interface BackendSettings {
  readonly name: string;
  readonly prefix: string;
  readonly description: string | undefined;
  readonly transport: BackendTransport;
  /**
   * Which protocol revision the gateway speaks to the backend: `auto` asks (server/discover, then
   * initialize); `legacy` goes straight to the 2025 handshake.
   */
  readonly protocol: "auto" | "legacy";
  /** Who shares a stdio process; always "shared" for HTTP backends (headers are per request). */
  readonly isolation: "shared" | "user" | "session";
  readonly idleTimeoutSeconds: number;
  readonly maxProcesses: number;
  readonly callTimeoutSeconds: number;
  /** stdio only: the longest answer line a call may get; a longer one fails just that call. */
  readonly maxResponseBytes: number;
  readonly tools: { readonly include: readonly string[]; readonly exclude: readonly string[] };
  /** Third-party services whose tokens this backend's env or headers use. */
  readonly services: readonly string[];
  /** True when env or headers differ per user. */
  readonly perUser: boolean;
}

/** Where a rule or limit was written, for `gatehouse explain` and the audit log. */
export interface SourceLocation {
  /** Relative to the registry's directory. */
  readonly file: string;
  readonly line: number;
  readonly col: number;
}

export interface PolicyRule {
  readonly id: string;
  readonly description: string | undefined;
  readonly effect: "allow" | "deny";
  readonly subjects: readonly string[];
  readonly backends: readonly string[];
  readonly tools: readonly string[] | undefined;
  readonly prompts: readonly string[] | undefined;
  readonly resources: readonly string[] | undefined;
  readonly readOnly: boolean;
  readonly source: SourceLocation;
}

export interface RateLimit {
  readonly id: string | undefined;
  readonly subjects: readonly string[];
  readonly backends: readonly string[] | undefined;
  readonly requestsPerMinute: number;
  readonly source: SourceLocation;
}
