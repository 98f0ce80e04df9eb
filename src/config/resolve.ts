// Turns a validated registry into its resolved form: defaults filled, paths made absolute, rules located.
import { resolve } from "node:path";
import {
  defaultGrantTypes,
  type RawBackend,
  type RawLimit,
  type RawRegistry,
  type RawRule,
} from "./schema.ts";
import type { ConfigPath, SourceFile } from "./source.ts";
import { Template } from "./template.ts";
import {
  type BackendSettings,
  type GatewaySettings,
  type LocalUser,
  type LoginProvider,
  type PolicyRule,
  type RateLimit,
  type Registry,
  remoteOAuthServiceName,
  type ServiceSettings,
  type StaticClient,
} from "./types.ts";

/** A policy file that passed its schema, with each entry's path for locating it. */
export interface PolicyFile {
  readonly source: SourceFile;
  /** Path relative to the registry's directory, for rule locations. */
  readonly relativePath: string;
  readonly policies: readonly { rule: RawRule; path: ConfigPath }[];
  readonly limits: readonly { limit: RawLimit; path: ConfigPath }[];
}

export const DEFAULTS = Object.freeze({
  listen: Object.freeze({ hostname: "127.0.0.1", port: 8740 }),
  accessTokenTtlSeconds: 3600,
  registrationsPerHour: 30,
  unusedClientTtlSeconds: 24 * 3600,
  refreshTokenTtlSeconds: 30 * 86400,
  maxBodyBytes: 4 * 1024 * 1024,
  shutdownTimeoutSeconds: 10,
  headerTimeoutSeconds: 10,
  bodyTimeoutSeconds: 60,
  keepaliveTimeoutSeconds: 60,
  maxConnections: 4096,
  maxConnectionsPerAddress: 256,
  refreshReuseIntervalSeconds: 30,
  maxSessionsPerUser: 100,
  listTimeoutSeconds: 2,
  auditRetentionSeconds: 90 * 86400,
  idleTimeoutSeconds: 600,
  maxProcesses: 20,
  callTimeoutSeconds: 60,
  maxResponseBytes: 16 * 1024 * 1024,
  oidcScopes: Object.freeze(["openid", "profile", "email"]),
  groupsClaim: "groups",
});

interface ResolveInput {
  raw: RawRegistry;
  source: SourceFile;
  relativePath: string;
  policyFiles: readonly PolicyFile[];
  baseDir: string;
  dataDir: string;
  policiesDir: string;
  files: readonly string[];
}

function mapRecord<T, U>(
  record: Record<string, T> | undefined,
  map: (name: string, value: T) => U,
): Record<string, U> {
  return Object.fromEntries(Object.entries(record ?? {}).map(([name, value]) => [name, map(name, value)]));
}

