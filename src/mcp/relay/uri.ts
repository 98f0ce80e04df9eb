/**
 * Resource URIs in one canonical form: policies match it, routing looks it up and the backend receives it,
 * so no spelling of a URI reaches a backend that the policies did not see.
 */
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";

/**
 * The WHATWG URL serialisation of a resource URI (`new URL(uri).href`, as the SDKs parse it): scheme
 * lower-cased, surrounding whitespace and an empty port dropped, `.`/`..` and `%2e` segments resolved.
 * What does not parse is refused with -32602 (MCP: resource URIs are RFC 3986 URIs).
 */
export function canonicalResourceUri(raw: unknown): string {
  if (typeof raw !== "string" || raw === "") {
    throw new JsonRpcError(JSONRPC.invalidParams, "Invalid params: uri must be a non-empty string");
  }
  try {
    return new URL(raw).href;
  } catch {
    throw new JsonRpcError(JSONRPC.invalidParams, `Invalid params: uri ${JSON.stringify(raw)} is not a URI`);
  }
}

/** The canonical form of a URI a backend listed, or the URI as listed when it does not parse. */
export function canonicalListedUri(raw: string): string {
  try {
    return new URL(raw).href;
  } catch {
    return raw;
  }
}

/**
 * An RFC 6570 level 1 template as a matcher of canonical URIs: each `{var}` matches one path segment or
 * more. Matched against canonical URIs only, so dot segments have already been resolved and cannot walk
 * out of the template's literal prefix.
 */
export function templateMatcher(template: string): RegExp {
  const parts = template.split(/\{[^}]+\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  // A variable never spans a query or fragment delimiter into a part the template does not have.
  return new RegExp(`^${parts.join("[^?#]+")}$`);
}
