// `/status` and `/status.json`: the gateway's health, cut down to what the viewer may see.
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { ADMIN_GROUP, ANONYMOUS } from "../../core/caller.ts";
import type { StatusReport, StatusViewer } from "../../status/status.ts";
import type { BrowserSession } from "../../login/sessions.ts";
import { accountOf, type BrowserSignIn } from "../browser_session.ts";
import { errorPage } from "../pages/layout.ts";
import { statusPage } from "../pages/status.ts";
import { html } from "../request_helpers.ts";

export interface StatusRouteDependencies {
  /** The status page's data for this viewer. */
  report: (viewer: StatusViewer) => Promise<StatusReport>;
  /** Who is signed in, and the sign-in page for who is not. */
  browser: Pick<BrowserSignIn, "currentSession" | "signInFirst">;
  /** The clock, for "expires in 1 hour". */
  now?: () => number;
}

/** Mounts `/status` (HTML) and `/status.json`, as `gateway.status_page` allows. */
export function mountStatusRoutes(app: Hono<AppEnv>, deps: StatusRouteDependencies): void {
  const { report, browser } = deps;
  const now = deps.now ?? Date.now;
  /** Who is looking: everyone is the (admin) anonymous user with `auth: none`, else the signed-in user. */
  const statusViewer = (
    c: Context<AppEnv>,
    session: BrowserSession | undefined,
  ): StatusViewer | undefined => {
    if (c.get("snapshot").registry.gateway.auth === "none") {
      return { kind: "user", subject: ANONYMOUS, name: ANONYMOUS.name, admin: true };
    }
    if (!session) return undefined;
    const { identity } = session;
    return {
      kind: "user",
      subject: {
        id: identity.id,
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
    // With `auth: none` there is no one to sign out: no session is looked for.
    const session = c.get("snapshot").registry.gateway.auth === "none"
      ? undefined
      : await browser.currentSession(c);
    let viewer = statusViewer(c, session);
    if (!viewer) {
      if (mode !== "public") {
        return json
          ? c.json({ error: "sign_in_required", error_description: "Sign in at /status first" }, 401)
          : browser.signInFirst(c, "/status");
      }
      viewer = { kind: "anonymous" };
    }
    if (mode === "admins" && !(viewer.kind === "user" && viewer.admin)) {
      return json
        ? c.json({ error: "forbidden", error_description: "The status page is for administrators" }, 403)
        : html(
          c,
          errorPage("Not allowed", "The status page is for administrators.", accountOf(session)),
          403,
        );
    }
    const body = await report(viewer);
    return json
      ? c.json(body, 200, { "cache-control": "no-store" })
      : html(c, statusPage(body, { now: now(), account: accountOf(session) }));
  };
  app.get("/status", (c) => serveStatus(c, false));
  app.get("/status.json", (c) => serveStatus(c, true));
}