/** Fills defaults, normalises, and freezes a registry that passed the schema and reference checks. */
export function resolveRegistry(input: ResolveInput): Registry {
  const { raw, source } = input;

  const rawGateway = raw.gateway ?? {};
  const listen = rawGateway.listen ?? DEFAULTS.listen;
  const auth = rawGateway.auth ?? "oauth";
  const gateway: GatewaySettings = {
    publicUrl: rawGateway.public_url?.replace(/\/+$/, ""),
    listen,
    dataDir: input.dataDir,
    store: rawGateway.store,
    policiesDir: input.policiesDir,
    auth,
    allowedOrigins: (rawGateway.allowed_origins ?? []).map((origin) => new URL(origin).origin),
    trustedProxies: rawGateway.trusted_proxies ?? [],
    statusPage: rawGateway.status_page ?? "users",
    registration: rawGateway.registration ?? "open",
    registrationsPerHour: rawGateway.registrations_per_hour ?? DEFAULTS.registrationsPerHour,
    unusedClientTtlSeconds: rawGateway.unused_client_ttl ?? DEFAULTS.unusedClientTtlSeconds,
    accessTokenTtlSeconds: rawGateway.access_token_ttl ?? DEFAULTS.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: rawGateway.refresh_token_ttl ?? DEFAULTS.refreshTokenTtlSeconds,
    maxBodyBytes: rawGateway.max_body_size ?? DEFAULTS.maxBodyBytes,
    shutdownTimeoutSeconds: rawGateway.shutdown_timeout ?? DEFAULTS.shutdownTimeoutSeconds,
    headerTimeoutSeconds: rawGateway.header_timeout ?? DEFAULTS.headerTimeoutSeconds,
    bodyTimeoutSeconds: rawGateway.body_timeout ?? DEFAULTS.bodyTimeoutSeconds,
    keepaliveTimeoutSeconds: rawGateway.keepalive_timeout ?? DEFAULTS.keepaliveTimeoutSeconds,
    maxConnections: rawGateway.max_connections ?? DEFAULTS.maxConnections,
    maxConnectionsPerAddress: rawGateway.max_connections_per_address ?? DEFAULTS.maxConnectionsPerAddress,
    refreshReuseIntervalSeconds: rawGateway.refresh_reuse_interval ?? DEFAULTS.refreshReuseIntervalSeconds,
    maxSessionsPerUser: rawGateway.max_sessions_per_user ?? DEFAULTS.maxSessionsPerUser,
    listTimeoutSeconds: rawGateway.list_timeout ?? DEFAULTS.listTimeoutSeconds,
    auditRetentionSeconds: rawGateway.audit_retention ?? DEFAULTS.auditRetentionSeconds,
    vaultKey: rawGateway.vault_key,
    metricsToken: rawGateway.metrics_token,
  };

  const users = mapRecord(raw.login?.users, (name, user): LocalUser => ({
    name,
    passwordHash: user.password_hash,
    groups: user.groups ?? [],
    email: user.email,
  }));

  const providers = mapRecord(raw.login?.providers, (name, provider): LoginProvider => {
    const common = { name, label: provider.label ?? name, clientId: provider.client_id };
    if (provider.type === "github") {
      return {
        ...common,
        type: "github",
        clientSecret: provider.client_secret,
        authorizationEndpoint: provider.authorization_endpoint,
        tokenEndpoint: provider.token_endpoint,
        apiUrl: provider.api_url,
        allow: { users: provider.allow.users ?? [], orgs: provider.allow.orgs ?? [] },
      };
    }
    return {
      ...common,
      type: "oidc",
      issuer: provider.issuer,
      clientSecret: provider.client_secret,
      scopes: provider.scopes ?? DEFAULTS.oidcScopes,
      groupsClaim: provider.groups_claim ?? DEFAULTS.groupsClaim,
      allow: {
        users: provider.allow.users ?? [],
        emails: provider.allow.emails ?? [],
        groups: provider.allow.groups ?? [],
      },
    };
  });

  const clients = mapRecord(raw.clients, (id, client): StaticClient => {
    const redirectUris = client.redirect_uris ?? [];
    const grantTypes = client.grant_types ?? defaultGrantTypes(redirectUris);
    return {
      id,
      name: client.name ?? id,
      secret: client.secret,
      grantTypes,
      redirectUris,
      user: client.user ?? id,
      groups: client.groups ?? [],
      introspect: client.introspect ?? false,
    };
  });

  const services = mapRecord(raw.services, (name, service): ServiceSettings => {
    return {
      name,
      issuer: service.issuer,
      authorizationEndpoint: service.authorization_endpoint,
      tokenEndpoint: service.token_endpoint,
      clientId: service.client_id,
      clientSecret: service.client_secret,
      scopes: service.scopes ?? [],
      authorizationParams: service.authorization_params ?? {},
      // With a secret and no setting, chosen from the service's metadata when it is used.
      tokenEndpointAuthMethod: service.token_endpoint_auth_method ??
        (service.client_secret ? undefined : "none"),
    };
  });

  const backends = mapRecord(raw.backends, (name, backend) => resolveBackend(name, backend, input.baseDir));

  const ruleSources = [
    {
      source,
      relativePath: input.relativePath,
      policies: (raw.policies ?? []).map((rule, index) => ({ rule, path: ["policies", index] })),
      limits: (raw.limits ?? []).map((limit, index) => ({ limit, path: ["limits", index] })),
    },
    ...input.policyFiles,
  ];
  const policies: PolicyRule[] = [];
  const limits: RateLimit[] = [];
  for (const file of ruleSources) {
    const locate = (path: ConfigPath) => {
      const { line, col } = file.source.problemAt(path, "");
      return { file: file.relativePath, line, col };
    };
    for (const { rule, path } of file.policies) {
      policies.push({
        id: rule.id,
        description: rule.description,
        effect: rule.effect,
        subjects: rule.subjects,
        backends: rule.backends,
        tools: rule.tools,
        prompts: rule.prompts,
        resources: rule.resources,
        readOnly: rule.read_only ?? false,
        source: locate(path),
      });
    }
    for (const { limit, path } of file.limits) {
      limits.push({
        id: limit.id,
        subjects: limit.subjects,
        backends: limit.backends,
        requestsPerMinute: limit.requests_per_minute,
        source: locate(path),
      });
    }
  }

  const registry: Registry = {
    baseDir: input.baseDir,
    files: input.files,
    gateway,
    login: { users, providers },
    clients,
    services,
    backends,
    policies,
    limits,
  };
  return deepFreeze(registry);
}

