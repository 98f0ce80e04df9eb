// Signing in for an authorization request (RFC 6749 §4.1): /authorize, the password and upstream sign-ins,
// the consent answer, and signing out.
import type { Context, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../env.ts";
import type { LocalAccounts } from "../../login/local.ts";
import type { UpstreamLogins } from "../../login/providers.ts";
import type { BrowserSessions } from "../../login/sessions.ts";
import {
  type AuthorizationRequest,
  type AuthorizationServer,
  RedirectableError,
} from "../../oauth/authorization_server.ts";
import { SCOPE_DESCRIPTIONS } from "../../oauth/scopes.ts";
import { OAuthError } from "../../core/oauth_error.ts";
import { randomToken, timingSafeEqual } from "../../core/secrets.ts";
import { accountOf, type BrowserSignIn, LOGIN_CSRF_COOKIE, UPSTREAM_COOKIE } from "../browser_session.ts";
import { errorPage, noticePage } from "../pages/layout.ts";
import { consentPage, loginPage } from "../pages/sign_in.ts";
import { clientAddressOf, formOf, html } from "../request_helpers.ts";

export interface SignInRouteDependencies {
  server: Pick<
    AuthorizationServer,
    | "parseAuthorizationRequest"
    | "errorRedirect"
    | "hasConsent"
    | "issueCode"
    | "holdForConsent"
    | "takeHeldForConsent"
    | "recordConsent"
  >;
  sessions: Pick<BrowserSessions, "create" | "end">;
  accounts: Pick<LocalAccounts, "signIn" | "any">;
  logins: Pick<UpstreamLogins, "list" | "start" | "finish">;
  /** The public base URL (upstream providers call back under it). */
  baseUrl: () => string;
  /** The session cookie, the current session, and the sign-in page. */
  browser: BrowserSignIn;
}

/** Where a sign-in may send the browser back to: this server's own pages, never elsewhere. */
function isReturnAddress(path: string): boolean {
  return path.startsWith("/authorize?") || path.startsWith("/connect/") || path === "/connections" ||
    path === "/status";
}

/** The only fields a consent form posts: the handle of the held request, the CSRF token, the answer. */
const CONSENT_FORM_FIELDS = new Set(["request", "csrf", "decision"]);

/**
 * What CSP form-action must allow for the redirect after a form: the origin of an http(s) redirect URI,
 * or the scheme of a native app's private-use one (its origin is "null").
 */
function formTargetOf(redirectUri: string): string {
  const url = new URL(redirectUri);
  return url.protocol === "http:" || url.protocol === "https:" ? url.origin : url.protocol;
}

/** How the consent page names where the browser returns: the host, or the scheme and host of an app. */
function redirectHostOf(redirectUri: string): string {
  const url = new URL(redirectUri);
  if (url.protocol === "http:" || url.protocol === "https:") return url.host;
  return url.host ? `${url.protocol}//${url.host}` : url.protocol;
}

/**
 * The authorization request, validated; or the answer to give instead: back to the client with the error
 * when its redirect URI is known good, else an error page (RFC 6749 §4.1.2.1).
 */
async function authorizationRequestOrAnswer(
  server: SignInRouteDependencies["server"],
  c: Context<AppEnv>,
  params: URLSearchParams,
): Promise<AuthorizationRequest | Response> {
  try {
    return await server.parseAuthorizationRequest(params);
  } catch (error) {
    if (error instanceof RedirectableError) return c.redirect(server.errorRedirect(error), 303);
    if (error instanceof OAuthError) return html(c, errorPage("Cannot sign in", error.message), 400);
    throw error;
  }
}

/** Mounts `/authorize`, `/login`, `/login/:provider` and its callback, `/authorize/consent`, `/logout`. */
export function mountSignInRoutes(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  mountAuthorize(app, deps);
  mountPasswordSignIn(app, deps);
  mountUpstreamSignIn(app, deps);
  mountConsentAnswer(app, deps);
  mountSignOut(app, deps);
}

/** `GET /authorize`: sign in first, then straight back to the client if it was approved, else consent. */
function mountAuthorize(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  const { server, browser } = deps;
  app.get("/authorize", async (c) => {
    const query = new URL(c.req.url).searchParams;
    const request = await authorizationRequestOrAnswer(server, c, query);
    if (request instanceof Response) return request;
    const session = await browser.currentSession(c);
    // CSP form-action also governs the redirects after a submission (CSP3 §6.3.1): signing in for a
    // client the user already approved ends, through /authorize's 303, at the client's origin.
    if (!session) {
      return browser.signInFirst(c, `/authorize?${query.toString()}`, [formTargetOf(request.redirectUri)]);
    }
    if (server.hasConsent(session.identity.id, request.client.clientId)) {
      return c.redirect(await server.issueCode(request, session.identity), 303);
    }
    // The form names this one validated request by a handle; it carries none of its fields.
    const handle = await server.holdForConsent(query, session.csrf);
    return html(
      c,
      consentPage({
        client: { name: request.client.name, kind: request.client.kind, id: request.client.clientId },
        redirectHost: redirectHostOf(request.redirectUri),
        resource: request.resource,
        scopes: request.scope.split(" ").map((scope) => ({
          scope,
          description: SCOPE_DESCRIPTIONS[scope as keyof typeof SCOPE_DESCRIPTIONS] ?? scope,
        })),
        account: accountOf(session),
        fields: { request: handle, csrf: session.csrf },
      }),
      200,
      [formTargetOf(request.redirectUri)],
    );
  });
}

/** `POST /login`: the local account form, checked against its CSRF cookie and the sign-in throttle. */
function mountPasswordSignIn(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  const { server, sessions, accounts, logins, browser } = deps;
  app.post("/login", async (c) => {
    const form = await formOf(c);
    const returnTo = form.get("return_to") ?? "";
    // Only back into this server's authorization endpoint: never an open redirect.
    if (!isReturnAddress(returnTo)) throw new OAuthError("invalid_request", "Bad return address");
    const cookie = getCookie(c, browser.cookieName(LOGIN_CSRF_COOKIE));
    const csrf = form.get("csrf") ?? "";
    if (!cookie || !timingSafeEqual(cookie, csrf)) {
      return html(c, errorPage("Cannot sign in", "The form expired; go back and try again."), 403);
    }
    const username = form.get("username") ?? "";
    const attempt = await accounts.signIn(username, form.get("password") ?? "", clientAddressOf(c));
    if (attempt.outcome !== "signed_in") {
      const redirectOrigins = await server
        .parseAuthorizationRequest(new URLSearchParams(returnTo.slice("/authorize?".length)))
        .then((request) => [formTargetOf(request.redirectUri)], () => []);
      const throttled = attempt.outcome === "throttled";
      if (throttled) c.header("retry-after", String(attempt.retryAfterSeconds));
      return html(
        c,
        loginPage({
          returnTo,
          csrf,
          username,
          error: throttled
            ? `Too many failed sign-ins. Try again later (in ${
              Math.ceil(attempt.retryAfterSeconds / 60)
            } min).`
            : "Wrong user name or password.",
          providers: logins.list(),
          localAccounts: accounts.any(),
        }),
        throttled ? 429 : 401,
        redirectOrigins,
      );
    }
    const { token } = await sessions.create(attempt.identity);
    setCookie(c, browser.sessionCookie(), token, browser.cookieOptions());
    return c.redirect(returnTo, 303);
  });
}

/** Upstream identity providers: there and back again, then the same browser session as a local sign-in. */
function mountUpstreamSignIn(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  const { sessions, logins, browser } = deps;
  // Binds an upstream sign-in to the browser that started it (RFC 6749 §10.12); reused across tabs.
  const upstreamCookie = () => browser.cookieName(UPSTREAM_COOKIE);
  const callbackUrl = (provider: string) =>
    `${deps.baseUrl()}/login/${encodeURIComponent(provider)}/callback`;
  app.get("/login/:provider", async (c) => {
    const returnTo = c.req.query("return_to") ?? "";
    if (!isReturnAddress(returnTo)) throw new OAuthError("invalid_request", "Bad return address");
    const provider = c.req.param("provider");
    const binding = getCookie(c, upstreamCookie()) ?? randomToken(16);
    let started: Awaited<ReturnType<UpstreamLogins["start"]>>;
    try {
      started = await logins.start(provider, returnTo, callbackUrl(provider), binding, clientAddressOf(c));
    } catch (error) {
      if (error instanceof OAuthError) throw error;
      // Discovery failed: the provider is down or misconfigured.
      return html(
        c,
        errorPage("Cannot sign in", "The sign-in provider cannot be reached; try again later."),
        400,
      );
    }
    if ("throttled" in started) {
      // RFC 6585 §4: too many sign-ins started from this address; RFC 9110 §10.2.3 says when to retry.
      c.header("retry-after", String(started.retryAfterSeconds));
      return html(
        c,
        errorPage(
          "Cannot sign in",
          `Too many sign-ins were started from your address. Try again later (in ${
            Math.ceil(started.retryAfterSeconds / 60)
          } min).`,
        ),
        429,
      );
    }
    setCookie(c, upstreamCookie(), binding, { ...browser.cookieOptions(), maxAge: 600 });
    return c.redirect(started.location, 303);
  });
  app.get("/login/:provider/callback", async (c) => {
    const provider = c.req.param("provider");
    let outcome;
    try {
      outcome = await logins.finish(
        provider,
        new URL(c.req.url),
        callbackUrl(provider),
        getCookie(c, upstreamCookie()),
        clientAddressOf(c),
      );
    } catch (error) {
      if (error instanceof OAuthError) return html(c, errorPage("Cannot sign in", error.message), 403);
      throw error;
    }
    const { token } = await sessions.create(outcome.identity);
    setCookie(c, browser.sessionCookie(), token, browser.cookieOptions());
    return c.redirect(outcome.returnTo, 303);
  });
}

/** `POST /authorize/consent`: the answer to the consent page, for the request it held by handle. */
function mountConsentAnswer(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  const { server, browser } = deps;
  app.post("/authorize/consent", async (c) => {
    const form = await formOf(c);
    const session = await browser.currentSession(c);
    if (!session || !timingSafeEqual(session.csrf, form.get("csrf") ?? "")) {
      return html(
        c,
        errorPage("Cannot continue", "The form expired; start again from your application."),
        403,
      );
    }
    const unexpected = [...form.keys()].find((name) => !CONSENT_FORM_FIELDS.has(name));
    if (unexpected !== undefined) {
      return html(
        c,
        errorPage(
          "Cannot continue",
          `invalid_request: the consent form has no field "${unexpected.slice(0, 64)}"`,
        ),
        400,
      );
    }
    const held = await server.takeHeldForConsent(form.get("request") ?? "", session.csrf);
    if (!held) {
      return html(
        c,
        errorPage(
          "Cannot continue",
          "invalid_request: this consent form expired or was already answered; start again from your application.",
        ),
        400,
      );
    }
    const request = await authorizationRequestOrAnswer(server, c, held);
    if (request instanceof Response) return request;
    if (form.get("decision") !== "allow") {
      server.recordConsent(request, session.identity.id, "deny");
      return c.redirect(
        server.errorRedirect(
          new RedirectableError(
            "access_denied",
            "The user denied access",
            request.redirectUri,
            request.state,
          ),
        ),
        303,
      );
    }
    server.recordConsent(request, session.identity.id, "approve");
    return c.redirect(await server.issueCode(request, session.identity), 303);
  });
}

/**
 * `POST /logout`: ends this browser's session, here and in the store, asked for only by a form of that
 * session (the sign-out button of every page a signed-in user sees).
 */
function mountSignOut(app: Hono<AppEnv>, deps: SignInRouteDependencies): void {
  const { sessions, browser } = deps;
  app.post("/logout", async (c) => {
    const form = await formOf(c).catch(() => new URLSearchParams());
    const session = await browser.currentSession(c);
    // A sign-out is a state change: only a form of this session may ask for it (no logout CSRF).
    if (session && !timingSafeEqual(session.csrf, form.get("csrf") ?? "")) {
      return html(
        c,
        errorPage("Cannot sign out", "The form expired; use the Sign out button above.", accountOf(session)),
        403,
      );
    }
    if (session) {
      await sessions.end(getCookie(c, browser.sessionCookie()));
      setCookie(c, browser.sessionCookie(), "", { ...browser.cookieOptions(), maxAge: 0 });
    }
    // Signing out of the browser ends no grant: applications keep their tokens until revoked.
    return html(
      c,
      noticePage(
        "Signed out",
        "You are signed out of Gatehouse. Applications you allowed keep their access until it expires " +
          "or is revoked.",
        { next: { href: "/connections", label: "Sign in again" } },
      ),
      200,
    );
  });
}
