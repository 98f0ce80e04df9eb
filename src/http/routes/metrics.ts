/** `/metrics`: Prometheus text, for this machine or for whoever presents `gateway.metrics_token`. */
import type { Hono } from "hono";
import { isLoopbackHost } from "../../config/schema.ts";
import { clientAddress, peerAddress } from "../../core/addresses.ts";
import { timingSafeEqual } from "../../core/secrets.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import type { AppEnv } from "../env.ts";

export function mountMetricsRoute(app: Hono<AppEnv>, metrics: Metrics): void {
  app.get("/metrics", async (c) => {
    const { gateway } = c.get("snapshot").registry;
    if (!metricsAllowed(c.req.raw, c.env, gateway.trustedProxies, gateway.metricsToken)) {
      return c.text("Forbidden: /metrics is served to loopback, or with gateway.metrics_token\n", 403);
    }
    return c.body(await metrics.render(), 200, {
      "content-type": "text/plain; version=0.0.4; charset=utf-8",
      "cache-control": "no-store",
    });
  });
}

/**
 * `/metrics` is for this machine (a request from loopback that no proxy forwarded, or one a trusted proxy
 * forwarded from loopback), or for whoever presents `gateway.metrics_token`.
 */
function metricsAllowed(
  request: Request,
  env: unknown,
  trustedProxies: readonly string[],
  token: string | undefined,
): boolean {
  const bearer = /^Bearer\s+(\S+)$/i.exec(request.headers.get("authorization") ?? "")?.[1];
  if (token !== undefined && bearer !== undefined && timingSafeEqual(bearer, token)) return true;
  const forwarded = request.headers.get("x-forwarded-for");
  const peer = peerAddress(env);
  if (peer === undefined) return false;
  const client = clientAddress(peer, forwarded, trustedProxies);
  // A forwarded request whose header was not followed (a local proxy not in trusted_proxies) is not local.
  if (forwarded !== null && client === clientAddress(peer, null, [])) return false;
  return client !== undefined && isLoopbackHost(client.replace(/^::ffff:/, ""));
}