function resolveBackend(name: string, backend: RawBackend, baseDir: string): BackendSettings {
  let transport: BackendSettings["transport"];
  if (backend.stdio) {
    transport = {
      kind: "stdio",
      command: backend.stdio.command,
      args: backend.stdio.args ?? [],
      env: backend.stdio.env ?? {},
      cwd: backend.stdio.cwd === undefined ? undefined : resolve(baseDir, backend.stdio.cwd),
    };
  } else if (backend.http?.oauth !== undefined) {
    const oauth = backend.http.oauth === true ? {} : backend.http.oauth;
    const service = remoteOAuthServiceName(name);
    transport = {
      kind: "http",
      url: backend.http.url,
      // Each user's own token for this server, as a service token is (refreshed, per user).
      headers: {
        ...backend.http.headers,
        Authorization: new Template([
          { kind: "text", text: "Bearer ", source: "Bearer " },
          { kind: "service", service },
        ]),
      },
      oauth: {
        clientId: oauth.client_id,
        clientSecret: oauth.client_secret,
        scopes: oauth.scopes,
        resource: oauth.resource,
      },
    };
  } else {
    const kind = backend.http ? "http" : "sse";
    const http = backend.http ?? backend.sse ?? { url: "http://invalid", headers: {} };
    transport = { kind, url: http.url, headers: http.headers ?? {} };
  }
  const templates = Object.values(transport.kind === "stdio" ? transport.env : transport.headers);
  const perUser = templates.some((template) => template.perUser);
  const services = [...new Set(templates.flatMap((template) => template.services))].sort();

  return {
    name,
    prefix: backend.prefix ?? name.replaceAll(".", "-"),
    description: backend.description,
    transport,
    // Probing a stdio backend spawns it twice, so stdio backends are spoken to as 2025-era unless asked.
    protocol: backend.protocol ?? (transport.kind === "http" ? "auto" : "legacy"),
    isolation: transport.kind === "stdio" ? backend.isolation ?? (perUser ? "user" : "shared") : "shared",
    idleTimeoutSeconds: backend.idle_timeout ?? DEFAULTS.idleTimeoutSeconds,
    maxProcesses: backend.max_processes ?? DEFAULTS.maxProcesses,
    callTimeoutSeconds: backend.timeout ?? DEFAULTS.callTimeoutSeconds,
    maxResponseBytes: backend.max_response_size ?? DEFAULTS.maxResponseBytes,
    tools: { include: backend.tools?.include ?? [], exclude: backend.tools?.exclude ?? [] },
    services,
    perUser,
  };
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
