/** `/mcp` and `/mcp/{backend}`: Host and Origin checks, authentication, then the MCP front. */
import type { Context, Hono } from "hono";
import { JSONRPC, jsonRpcErrorResponse } from "../../core/jsonrpc.ts";
import type { McpFront } from "../../mcp/front/http_entry.ts";
import type { Metrics } from "../../metrics/metrics.ts";
import { policyOf } from "../../policy/policy.ts";
import { authenticate, type TokenChecker } from "../auth.ts";
import { checkHostAndOrigin } from "../dns_rebinding.ts";
import type { AppEnv } from "../env.ts";

export interface McpRouteDependencies {
  front: McpFront;
  /** The URL the gateway listens on (for Host checks, and the resource when `public_url` is not set). */
  listenUrl: string;
  tokens?: TokenChecker;
  metrics?: Metrics;
}

export function mountMcpRoutes(app: Hono<AppEnv>, deps: McpRouteDependencies): void {
  const { front, listenUrl } = deps;
  const serveMcp = async (c: Context<AppEnv>, backend: string | undefined) => {
    const { registry } = c.get("snapshot");
    // Under oauth a foreign Origin passes on to authentication: a valid token is served, none is a 401.
    const refused = checkHostAndOrigin(c.req.raw, registry.gateway, listenUrl);
    if (refused) return refused;
    const caller = await authenticate(
      c.req.raw,
      registry,
      registry.gateway.publicUrl ?? listenUrl,
      backend,
      deps.tokens,
    );
    if (caller instanceof Response) {
      deps.metrics?.authFailures.inc();
      return caller;
    }
    // A backend the caller may not use is as unknown to them as one that does not exist.
    if (
      backend !== undefined &&
      (!Object.hasOwn(registry.backends, backend) || !policyOf(registry).usesBackend(caller, backend))
    ) {
      return jsonRpcErrorResponse(404, JSONRPC.unknownBackend, `Unknown backend "${backend}"`);
    }
    return await front.handle(
      c.req.raw,
      backend === undefined ? { kind: "aggregate" } : { kind: "backend", name: backend },
      caller,
    );
  };
  app.all("/mcp", (c) => serveMcp(c, undefined));
  app.all("/mcp/:backend", (c) => serveMcp(c, c.req.param("backend")));
}
