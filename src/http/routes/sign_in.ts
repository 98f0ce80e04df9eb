import type { Context, Hono } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "../http/app.ts";
import { clientAddress, peerAddress } from "../core/addresses.ts";
import type { LocalAccounts } from "../login/local.ts";
import type { IdentityCheck } from "../login/current_identity.ts";
import type { UpstreamLogins } from "../login/providers.ts";
import { BrowserSessions } from "../login/sessions.ts";
import { verifyAccessToken } from "./access_token.ts";
import {
  type AuthorizationServer,
  RedirectableError,
  refuseRepeatedParameters,
  repeatedParameter,
} from "./authorization_server.ts";
import { SCOPE_DESCRIPTIONS, SUPPORTED_SCOPES } from "./scopes.ts";
import { type ClientDirectory, REGISTRATION_LIMITS } from "./clients.ts";
import { OAuthError } from "../core/oauth_error.ts";
import type { SigningKey } from "./keys.ts";
import type { ServiceConnections } from "../services/connections.ts";
import { connectionsPage, consentPage, errorPage, loginPage, pageHeaders } from "./pages.ts";
import { randomToken, timingSafeEqual } from "../core/secrets.ts";
import { ANONYMOUS } from "../core/caller.ts";
import { statusPage } from "../status/page.ts";
import type { StatusReport, StatusViewer } from "../status/status.ts";

/** Members of this group see everything on the status page. */
export const ADMIN_GROUP = "admin";

export interface OAuthRouteDependencies {
  server: AuthorizationServer;
  clients: ClientDirectory;
  sessions: BrowserSessions;
  accounts: LocalAccounts;
  logins: UpstreamLogins;
  /** Users' connections to third-party services (consent links). */
  connections?: ServiceConnections;
  /** Who a signed-in user is under today's registry (undefined: signed out). */
  currentIdentity: IdentityCheck;
  key: SigningKey;
  /** The public base URL. */
  baseUrl: () => string;
  /** The status page's data, for `/status` and `/status.json`. */
  status?: (viewer: StatusViewer) => Promise<StatusReport>;
  /** Told when a registration from `address` is refused by the per-address throttle. */
  onRegistrationThrottled?: (address: string) => void;
}

/** The login form's csrf cookie: `__Host-` over https, so that a sibling host cannot plant one. */
const loginCsrfCookie = (secure: boolean) => secure ? "__Host-gatehouse_login" : "gatehouse_login";

/** Where a sign-in may send the browser back to: this server's own pages, never elsewhere. */
function isReturnAddress(path: string): boolean {
  return path.startsWith("/authorize?") || path.startsWith("/connect/") || path === "/connections" ||
    path === "/status";
}

// The media type with parameters or none, never a longer type that starts the same (RFC 9110 §8.3.1).
const FORM_TYPE = /^application\/x-www-form-urlencoded[ \t]*(;|$)/i;
const JSON_TYPE = /^application\/json[ \t]*(;|$)/i;

/** The body as text; a client gone mid-body (or a broken chunked one) is its mistake, not an internal error. */
async function bodyText(c: Context<AppEnv>): Promise<string> {
  try {
    return await c.req.text();
  } catch {
    throw new OAuthError("invalid_request", "The request body could not be read");
  }
}

/** Reads an `application/x-www-form-urlencoded` body, refusing anything else. */
async function formOf(c: Context<AppEnv>): Promise<URLSearchParams> {
  if (!FORM_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new OAuthError("invalid_request", "The body must be application/x-www-form-urlencoded");
  }
  const form = new URLSearchParams(await bodyText(c));
  refuseRepeatedParameters(form);
  return form;
}

/** The client's address: the TCP peer, or the forwarded one when the peer is a trusted proxy. */
function clientAddressOf(c: Context<AppEnv>): string | undefined {
  return clientAddress(
    peerAddress(c.env),
    c.req.header("x-forwarded-for"),
    c.get("snapshot").registry.gateway.trustedProxies,
  );
}

