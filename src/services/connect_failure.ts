// What an error page says of a failed connection to a service: which step of the code flow failed, and
// the service's own words, quoted and bounded.
import * as oauth from "oauth4webapi";

/** How much of a service's error text an error page quotes. */
const MAX_QUOTED_CHARS = 160;

/** The step of the code flow with a service that failed. */
export type ConnectStep = "discovery" | "authorization" | "token_request" | "token_response";

/**
 * What the error page says of a failed connection: which step failed and the service's own words, quoted
 * and bounded (the page escapes them). Never a token, code or secret: oauth4webapi's messages hold none.
 */
export function connectFailure(service: string, step: ConnectStep, error: unknown): string {
  switch (step) {
    case "discovery":
      return `Cannot reach ${service} to find its endpoints; try again later`;
    case "authorization":
      // RFC 6749 §4.1.2.1: the user, or the service, refused at the authorization endpoint.
      if (error instanceof oauth.AuthorizationResponseError) {
        return `${service} did not grant access: ${quoteOAuthError(error.error, error.error_description)}`;
      }
      return `Cannot accept ${service}'s answer to the authorization request: ${messageOf(error)}`;
    case "token_request":
      // fetch() failing (a TypeError without a code); oauth4webapi's own refusals carry a code.
      return codeOf(error) === undefined
        ? `Cannot reach ${service}'s token endpoint; try again later`
        : `Cannot send the token request to ${service}: ${messageOf(error)}`;
    case "token_response":
      return tokenResponseFailure(service, error);
  }
}

function tokenResponseFailure(service: string, error: unknown): string {
  // RFC 6749 §5.2: an error in the body, or (invalid_client) in a 401's WWW-Authenticate challenge.
  if (error instanceof oauth.ResponseBodyError) {
    return `${service} refused the token request: ${quoteOAuthError(error.error, error.error_description)}`;
  }
  if (error instanceof oauth.WWWAuthenticateChallengeError) {
    const parameters = error.cause[0]?.parameters;
    const code = parameters?.error ?? `HTTP ${error.status}`;
    return `${service} refused the token request: ${quoteOAuthError(code, parameters?.error_description)}`;
  }
  if (
    codeOf(error) === oauth.RESPONSE_IS_NOT_CONFORM && error instanceof Error &&
    error.cause instanceof Response
  ) {
    const status = error.cause.status;
    return `${service}'s token endpoint answered HTTP ${status}, neither a token nor an OAuth error`;
  }
  // The only JWT oauth4webapi checks in a token response is the ID token (OpenID Connect Core §3.1.3.7).
  const message = messageOf(error);
  if (String(codeOf(error)).startsWith("OAUTH_JWT_") || /\bJWT\b|"id_token"/.test(message)) {
    return `Cannot accept ${service}'s token response: its ID token failed a check (${message})`;
  }
  return `Cannot accept ${service}'s token response: ${message}`;
}

/** An RFC 6749 `error` code and its description, bounded, as a page quotes them. */
function quoteOAuthError(code: string, description: string | undefined): string {
  const quotedCode = bounded(code, 64) || "unknown_error";
  return description ? `${quotedCode} ("${bounded(description, MAX_QUOTED_CHARS)}")` : quotedCode;
}

/** `text` without control characters, cut to `maxChars` (with an ellipsis). */
function bounded(text: string, maxChars: number): string {
  // deno-lint-ignore no-control-regex
  const clean = String(text).replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return clean.length > maxChars ? `${clean.slice(0, maxChars - 1).trimEnd()}…` : clean;
}

function messageOf(error: unknown): string {
  return bounded(error instanceof Error ? error.message : "unknown error", MAX_QUOTED_CHARS);
}

function codeOf(error: unknown): unknown {
  return error instanceof Error && "code" in error ? error.code : undefined;
}
