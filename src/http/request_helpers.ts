// What the route groups share about a request: its body as a form or text (with content-type checks), the
// client's address, a page answer with its security headers, and the login form's CSRF cookie.
import type { Context, Next } from "hono";
import type { AppEnv } from "./env.ts";
import { clientAddress, peerAddress } from "../core/addresses.ts";
import { OAuthError } from "../core/oauth_error.ts";
import { refuseRepeatedParameters, repeatedParameter } from "../oauth/authorization_server.ts";
import { errorPage, pageHeaders } from "./pages/layout.ts";

// The media type with parameters or none, never a longer type that starts the same (RFC 9110 §8.3.1).
const FORM_TYPE = /^application\/x-www-form-urlencoded[ \t]*(;|$)/i;
export const JSON_TYPE = /^application\/json[ \t]*(;|$)/i;

/** The body as text; a client gone mid-body (or a broken chunked one) is its mistake, not an internal error. */
export async function bodyText(c: Context<AppEnv>): Promise<string> {
  try {
    return await c.req.text();
  } catch {
    throw new OAuthError("invalid_request", "The request body could not be read");
  }
}

/** Reads an `application/x-www-form-urlencoded` body, refusing anything else. */
export async function formOf(c: Context<AppEnv>): Promise<URLSearchParams> {
  if (!FORM_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded");
  }
  const form = new URLSearchParams(await bodyText(c));
  refuseRepeatedParameters(form);
  return form;
}

/** The client's address: the TCP peer, or the forwarded one when the peer is a trusted proxy. */
export function clientAddressOf(c: Context<AppEnv>): string | undefined {
  return clientAddress(
    peerAddress(c.env),
    c.req.header("x-forwarded-for"),
    c.get("snapshot").registry.gateway.trustedProxies,
  );
}

/** A page, through the context so that cookies set on it go out with it. */
export function html(
  c: Context<AppEnv>,
  body: string,
  status: 200 | 400 | 401 | 403 | 429 = 200,
  formTargets: readonly string[] = [],
) {
  return c.body(body, status, pageHeaders(formTargets));
}

/** RFC 6749 §3.1: no parameter twice on the browser legs either (the forms check their bodies). */
export async function refuseRepeatedQuery(c: Context<AppEnv>, next: Next) {
  const repeated = repeatedParameter(new URL(c.req.url).searchParams);
  if (repeated === undefined) return await next();
  return html(
    c,
    errorPage(
      "Cannot continue",
      `invalid_request: the parameter "${repeated.slice(0, 64)}" is included more than once`,
    ),
    400,
  );
}
