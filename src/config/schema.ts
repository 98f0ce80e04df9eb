/**
 * The registry file's schema (zod): every key users may write, with its type and constraints (backends in
 * `schema_backends.ts`, the value types they share in `schema_parts.ts`).
 */
import { z } from "zod";
import { parseAddressRange } from "../core/addresses.ts";
import { backendSchema } from "./schema_backends.ts";
export type { RawBackend } from "./schema_backends.ts";
import { Template } from "./template.ts";
import { durationSeconds, httpUrl, name, nonEmpty, sizeBytes, stringList } from "./schema_parts.ts";
import type { GrantType } from "./types.ts";

/** The registry file's shape after interpolation: strict (unknown keys are errors), as users write it. */

/** What YAML calls the kind of a value, for messages: never the value itself, which may be a secret. */
function kindOf(value: unknown): string {
  if (value === null || value === undefined) return "an empty value";
  if (Array.isArray(value)) return "a list";
  if (value instanceof Template) return "a string";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "boolean") return "true or false";
  if (typeof value === "number") return "a number";
  return `a ${typeof value}`;
}

const EXPECTED_KIND: Record<string, string> = {
  string: "a string",
  number: "a number",
  int: "a whole number",
  boolean: "true or false",
  array: "a list",
  object: "a mapping",
  record: "a mapping",
};

/** `a, b or c`. */
function orList(items: readonly string[]): string {
  return items.length > 1 ? `${items.slice(0, -1).join(", ")} or ${items.at(-1)}` : items.join("");
}

/**
 * The registry's own words for what zod would say in its own (`Invalid option: expected one of
 * "allow"|"deny"` becomes `must be "allow" or "deny"`). Messages written in the schema win over these;
 * none of them quotes the offending value.
 */
export const registryWording: z.core.$ZodErrorMap = (issue) => {
  switch (issue.code) {
    case "invalid_type": {
      const expected = EXPECTED_KIND[issue.expected] ?? issue.expected;
      if (issue.input === undefined) return "missing required key";
      if (issue.expected === "int" && typeof issue.input === "number") return "expected a whole number";
      return `expected ${expected}, not ${kindOf(issue.input)}`;
    }
    case "invalid_value":
      return `must be ${orList(issue.values.map((value) => JSON.stringify(value)))}`;
    case "too_small":
    case "too_big": {
      const bound = issue.code === "too_small" ? issue.minimum : issue.maximum;
      const least = issue.code === "too_small";
      if (issue.origin === "array") {
        return least && Number(bound) <= 1
          ? "must not be empty"
          : `list ${least ? "at least" : "at most"} ${bound} entries`;
      }
      if (issue.origin === "string") {
        return least && Number(bound) <= 1
          ? "must not be empty"
          : `must be ${least ? "at least" : "at most"} ${bound} characters long`;
      }
      const strict = issue.inclusive === false;
      return `must be ${
        least ? (strict ? "more than" : "at least") : (strict ? "less than" : "at most")
      } ${bound}`;
    }
    case "invalid_format":
      return `is not a valid ${issue.format.replaceAll("_", " ")}`;
    case "invalid_union": {
      // Each alternative a type of its own (a string or a number): say which types would do.
      const kinds = issue.errors.map((branch) =>
        branch[0]?.code === "invalid_type" ? branch[0].expected : ""
      );
      if (issue.errors.length === 0 || kinds.includes("")) return "does not match any accepted form";
      const expected = orList(kinds.map((kind) => EXPECTED_KIND[kind] ?? kind));
      return `expected ${expected}, not ${kindOf(issue.input)}`;
    }
    default:
      return undefined;
  }
};

/** True for addresses only this machine can reach. */
export function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "::1" || /^127\.\d+\.\d+\.\d+$/.test(hostname);
}

export const listenSchema = z.string().transform((value, context) => {
  const match = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s\[\]]+)):(\d{1,5})$/.exec(value);
  const port = Number(match?.[3]);
  if (!match || port > 65535) {
    context.issues.push({
      code: "custom",
      message: "expected HOST:PORT, such as 127.0.0.1:8740",
      input: value,
    });
    return z.NEVER;
  }
  return { hostname: match[1] ?? match[2]!, port };
});

