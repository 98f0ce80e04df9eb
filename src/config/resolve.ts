import { resolve } from "node:path";
import type { ConfigProblem } from "./errors.ts";
import type { PolicyFile } from "./load.ts";
import type { RawBackend, RawRegistry } from "./schema.ts";
import type { ConfigPath, SourceFile } from "./source.ts";
import type { Template } from "./template.ts";
import type {
  BackendSettings,
  GatewaySettings,
  GrantType,
  LocalUser,
  LoginProvider,
  PolicyRule,
  RateLimit,
  Registry,
  ServiceSettings,
  StaticClient,
} from "./types.ts";

export const DEFAULTS = Object.freeze({
  listen: Object.freeze({ hostname: "127.0.0.1", port: 8740 }),
  accessTokenTtlSeconds: 3600,
  refreshTokenTtlSeconds: 30 * 86400,
  maxBodyBytes: 4 * 1024 * 1024,
  shutdownTimeoutSeconds: 10,
  idleTimeoutSeconds: 600,
  maxProcesses: 20,
  callTimeoutSeconds: 60,
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

/** True for addresses only this machine can reach. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

const isGlob = (pattern: string) => /[*?[]/.test(pattern);

function mapRecord<T, U>(
  record: Record<string, T> | undefined,
  map: (name: string, value: T) => U,
): Record<string, U> {
  return Object.fromEntries(Object.entries(record ?? {}).map(([name, value]) => [name, map(name, value)]));
}

/** Fills defaults, checks cross-references, and freezes the result. */
export function resolveRegistry(input: ResolveInput): { registry: Registry; problems: ConfigProblem[] } {
  const { raw, source } = input;
  const problems: ConfigProblem[] = [];
  const report = (path: ConfigPath, message: string, key = false) =>
    problems.push(source.problemAt(path, message, { key }));

  const rawGateway = raw.gateway ?? {};
  const listen = rawGateway.listen ?? DEFAULTS.listen;
  const auth = rawGateway.auth ?? "oauth";
  if (auth === "none" && !isLoopbackHost(listen.hostname)) {
    report(
      ["gateway", "auth"],
      'gateway.auth: "none" is only allowed on a loopback listener (127.0.0.1 or ::1)',
    );
  }
  const gateway: GatewaySettings = {
    publicUrl: rawGateway.public_url?.replace(/\/+$/, ""),
    listen,
    dataDir: input.dataDir,
    policiesDir: input.policiesDir,
    auth,
    allowedOrigins: (rawGateway.allowed_origins ?? []).map((origin) => new URL(origin).origin),
    trustedProxies: rawGateway.trusted_proxies ?? [],
    statusPage: rawGateway.status_page ?? "users",
    registration: rawGateway.registration ?? "open",
    accessTokenTtlSeconds: rawGateway.access_token_ttl ?? DEFAULTS.accessTokenTtlSeconds,
    refreshTokenTtlSeconds: rawGateway.refresh_token_ttl ?? DEFAULTS.refreshTokenTtlSeconds,
    maxBodyBytes: rawGateway.max_body_size ?? DEFAULTS.maxBodyBytes,
    shutdownTimeoutSeconds: rawGateway.shutdown_timeout ?? DEFAULTS.shutdownTimeoutSeconds,
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
    const grantTypes: GrantType[] = client.grant_types ??
      (redirectUris.length > 0 ? ["authorization_code", "refresh_token"] : ["client_credentials"]);
    if (grantTypes.includes("client_credentials") && !client.secret) {
      report(["clients", id], `clients.${id}: client_credentials needs a secret`);
    }
    if (grantTypes.includes("authorization_code") && redirectUris.length === 0) {
      report(["clients", id], `clients.${id}: authorization_code needs redirect_uris`);
    }
    return {
      id,
      name: client.name ?? id,
      secret: client.secret,
      grantTypes,
      redirectUris,
      user: client.user ?? id,
      groups: client.groups ?? [],
    };
  });

  const services = mapRecord(raw.services, (name, service): ServiceSettings => {
    if (!service.issuer && !(service.authorization_endpoint && service.token_endpoint)) {
      report(
        ["services", name],
        `services.${name}: give an issuer (for discovery) or both authorization_endpoint and token_endpoint`,
      );
    }
    return {
      name,
      issuer: service.issuer,
      authorizationEndpoint: service.authorization_endpoint,
      tokenEndpoint: service.token_endpoint,
      clientId: service.client_id,
      clientSecret: service.client_secret,
      scopes: service.scopes ?? [],
      authorizationParams: service.authorization_params ?? {},
      tokenEndpointAuthMethod: service.token_endpoint_auth_method ??
        (service.client_secret ? "client_secret_basic" : "none"),
    };
  });

  const prefixOwners = new Map<string, string>();
  const backends = mapRecord(raw.backends, (name, backend): BackendSettings => {
    const settings = resolveBackend(name, backend, input.baseDir, report);
    for (const [key, template] of templatesOf(settings)) {
      for (const service of template.services) {
        if (!(service in services)) report(key, `unknown service "${service}": define it under services:`);
      }
    }
    const owner = prefixOwners.get(settings.prefix);
    if (owner) {
      report(
        ["backends", name],
        `backends.${name}: prefix "${settings.prefix}" is already used by backend "${owner}"`,
        true,
      );
    }
    prefixOwners.set(settings.prefix, name);
    return settings;
  });

  const ruleSources = [
    {
      source,
      relativePath: input.relativePath,
      policies: (raw.policies ?? []).map((rule, index) => ({ rule, path: ["policies", index] })),
      limits: (raw.limits ?? []).map((limit, index) => ({ limit, path: ["limits", index] })),
    },
    ...input.policyFiles,
  ];
  const ruleIds = new Map<string, string>();
  const policies: PolicyRule[] = [];
  const limits: RateLimit[] = [];
  for (const file of ruleSources) {
    const fileReport = (path: ConfigPath, message: string) =>
      problems.push(file.source.problemAt(path, message));
    const checkReferences = (path: ConfigPath, subjects: readonly string[], patterns: readonly string[]) => {
      subjects.forEach((subject, index) => {
        const provider = /^provider:(.+)$/.exec(subject)?.[1];
        if (provider && !(provider in providers)) {
          fileReport([...path, "subjects", index], `unknown provider "${provider}" in subject`);
        }
      });
      patterns.forEach((pattern, index) => {
        if (!isGlob(pattern) && !(pattern in backends)) {
          fileReport([...path, "backends", index], `unknown backend "${pattern}"`);
        }
      });
    };
    const locate = (path: ConfigPath) => {
      const { line, col } = file.source.problemAt(path, "");
      return { file: file.relativePath, line, col };
    };
    for (const { rule, path } of file.policies) {
      const earlier = ruleIds.get(rule.id);
      if (earlier) fileReport([...path, "id"], `rule id "${rule.id}" is already used in ${earlier}`);
      ruleIds.set(rule.id, file.relativePath);
      checkReferences(path, rule.subjects, rule.backends);
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
      checkReferences(path, limit.subjects, limit.backends ?? []);
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
  return { registry: deepFreeze(registry), problems };
}

function resolveBackend(
  name: string,
  backend: RawBackend,
  baseDir: string,
  report: (path: ConfigPath, message: string, key?: boolean) => void,
): BackendSettings {
  const path = ["backends", name];
  const given = (["stdio", "http", "sse"] as const).filter((kind) => backend[kind] !== undefined);
  if (given.length !== 1) {
    report(path, `backends.${name}: give exactly one of stdio, http or sse`);
  }
  let transport: BackendSettings["transport"];
  if (backend.stdio) {
    transport = {
      kind: "stdio",
      command: backend.stdio.command,
      args: backend.stdio.args ?? [],
      env: backend.stdio.env ?? {},
      cwd: backend.stdio.cwd === undefined ? undefined : resolve(baseDir, backend.stdio.cwd),
    };
  } else {
    const kind = backend.http ? "http" : "sse";
    const http = backend.http ?? backend.sse ?? { url: "http://invalid", headers: {} };
    transport = { kind, url: http.url, headers: http.headers ?? {} };
  }
  const templates = Object.values(transport.kind === "stdio" ? transport.env : transport.headers);
  const perUser = templates.some((template) => template.perUser);
  const services = [...new Set(templates.flatMap((template) => template.services))].sort();

  if (transport.kind !== "stdio") {
    for (const key of ["isolation", "idle_timeout", "max_processes"] as const) {
      if (backend[key] !== undefined) {
        report([...path, key], `backends.${name}.${key}: only stdio backends have processes to manage`, true);
      }
    }
  } else if (perUser && backend.isolation === "shared") {
    report(
      [...path, "isolation"],
      `backends.${name}.isolation: "shared" is not allowed: env uses \${service:...} or \${user:...}, so each user needs a process`,
    );
  }

  return {
    name,
    prefix: backend.prefix ?? name.replaceAll(".", "-"),
    description: backend.description,
    transport,
    isolation: transport.kind === "stdio" ? backend.isolation ?? (perUser ? "user" : "shared") : "shared",
    idleTimeoutSeconds: backend.idle_timeout ?? DEFAULTS.idleTimeoutSeconds,
    maxProcesses: backend.max_processes ?? DEFAULTS.maxProcesses,
    callTimeoutSeconds: backend.timeout ?? DEFAULTS.callTimeoutSeconds,
    tools: { include: backend.tools?.include ?? [], exclude: backend.tools?.exclude ?? [] },
    services,
    perUser,
  };
}

function templatesOf(backend: BackendSettings): [ConfigPath, Template][] {
  const { transport } = backend;
  const [section, field, values] = transport.kind === "stdio"
    ? ["stdio", "env", transport.env]
    : [transport.kind, "headers", transport.headers];
  return Object.entries(values).map((
    [key, template],
  ) => [["backends", backend.name, section, field, key], template]);
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === "object" && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const item of Object.values(value)) deepFreeze(item);
  }
  return value;
}
