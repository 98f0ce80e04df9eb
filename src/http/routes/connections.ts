// Section 6: a user's connections to third-party services: consent links, the service's callback, the
// list of connections and disconnecting one.
import { accountPhrase, capitalized } from "../../config/types.ts";
import type { Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { OAuthError } from "../../core/oauth_error.ts";
import { timingSafeEqual } from "../../core/secrets.ts";
import { type ServiceConnections, servicePath } from "../../services/connections.ts";
import { CLIENT_METADATA_DOCUMENT_PATH } from "../../services/remote_registration.ts";
import { accountOf, type BrowserSignIn } from "../browser_session.ts";
import { connectionsPage } from "../pages/connections.ts";
import { errorPage, noticePage } from "../pages/layout.ts";
import { formOf, html } from "../request_helpers.ts";

export interface ConnectionRouteDependencies {
  connections: Pick<
    ServiceConnections,
    "authorizationOrigin" | "start" | "finish" | "list" | "disconnect" | "clientMetadataDocument"
  >;
  /** Who is signed in, and the sign-in page for who is not. */
  browser: Pick<BrowserSignIn, "currentSession" | "signInFirst">;
  /** The clock, for "expires in 1 hour". */
  now?: () => number;
}

/** Mounts Gatehouse's client metadata document, `/connect/:service` and its callback, `/connections` and `/connections/:service/disconnect`. */
export function mountConnectionRoutes(app: Hono<AppEnv>, deps: ConnectionRouteDependencies): void {
  const { connections, browser } = deps;
  const now = deps.now ?? Date.now;
  // After signing in, the browser goes on to the service's authorization endpoint (CSP form-action).
  const serviceRedirectTargets = async (service: string) => {
    const origin = await connections.authorizationOrigin(service);
    return origin ? [origin] : [];
  };
  // Gatehouse as a client of OAuth-protected backends' authorization servers (a client ID metadata document).
  app.get(
    CLIENT_METADATA_DOCUMENT_PATH,
    (c) => c.json(connections.clientMetadataDocument(), 200, { "cache-control": "public, max-age=300" }),
  );
  app.get("/connect/:service", async (c) => {
    const service = c.req.param("service");
    const ticket = c.req.query("ticket") ?? "";
    const session = await browser.currentSession(c);
    if (!session) {
      return browser.signInFirst(
        c,
        `/connect/${servicePath(service)}?ticket=${encodeURIComponent(ticket)}`,
        await serviceRedirectTargets(service),
      );
    }
    try {
      return c.redirect(await connections.start(service, ticket, session.identity.id), 303);
    } catch (error) {
      if (error instanceof OAuthError) {
        return html(
          c,
          errorPage("Cannot connect", error.message, accountOf(session)),
          error.status === 403 ? 403 : 400,
        );
      }
      throw error;
    }
  });
  app.get("/connect/:service/callback", async (c) => {
    const service = c.req.param("service");
    const session = await browser.currentSession(c);
    try {
      await connections.finish(service, new URL(c.req.url), session?.identity.id);
    } catch (error) {
      if (error instanceof OAuthError) {
        return html(
          c,
          errorPage("Cannot connect", error.message, accountOf(session)),
          error.status === 403 ? 403 : 400,
        );
      }
      throw error;
    }
    return html(
      c,
      noticePage(
        "Connected",
        `${capitalized(accountPhrase(service))} is connected. Return to your client and try again.`,
        {
          account: accountOf(session),
          next: { href: "/connections", label: "Your connections" },
        },
      ),
      200,
    );
  });
  app.get("/connections", async (c) => {
    const session = await browser.currentSession(c);
    if (!session) return browser.signInFirst(c, "/connections");
    return html(
      c,
      connectionsPage({
        account: accountOf(session),
        connections: connections.list(session.identity.id),
        now: now(),
      }),
    );
  });
  app.post("/connections/:service/disconnect", async (c) => {
    const form = await formOf(c);
    const session = await browser.currentSession(c);
    if (!session || !timingSafeEqual(session.csrf, form.get("csrf") ?? "")) {
      return html(
        c,
        errorPage("Cannot continue", "The form expired; reload the page.", accountOf(session)),
        403,
      );
    }
    await connections.disconnect(session.identity.id, c.req.param("service"));
    return c.redirect("/connections", 303);
  });
}