const gateway = z.strictObject({
  public_url: httpUrl.optional(),
  listen: listenSchema.optional(),
  data_dir: nonEmpty.optional(),
  // Several replicas on one PostgreSQL database: its URL, usually \${env:...} or \${secret:...}.
  store: z.string().regex(/^postgres(?:ql)?:\/\/\S+$/i, "expected a postgres:// URL").optional(),
  policies_dir: nonEmpty.optional(),
  auth: z.enum(["oauth", "none"]).optional(),
  allowed_origins: z.array(httpUrl).optional(),
  trusted_proxies: z.array(
    z.string().refine(
      (value) => parseAddressRange(value) !== undefined,
      "expected an IP address or a CIDR range such as 10.0.0.0/8",
    ),
  ).optional(),
  status_page: z.enum(["public", "users", "admins"]).optional(),
  registration: z.enum(["open", "off"]).optional(),
  // Open registration: at most this many new clients per client address (IPv6: per /64) and hour.
  registrations_per_hour: z.int().min(1, "must be at least 1").optional(),
  // Dynamically registered clients that never obtained a grant are deleted after this long.
  unused_client_ttl: durationSeconds.optional(),
  access_token_ttl: durationSeconds.optional(),
  refresh_token_ttl: durationSeconds.optional(),
  max_body_size: sizeBytes.optional(),
  shutdown_timeout: durationSeconds.optional(),
  // Connections: how long a client may take to send a request's headers, and its body; how long an idle
  // keep-alive connection stays open; how many connections one client address, and all, may hold.
  header_timeout: durationSeconds.optional(),
  body_timeout: durationSeconds.optional(),
  keepalive_timeout: durationSeconds.optional(),
  max_connections: z.int().min(1, "must be at least 1").optional(),
  max_connections_per_address: z.int().min(1, "must be at least 1").optional(),
  // A refresh token used again this soon after its rotation (its answer lost) is accepted once more.
  refresh_reuse_interval: durationSeconds.optional(),
  // A user opening one more 2025-era session than this closes their least recently used one.
  max_sessions_per_user: z.int().min(1, "must be at least 1").optional(),
  // How long /mcp waits for each backend's list before answering with its last known list, or without it.
  list_timeout: durationSeconds.optional(),
  audit_retention: durationSeconds.optional(),
  // The key that encrypts users' third-party tokens: 32 bytes, hex or base64url, usually ${secret:...}.
  vault_key: nonEmpty.optional(),
  // A bearer token that lets a scraper read /metrics from outside this machine, usually ${secret:...}.
  metrics_token: nonEmpty.optional(),
}).superRefine((gateway, context) => {
  // Replicas on one store must agree on what they sign and seal: one issuer, one vault key.
  for (const [key, why] of [["public_url", "the issuer"], ["vault_key", "usually ${secret:...}"]] as const) {
    if (gateway.store === undefined || gateway[key] !== undefined) continue;
    const message = `replicas on one store need gateway.${key}, the same on every replica (${why})`;
    context.addIssue({ code: "custom", path: ["store"], message });
  }
  if (gateway.auth === "none" && gateway.listen && !isLoopbackHost(gateway.listen.hostname)) {
    context.addIssue({
      code: "custom",
      path: ["auth"],
      message: '"none" is only allowed on a loopback listener (localhost, 127.x.x.x or ::1)',
      params: { authNoneOffLoopback: true },
    });
  }
});

const localUser = z.strictObject({
  password_hash: z.string().regex(
    /^\$argon2id\$/,
    'expected an argon2id hash (make one with "gatehouse hash-password")',
  ),
  groups: z.array(name).optional(),
  email: z.email("expected an email address").optional(),
});

const githubProvider = z.strictObject({
  type: z.literal("github"),
  client_id: nonEmpty,
  client_secret: nonEmpty,
  label: nonEmpty.optional(),
  // GitHub Enterprise Server: its own endpoints and API.
  authorization_endpoint: httpUrl.optional(),
  token_endpoint: httpUrl.optional(),
  api_url: httpUrl.optional(),
  allow: z.strictObject({ users: stringList.optional(), orgs: stringList.optional() }),
});

