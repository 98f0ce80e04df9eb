// RFC 7591 §2 client metadata: what a client may register (redirect URIs, grant types, bounded fields) and
// what is kept of it; registration and metadata documents both go through it.
import { LOOPBACK_URL_HOSTNAMES } from "../core/urls.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { knownScopes } from "./scopes.ts";

/** Schemes no client may register as a redirect URI, whatever kind of client it is. */
const FORBIDDEN_SCHEMES = new Set([
  "javascript:",
  "data:",
  "file:",
  "vbscript:",
  "blob:",
  "about:",
  "filesystem:",
  "view-source:",
  "ftp:",
  "ws:",
  "wss:",
  "mailto:",
  "tel:",
  "sms:",
]);

/**
 * A redirect URI a client may register: https; http on a loopback address (RFC 8252 §7.3); for public
 * (native) clients also a private-use scheme (RFC 8252 §7.1), such as `cursor://…` or
 * `com.example.app:/callback`. Never a fragment, never a scheme a browser would run or open locally.
 */
function acceptableRedirectUri(uri: unknown, publicClient: boolean): uri is string {
  if (typeof uri !== "string") return false;
  try {
    const url = new URL(uri);
    if (url.hash || url.username || url.password) return false;
    if (url.protocol === "https:") return url.hostname !== "";
    if (url.protocol === "http:") return LOOPBACK_URL_HOSTNAMES.has(url.hostname);
    if (FORBIDDEN_SCHEMES.has(url.protocol)) return false;
    return publicClient && /^[a-z][a-z0-9+.-]*:$/.test(url.protocol);
  } catch {
    return false;
  }
}

/** Bounds on what a stranger may store through open registration (RFC 7591 §2). */
export const REGISTRATION_LIMITS = Object.freeze({
  /** The whole registration request. */
  maxBodyBytes: 16 * 1024,
  maxNameLength: 200,
  maxUriLength: 2048,
  maxRedirectUris: 10,
  maxContacts: 5,
  maxContactLength: 320,
  maxScopeLength: 1000,
  maxShortFieldLength: 200,
  /** Fields this server does not know are ignored, but only while they are small and few. */
  maxUnknownFieldBytes: 1024,
  maxUnknownFields: 20,
});

/** The metadata fields this server keeps, each with its check. */
const KNOWN_FIELDS: Readonly<Record<string, (value: unknown) => string | undefined>> = {
  client_name: (value) => boundedString(value, REGISTRATION_LIMITS.maxNameLength),
  client_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  logo_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  tos_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  policy_uri: (value) => boundedString(value, REGISTRATION_LIMITS.maxUriLength),
  scope: (value) => boundedString(value, REGISTRATION_LIMITS.maxScopeLength),
  software_id: (value) => boundedString(value, REGISTRATION_LIMITS.maxShortFieldLength),
  software_version: (value) => boundedString(value, REGISTRATION_LIMITS.maxShortFieldLength),
  application_type: (value) =>
    value === "web" || value === "native" ? undefined : 'must be "web" or "native"',
  contacts: (value) => {
    if (!Array.isArray(value)) return "must be a list of strings";
    if (value.length > REGISTRATION_LIMITS.maxContacts) {
      return `may list at most ${REGISTRATION_LIMITS.maxContacts} entries`;
    }
    return value.map((entry) => boundedString(entry, REGISTRATION_LIMITS.maxContactLength))
      .find((problem) => problem !== undefined);
  },
};

/** Fields validate() checks and rebuilds itself; the server issues the rest (ids, secrets, times). */
const HANDLED_FIELDS = new Set([
  "redirect_uris",
  "grant_types",
  "response_types",
  "token_endpoint_auth_method",
  "client_id",
  "client_secret",
  "client_id_issued_at",
  "client_secret_expires_at",
  "registration_access_token",
  "registration_client_uri",
]);

function boundedString(value: unknown, maxLength: number): string | undefined {
  if (typeof value !== "string") return "must be a string";
  return value.length > maxLength ? `is longer than ${maxLength} characters` : undefined;
}

/** RFC 7591 §2: checks client metadata, bounded in every field, and returns what is kept of it. */
export function validateClientMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const invalid = (description: string) => new OAuthError("invalid_client_metadata", description);
  const method = (metadata.token_endpoint_auth_method ?? "client_secret_basic") as string;
  if (!["none", "client_secret_basic", "client_secret_post"].includes(method)) {
    throw invalid("token_endpoint_auth_method is not supported");
  }
  const redirectUris = metadata.redirect_uris;
  if (!Array.isArray(redirectUris) || redirectUris.length === 0) {
    throw new OAuthError("invalid_redirect_uri", "redirect_uris must list at least one URI");
  }
  if (redirectUris.length > REGISTRATION_LIMITS.maxRedirectUris) {
    throw new OAuthError(
      "invalid_redirect_uri",
      `redirect_uris may list at most ${REGISTRATION_LIMITS.maxRedirectUris} URIs`,
    );
  }
  if (
    redirectUris.some((uri) => typeof uri === "string" && uri.length > REGISTRATION_LIMITS.maxUriLength)
  ) {
    throw new OAuthError(
      "invalid_redirect_uri",
      `a redirect URI is longer than ${REGISTRATION_LIMITS.maxUriLength} characters`,
    );
  }
  if (redirectUris.some((uri) => !acceptableRedirectUri(uri, method === "none"))) {
    throw new OAuthError(
      "invalid_redirect_uri",
      method === "none"
        ? "redirect_uris must be https, http on a loopback address, or a private-use scheme of a native app"
        : "redirect_uris must be https, or http on a loopback address",
    );
  }
  const grantTypes = (metadata.grant_types ?? ["authorization_code", "refresh_token"]) as unknown[];
  if (
    !Array.isArray(grantTypes) || grantTypes.length > 2 ||
    grantTypes.some((grant) => grant !== "authorization_code" && grant !== "refresh_token")
  ) {
    throw invalid("grant_types may list authorization_code and refresh_token");
  }
  const responseTypes = (metadata.response_types ?? ["code"]) as unknown[];
  if (
    !Array.isArray(responseTypes) || responseTypes.length > 1 ||
    responseTypes.some((type) => type !== "code")
  ) {
    throw invalid('response_types may only list "code"');
  }
  const kept: Record<string, unknown> = {};
  let unknownFields = 0;
  for (const [field, value] of Object.entries(metadata)) {
    if (value === undefined || HANDLED_FIELDS.has(field)) continue;
    const check = Object.hasOwn(KNOWN_FIELDS, field) ? KNOWN_FIELDS[field] : undefined;
    if (check) {
      const problem = check(value);
      if (problem !== undefined) throw invalid(`${field} ${problem}`);
      kept[field] = field === "scope" ? knownScopes(value as string) : value;
      continue;
    }
    // RFC 7591 §2: unknown fields are ignored; a stranger's large or many ones are refused.
    unknownFields++;
    if (unknownFields > REGISTRATION_LIMITS.maxUnknownFields) {
      throw invalid(`more than ${REGISTRATION_LIMITS.maxUnknownFields} unknown fields`);
    }
    if (JSON.stringify(value).length > REGISTRATION_LIMITS.maxUnknownFieldBytes) {
      throw invalid(`the unknown field ${JSON.stringify(field.slice(0, 64))} is too large`);
    }
  }
  return {
    ...kept,
    redirect_uris: redirectUris,
    grant_types: grantTypes,
    response_types: responseTypes,
    token_endpoint_auth_method: method,
  };
}
