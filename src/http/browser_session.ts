// A browser's sign-in at the gateway, as the page routes share it: the session cookie and its options, the
// current session, what a page shows of the signed-in user, and the sign-in page shown before a page that
// needs one.
import type { Context } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import type { AppEnv } from "./env.ts";
import type { IdentityCheck } from "../login/current_identity.ts";
import type { LocalAccounts } from "../login/local.ts";
import type { UpstreamLogins } from "../login/providers.ts";
import { type BrowserSession, BrowserSessions } from "../login/sessions.ts";
import { randomToken } from "../core/secrets.ts";
import type { SignedInAccount } from "./pages/layout.ts";
import { loginPage } from "./pages/sign_in.ts";
import { gatewayCookieName } from "../core/cookies.ts";
import { html } from "./request_helpers.ts";

/** The browser's sign-in session; the login form's CSRF token; a provider sign-in's browser binding. */
export const SESSION_COOKIE = "gatehouse";
export const LOGIN_CSRF_COOKIE = "gatehouse_login";
export const UPSTREAM_COOKIE = "gatehouse_upstream";

export interface BrowserSignInDependencies {
  sessions: Pick<BrowserSessions, "find" | "end">;
  /** Who a signed-in user is under today's registry (undefined: signed out). */
  currentIdentity: IdentityCheck;
  /** The sign-in page lists the upstream providers and offers the local form when there are accounts. */
  logins: Pick<UpstreamLogins, "list">;
  accounts: Pick<LocalAccounts, "any">;
  /** The public base URL: cookies are `Secure` and `__Host-` when it is https. */
  baseUrl: () => string;
}

/** The options of the gateway's cookies. */
export interface CookieSettings {
  readonly path: string;
  readonly httpOnly: boolean;
  readonly secure: boolean;
  readonly sameSite: "Lax";
}

export interface BrowserSignIn {
  /** Whether the public URL is https. */
  secure(): boolean;
  /** The name of the session cookie. */
  sessionCookie(): string;
  /** The name of one of the gateway's cookies (see `gatewayCookieName()`). */
  cookieName(name: string): string;
  cookieOptions(): CookieSettings;
  /** The browser's session at the gateway, if it has one and its user may still sign in. */
  currentSession(c: Context<AppEnv>): Promise<BrowserSession | undefined>;
  /** The sign-in page, for a browser that must sign in before `returnTo`. */
  signInFirst(c: Context<AppEnv>, returnTo: string, formTargets?: readonly string[]): Response;
}

/** What a page shows of the signed-in user: the name, and the session's CSRF token for signing out. */
export function accountOf(session: BrowserSession): SignedInAccount;
export function accountOf(session: BrowserSession | undefined): SignedInAccount | undefined;
export function accountOf(session: BrowserSession | undefined): SignedInAccount | undefined {
  return session ? { user: session.identity.name, csrf: session.csrf } : undefined;
}

/** The browser sign-in helpers over `deps`; the cookie names follow the base URL's scheme as it changes. */
export function createBrowserSignIn(deps: BrowserSignInDependencies): BrowserSignIn {
  const { sessions, logins, accounts } = deps;
  const secure = () => deps.baseUrl().startsWith("https:");
  const cookieName = (name: string) => gatewayCookieName(name, deps.baseUrl());
  const sessionCookie = () => cookieName(SESSION_COOKIE);
  const cookieOptions = () => ({ path: "/", httpOnly: true, secure: secure(), sameSite: "Lax" as const });
  return {
    secure,
    sessionCookie,
    cookieName,
    cookieOptions,
    async currentSession(c) {
      const token = getCookie(c, sessionCookie());
      const session = await sessions.find(token);
      if (!session) return undefined;
      const identity = deps.currentIdentity(session.identity);
      if (!identity) {
        await sessions.end(token);
        return undefined;
      }
      return { ...session, identity };
    },
    signInFirst(c, returnTo, formTargets = []) {
      const csrf = randomToken(16);
      setCookie(c, cookieName(LOGIN_CSRF_COOKIE), csrf, { ...cookieOptions(), maxAge: 3600 });
      return html(
        c,
        loginPage({ returnTo, csrf, providers: logins.list(), localAccounts: accounts.any() }),
        200,
        formTargets,
      );
    },
  };
}