/** A page, through the context so that cookies set on it go out with it. */
function html(
  c: Context<AppEnv>,
  body: string,
  status: 200 | 400 | 401 | 403 | 429 = 200,
  formTargets: readonly string[] = [],
) {
  return c.body(body, status, pageHeaders(formTargets));
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

/** A registration body (RFC 7591 §3.1): a JSON object, bounded before it is parsed. */
async function registrationBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  // RFC 7591 §3.1: the body is application/json (a form or text/plain one is also what a foreign page can
  // send without a CORS preflight).
  if (!JSON_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new OAuthError("invalid_client_metadata", "The body must be application/json");
  }
  const text = await bodyText(c);
  if (new TextEncoder().encode(text).length > REGISTRATION_LIMITS.maxBodyBytes) {
    throw new OAuthError(
      "invalid_client_metadata",
      `The registration is larger than ${REGISTRATION_LIMITS.maxBodyBytes} bytes`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OAuthError("invalid_client_metadata", "The body must be a JSON object");
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new OAuthError("invalid_client_metadata", "The body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Mounts the authorization server: discovery, /authorize with sign-in and consent, /token, clients. */
export function mountOAuthRoutes(app: Hono<AppEnv>, deps: OAuthRouteDependencies): void {
  const { server, clients, sessions, accounts, logins } = deps;
  const secure = () => deps.baseUrl().startsWith("https:");
  const sessionCookie = () => BrowserSessions.cookieName(secure());
  // Binds an upstream sign-in to the browser that started it (RFC 6749 §10.12); reused across tabs.
  const upstreamCookie = () => secure() ? "__Host-gatehouse_upstream" : "gatehouse_upstream";
  const cookieOptions = () => ({ path: "/", httpOnly: true, secure: secure(), sameSite: "Lax" as const });

  // RFC 6749 §3.1: no parameter twice on the browser legs either (the forms check their bodies).
  for (const path of ["/authorize", "/login/*", "/connect/*"]) {
    app.use(path, async function refuseRepeatedQuery(c, next) {
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
    });
  }

  const metadata = (c: Context<AppEnv>) => {
    const base = deps.baseUrl();
    const { registration } = c.get("snapshot").registry.gateway;
    return {
      issuer: base,
      authorization_endpoint: `${base}/authorize`,
      token_endpoint: `${base}/token`,
      jwks_uri: `${base}/jwks.json`,
      ...(registration === "open" ? { registration_endpoint: `${base}/register` } : {}),
      revocation_endpoint: `${base}/revoke`,
      introspection_endpoint: `${base}/introspect`,
      response_types_supported: ["code"],
      response_modes_supported: ["query"],
      grant_types_supported: ["authorization_code", "refresh_token", "client_credentials"],
      code_challenge_methods_supported: ["S256"],
      token_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      revocation_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post", "none"],
      introspection_endpoint_auth_methods_supported: ["client_secret_basic", "client_secret_post"],
      scopes_supported: [...SUPPORTED_SCOPES],
      client_id_metadata_document_supported: true,
      authorization_response_iss_parameter_supported: true,
    };
  };
  const serveMetadata = (c: Context<AppEnv>) => c.json(metadata(c), 200, { "cache-control": "max-age=300" });
  // Clients look for these at several paths (RFC 8414 §3, OIDC discovery, and path-inserted forms).
  for (const path of ["/.well-known/oauth-authorization-server", "/.well-known/openid-configuration"]) {
    app.get(path, serveMetadata);
    app.get(`${path}/mcp`, serveMetadata);
    app.get(`${path}/mcp/:backend`, serveMetadata);
  }
  app.get("/mcp/.well-known/openid-configuration", serveMetadata);

  const protectedResource = (c: Context<AppEnv>, resource: string) =>
    c.json(
      {
        resource,
        authorization_servers: [deps.baseUrl()],
        bearer_methods_supported: ["header"],
        scopes_supported: ["mcp"],
        resource_name: "Gatehouse",
      },
      200,
      { "cache-control": "max-age=300" },
    );
  app.get("/.well-known/oauth-protected-resource", (c) => protectedResource(c, `${deps.baseUrl()}/mcp`));
  app.get("/.well-known/oauth-protected-resource/mcp", (c) => protectedResource(c, `${deps.baseUrl()}/mcp`));
  app.get("/.well-known/oauth-protected-resource/mcp/:backend", (c) => {
    const backend = c.req.param("backend");
    if (!Object.hasOwn(c.get("snapshot").registry.backends, backend)) {
      return c.json({ error: "not_found" }, 404);
    }
    return protectedResource(c, `${deps.baseUrl()}/mcp/${backend}`);
  });

  app.get(
    "/jwks.json",
    (c) => c.json({ keys: [deps.key.publicJwk] }, 200, { "cache-control": "max-age=300" }),
  );

  // RFC 7591 registration and RFC 7592 management.
  app.post("/register", async (c) => {
    if (c.get("snapshot").registry.gateway.registration !== "open") {
      throw new OAuthError("access_denied", "Dynamic client registration is off", 403);
    }
    const body = await registrationBody(c);
    const address = clientAddressOf(c);
    const { registrationsPerHour } = c.get("snapshot").registry.gateway;
    const wait = clients.registrationWait(address, registrationsPerHour);
    if (wait !== undefined) {
      deps.onRegistrationThrottled?.(address!);
      throw new OAuthError(
        "too_many_requests",
        `Too many registrations from this address; try again in ${wait} s`,
        429,
        { "retry-after": String(wait) },
      );
    }
    const registered = await clients.register(body, `${deps.baseUrl()}/register`, address);
    return c.json(registered, 201, { "cache-control": "no-store" });
  });
  const registrationClient = async (c: Context<AppEnv>) => {
    const authorization = c.req.header("authorization") ?? "";
    const token = authorization.toLowerCase().startsWith("bearer ") ? authorization.slice(7).trim() : "";
    const client = token
      ? await clients.byRegistrationToken(c.req.param("client_id") ?? "", token)
      : undefined;
    if (!client) throw new OAuthError("invalid_token", "Unknown client or registration access token", 401);
    return client;
  };
  app.get("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    return c.json({ client_id: client.clientId, ...client.metadata }, 200, { "cache-control": "no-store" });
  });
  app.put("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    const body = await registrationBody(c);
    if (body.client_id !== client.clientId) {
      throw new OAuthError(
        "invalid_client_metadata",
        "The body must be the client's metadata with its client_id",
      );
    }
    const { client_id: _id, client_secret: _secret, registration_access_token: _token, ...metadata } = body;
    const validated = clients.validate(metadata);
    // A client cannot turn itself public or confidential: its secret (or lack of one) stays as issued.
    if (validated.token_endpoint_auth_method !== client.tokenEndpointAuthMethod) {
      throw new OAuthError("invalid_client_metadata", "token_endpoint_auth_method cannot be changed");
    }
    clients.update(client.clientId, validated);
    return c.json({ client_id: client.clientId, ...validated }, 200, { "cache-control": "no-store" });
  });
  app.delete("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    clients.delete(client.clientId);
    return c.body(null, 204);
  });

  /** The browser's session at the gateway, if it has one and its user may still sign in. */
  const currentSession = async (c: Context<AppEnv>) => {
    const token = getCookie(c, sessionCookie());
    const session = await sessions.find(token);
    if (!session) return undefined;
    const identity = deps.currentIdentity(session.identity);
    if (!identity) {
      await sessions.end(token);
      return undefined;
    }
    return { ...session, identity };
  };

  /**
   * The authorization request, validated; or the answer to give instead: back to the client with the error
   * when its redirect URI is known good, else an error page (RFC 6749 §4.1.2.1).
   */
  const authorizationRequestOrAnswer = async (c: Context<AppEnv>, params: URLSearchParams) => {
    try {
      return await server.parseAuthorizationRequest(params);
    } catch (error) {
      if (error instanceof RedirectableError) return c.redirect(server.errorRedirect(error), 303);
      if (error instanceof OAuthError) return html(c, errorPage("Cannot sign in", error.message), 400);
      throw error;
    }
  };

  /** The sign-in page, for a browser that must sign in before `returnTo`. */
  const signInFirst = (c: Context<AppEnv>, returnTo: string, formTargets: readonly string[] = []) => {
    const csrf = randomToken(16);
    setCookie(c, loginCsrfCookie(secure()), csrf, { ...cookieOptions(), maxAge: 3600 });
    return html(
      c,
      loginPage({ returnTo, csrf, providers: logins.list(), localAccounts: accounts.any() }),
      200,
      formTargets,
    );
  };

  if (deps.status) {
    const report = deps.status;
    /** Who is looking: everyone is the (admin) anonymous user with `auth: none`, else the signed-in user. */
    const statusViewer = async (c: Context<AppEnv>): Promise<StatusViewer | undefined> => {
      if (c.get("snapshot").registry.gateway.auth === "none") {
        return { kind: "user", subject: ANONYMOUS, name: ANONYMOUS.name, admin: true };
      }
      const session = await currentSession(c);
      if (!session) return undefined;
      const { identity } = session;
      return {
        kind: "user",
        subject: {
          id: identity.userId,
          groups: identity.groups,
          clientId: undefined,
          provider: identity.provider,
        },
        name: identity.name,
        admin: identity.groups.includes(ADMIN_GROUP),
      };
    };
    const serveStatus = async (c: Context<AppEnv>, json: boolean) => {
      const mode = c.get("snapshot").registry.gateway.statusPage;
      let viewer = await statusViewer(c);
      if (!viewer) {
        if (mode !== "public") {
          return json
            ? c.json({ error: "sign_in_required", error_description: "Sign in at /status first" }, 401)
            : signInFirst(c, "/status");
        }
        viewer = { kind: "anonymous" };
      }
      if (mode === "admins" && !(viewer.kind === "user" && viewer.admin)) {
        return json
          ? c.json({ error: "forbidden", error_description: "The status page is for administrators" }, 403)
          : html(c, errorPage("Not allowed", "The status page is for administrators."), 403);
      }
      const body = await report(viewer);
      return json ? c.json(body, 200, { "cache-control": "no-store" }) : html(c, statusPage(body));
    };
    app.get("/status", (c) => serveStatus(c, false));
    app.get("/status.json", (c) => serveStatus(c, true));
  }

  app.get("/authorize", async (c) => {
    const query = new URL(c.req.url).searchParams;
    const request = await authorizationRequestOrAnswer(c, query);
    if (request instanceof Response) return request;
    const session = await currentSession(c);
    // CSP form-action also governs the redirects after a submission (CSP3 §6.3.1): signing in for a
    // client the user already approved ends, through /authorize's 303, at the client's origin.
    if (!session) {
      return signInFirst(c, `/authorize?${query.toString()}`, [formTargetOf(request.redirectUri)]);
    }
    if (server.hasConsent(session.identity.userId, request.client.clientId)) {
      return c.redirect(await server.issueCode(request, session.identity), 303);
    }
    // The form names this one validated request by a handle; it carries none of its fields.
    const handle = await server.holdForConsent(query, session.csrf);
    return html(
      c,
      consentPage({
        clientName: request.client.name,
        redirectHost: redirectHostOf(request.redirectUri),
        resource: request.resource,
        scopes: request.scope.split(" ").map((scope) => ({
          scope,
          description: SCOPE_DESCRIPTIONS[scope as keyof typeof SCOPE_DESCRIPTIONS] ?? scope,
        })),
        user: session.identity.name,
        fields: { request: handle, csrf: session.csrf },
      }),
      200,
      [formTargetOf(request.redirectUri)],
    );
  });

  app.post("/login", async (c) => {
    const form = await formOf(c);
    const returnTo = form.get("return_to") ?? "";
    // Only back into this server's authorization endpoint: never an open redirect.
    if (!isReturnAddress(returnTo)) throw new OAuthError("invalid_request", "Bad return address");
    const cookie = getCookie(c, loginCsrfCookie(secure()));
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
    setCookie(c, sessionCookie(), token, cookieOptions());
    return c.redirect(returnTo, 303);
  });

  // Upstream identity providers: there and back again, then the same browser session as a local sign-in.
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
    setCookie(c, upstreamCookie(), binding, { ...cookieOptions(), maxAge: 600 });
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
    setCookie(c, sessionCookie(), token, cookieOptions());
    return c.redirect(outcome.returnTo, 303);
  });

  app.post("/authorize/consent", async (c) => {
    const form = await formOf(c);
    const session = await currentSession(c);
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
    const request = await authorizationRequestOrAnswer(c, held);
    if (request instanceof Response) return request;
    if (form.get("decision") !== "allow") {
      server.recordConsent(request, session.identity.userId, "deny");
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
    server.recordConsent(request, session.identity.userId, "approve");
    return c.redirect(await server.issueCode(request, session.identity), 303);
  });

  app.post("/logout", async (c) => {
    const form = await formOf(c).catch(() => new URLSearchParams());
    const session = await currentSession(c);
    // A sign-out is a state change: only a form of this session may ask for it (no logout CSRF).
    if (session && !timingSafeEqual(session.csrf, form.get("csrf") ?? "")) {
      return html(c, errorPage("Cannot sign out", "The form expired; reload the page and try again."), 403);
    }
    if (session) {
      await sessions.end(getCookie(c, sessionCookie()));
      setCookie(c, sessionCookie(), "", { ...cookieOptions(), maxAge: 0 });
    }
    return html(c, errorPage("Signed out", "You are signed out of Gatehouse."), 200);
  });

  // Section 6: consent links, the service's callback, and the user's list of connections.
  const { connections } = deps;
  if (connections) {
    // After signing in, the browser goes on to the service's authorization endpoint (CSP form-action).
    const serviceRedirectTargets = (service: string) => {
      const origin = connections.authorizationOrigin(service);
      return origin ? [origin] : [];
    };
    app.get("/connect/:service", async (c) => {
      const service = c.req.param("service");
      const ticket = c.req.query("ticket") ?? "";
      const session = await currentSession(c);
      if (!session) {
        return signInFirst(
          c,
          `/connect/${encodeURIComponent(service)}?ticket=${encodeURIComponent(ticket)}`,
          serviceRedirectTargets(service),
        );
      }
      try {
        return c.redirect(await connections.start(service, ticket, session.identity.userId), 303);
      } catch (error) {
        if (error instanceof OAuthError) {
          return html(c, errorPage("Cannot connect", error.message), error.status === 403 ? 403 : 400);
        }
        throw error;
      }
    });
    app.get("/connect/:service/callback", async (c) => {
      const service = c.req.param("service");
      const session = await currentSession(c);
      try {
        await connections.finish(service, new URL(c.req.url), session?.identity.userId);
      } catch (error) {
        if (error instanceof OAuthError) {
          return html(c, errorPage("Cannot connect", error.message), error.status === 403 ? 403 : 400);
        }
        throw error;
      }
      return html(
        c,
        errorPage("Connected", `Your ${service} account is connected. Return to your client and try again.`),
        200,
      );
    });
    app.get("/connections", async (c) => {
      const session = await currentSession(c);
      if (!session) return signInFirst(c, "/connections");
      return html(
        c,
        connectionsPage({
          user: session.identity.name,
          csrf: session.csrf,
          connections: connections.list(session.identity.userId),
        }),
      );
    });
    app.post("/connections/:service/disconnect", async (c) => {
      const form = await formOf(c);
      const session = await currentSession(c);
      if (!session || !timingSafeEqual(session.csrf, form.get("csrf") ?? "")) {
        return html(c, errorPage("Cannot continue", "The form expired; reload the page."), 403);
      }
      await connections.disconnect(session.identity.userId, c.req.param("service"));
      return c.redirect("/connections", 303);
    });
  }

  app.post("/token", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    const tokens = await server.token(client, form);
    return c.json(tokens, 200, { "cache-control": "no-store", pragma: "no-cache" });
  });

  app.post("/revoke", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    const token = form.get("token");
    if (!token) throw new OAuthError("invalid_request", "token is missing");
    const access = await verifyAccessToken(token, deps.key, {
      issuer: server.issuer,
      audiences: server.resources(),
      isRevoked: () => false,
    }).catch(() => undefined);
    await server.revoke(
      client,
      token,
      access && access.clientId === client.clientId ? access.jti : undefined,
      access?.expiresAt,
    );
    return c.body(null, 200, { "cache-control": "no-store" });
  });

  app.post("/introspect", async (c) => {
    const form = await formOf(c);
    const client = await clients.authenticate(form, c.req.header("authorization") ?? null);
    // RFC 7662 §4: only clients the administrator trusts with it, never a self-registered stranger.
    if (!client.mayIntrospect) {
      throw new OAuthError("invalid_client", "This client may not introspect tokens", 401);
    }
    const token = form.get("token") ?? "";
    const claims = await verifyAccessToken(token, deps.key, {
      issuer: server.issuer,
      audiences: server.resources(),
      isRevoked: (jti) => server.isRevoked(jti),
    }).catch(() => undefined);
    if (!claims) return c.json({ active: false }, 200, { "cache-control": "no-store" });
    return c.json(
      {
        active: true,
        iss: server.issuer,
        sub: claims.userId,
        aud: claims.audience,
        client_id: claims.clientId,
        scope: claims.scope,
        exp: claims.expiresAt,
        jti: claims.jti,
        token_type: "Bearer",
        username: claims.name,
      },
      200,
      { "cache-control": "no-store" },
    );
  });
}