const oidcProvider = z.strictObject({
  type: z.literal("oidc"),
  issuer: httpUrl,
  client_id: nonEmpty,
  client_secret: nonEmpty.optional(),
  scopes: stringList.optional(),
  groups_claim: nonEmpty.optional(),
  label: nonEmpty.optional(),
  allow: z.strictObject({
    users: stringList.optional(),
    emails: stringList.optional(),
    groups: stringList.optional(),
  }),
});

const provider = z.discriminatedUnion("type", [githubProvider, oidcProvider], {
  error: 'expected a provider with type "github" or "oidc"',
});

const client = z.strictObject({
  secret: nonEmpty.optional(),
  name: nonEmpty.optional(),
  grant_types: z.array(z.enum(["client_credentials", "authorization_code", "refresh_token"])).min(1)
    .optional(),
  redirect_uris: z.array(httpUrl).optional(),
  user: name.optional(),
  groups: z.array(name).optional(),
  // May ask /introspect about tokens (RFC 7662 §4: only clients the server trusts).
  introspect: z.boolean().optional(),
}).superRefine((client, context) => {
  if (client.introspect && !client.secret) {
    context.addIssue({ code: "custom", path: ["introspect"], message: "introspection needs a secret" });
  }
  const grantTypes = client.grant_types ?? defaultGrantTypes(client.redirect_uris);
  if (grantTypes.includes("client_credentials") && !client.secret) {
    context.addIssue({ code: "custom", message: "client_credentials needs a secret" });
  }
  if (grantTypes.includes("authorization_code") && !client.redirect_uris?.length) {
    context.addIssue({ code: "custom", message: "authorization_code needs redirect_uris" });
  }
});

/** Clients with redirect URIs sign users in; clients without act as themselves. */
export function defaultGrantTypes(redirectUris: readonly string[] | undefined): GrantType[] {
  return redirectUris?.length ? ["authorization_code", "refresh_token"] : ["client_credentials"];
}

const service = z.strictObject({
  issuer: httpUrl.optional(),
  authorization_endpoint: httpUrl.optional(),
  token_endpoint: httpUrl.optional(),
  client_id: nonEmpty,
  client_secret: nonEmpty.optional(),
  scopes: stringList.optional(),
  authorization_params: z.record(nonEmpty, z.string()).optional(),
  token_endpoint_auth_method: z.enum(["client_secret_basic", "client_secret_post", "none"]).optional(),
}).superRefine((service, context) => {
  if (!service.issuer && !(service.authorization_endpoint && service.token_endpoint)) {
    context.addIssue({
      code: "custom",
      message: "give an issuer (for discovery) or both authorization_endpoint and token_endpoint",
    });
  }
});

const subject = z.string().regex(
  /^(\*|(user|group|client|provider):.+)$/,
  'expected "*", "user:NAME", "group:NAME", "client:ID" or "provider:NAME"',
);

export const ruleSchema = z.strictObject({
  id: name,
  description: z.string().optional(),
  effect: z.enum(["allow", "deny"]),
  subjects: z.array(subject).min(1, "list at least one subject"),
  backends: stringList.min(1, "list at least one backend (glob)"),
  tools: stringList.optional(),
  prompts: stringList.optional(),
  resources: stringList.optional(),
  read_only: z.boolean().optional(),
});

export const limitSchema = z.strictObject({
  id: name.optional(),
  subjects: z.array(subject).min(1, "list at least one subject"),
  backends: stringList.optional(),
  requests_per_minute: z.int().min(1, "must be at least 1"),
});

export const registrySchema = z.strictObject({
  gateway: gateway.optional(),
  login: z.strictObject({
    users: z.record(name, localUser).optional(),
    providers: z.record(name, provider).optional(),
  }).optional(),
  clients: z.record(name, client).optional(),
  services: z.record(name, service).optional(),
  backends: z.record(name, backendSchema).optional(),
  policies: z.array(ruleSchema).optional(),
  limits: z.array(limitSchema).optional(),
});

/** A file in the policies directory holds a list of rules, or a mapping with `policies` and/or `limits`. */
export const ruleListSchema = z.array(ruleSchema);
export const policyMappingSchema = z.strictObject({
  policies: z.array(ruleSchema).optional(),
  limits: z.array(limitSchema).optional(),
});

export type RawRegistry = z.output<typeof registrySchema>;
export type RawRule = z.output<typeof ruleSchema>;
export type RawLimit = z.output<typeof limitSchema>;
