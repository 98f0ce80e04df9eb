/**
 * What a front session announces (the union of its backends' capabilities, never waiting on one) and
 * the SDK servers that answer it by handing every request to a Router.
 */
import type { McpServer, Server, ServerCapabilities } from "@modelcontextprotocol/server";
import { z } from "zod";
import { VERSION } from "../../version.ts";
import type { ServerSdk } from "../sdk.ts";
import { scopeBackends } from "../scope.ts";
import type { FrontSession, ProxyDependencies } from "../session.ts";
import { Router } from "./router.ts";
import { TASKS_EXTENSION, tasksExtensionOf } from "../era/tasks_extension.ts";

/**
 * What a backend never connected yet is taken to offer: more than it may, never less (the front could not
 * relay a notification of a capability it did not announce); lists leave it out of what it lacks.
 */
const ASSUMED_CAPABILITIES: ServerCapabilities = {
  tools: {},
  prompts: {},
  resources: { subscribe: true },
  logging: {},
  completions: {},
};

/**
 * The capabilities a session announces, without waiting on any backend (a handshake that hangs must not
 * delay `initialize`): the union of what each of the session's backends announced when last connected,
 * or ASSUMED_CAPABILITIES for one never connected, whose connection starts meanwhile so later sessions
 * know.
 */
export function announcedCapabilities(deps: ProxyDependencies, session: FrontSession): ServerCapabilities {
  const union: ServerCapabilities = {};
  for (const backend of scopeBackends(deps.registry(), session.scope, session.caller)) {
    let capabilities = deps.pool.capabilities(backend.name);
    if (!capabilities) {
      capabilities = ASSUMED_CAPABILITIES;
      // A session's own process starts with its first call: started here, it could outlive the session.
      if (backend.transport.kind !== "stdio" || backend.isolation !== "session") {
        deps.pool.upstream(backend.name, session.caller).catch((error) =>
          deps.log.debug("backend not connected ahead of its first call", { backend: backend.name, error })
        );
      }
    }
    if (capabilities.tools) union.tools = { listChanged: true };
    if (capabilities.prompts) union.prompts = { listChanged: true };
    if (capabilities.resources) {
      union.resources = {
        listChanged: true,
        subscribe: Boolean(union.resources?.subscribe || capabilities.resources.subscribe),
      };
    }
    if (capabilities.logging) union.logging = {};
    if (capabilities.completions) union.completions = {};
    // 2025-11-25 tasks: relayed (each task only to its creator), so announced as the backends offer them.
    if (capabilities.tasks) union.tasks = mergeTasks(union.tasks, capabilities.tasks);
    // SEP-2663 tasks: relayed to 2026-07-28 sessions (its wire), each task only to its creator. Other
    // extensions (skills) are not announced: their methods are not relayed.
    const tasks = tasksExtensionOf(capabilities);
    if (tasks && session.era === "modern") {
      union.extensions = {
        ...union.extensions,
        [TASKS_EXTENSION]: tasks,
      } as ServerCapabilities["extensions"];
    }
  }
  return union;
}

/** The union of two backends' `tasks` capabilities (each a tree of empty objects, as 2025-11-25 has it). */
export function mergeTasks(into: unknown, from: unknown): NonNullable<ServerCapabilities["tasks"]> {
  const merge = (a: unknown, b: unknown): Record<string, unknown> => {
    const out: Record<string, unknown> = { ...(a as Record<string, unknown> | undefined) };
    for (const [key, value] of Object.entries((b ?? {}) as Record<string, unknown>)) {
      out[key] = value && typeof value === "object" ? merge(out[key], value) : value;
    }
    return out;
  };
  return merge(into, from) as NonNullable<ServerCapabilities["tasks"]>;
}

/** Builds the SDK server that answers one 2025-era front session by relaying to its backends. */
export function createProxyServer(
  sdk: ServerSdk,
  deps: ProxyDependencies,
  session: FrontSession,
  capabilities: ServerCapabilities,
): Server {
  const server = new sdk.Server({ name: "gatehouse", version: VERSION }, { capabilities });
  return attachRouter(server, deps, session);
}

/**
 * For 2026-07-28 requests: the same proxy, in the shape whose tool schemas the SDK's HTTP entry reads to
 * check `Mcp-Param-*` headers against the body (SEP-2243) before the call is relayed.
 */
export function createModernProxyServer(
  sdk: ServerSdk,
  deps: ProxyDependencies,
  session: FrontSession,
  capabilities: ServerCapabilities,
  schemaOf: (tool: string) => Record<string, unknown> | undefined,
): McpServer {
  // Capabilities are announced after construction: given to the constructor, McpServer would answer the
  // lists itself (with its own, empty, registries) instead of relaying them.
  const mcpServer = new sdk.McpServer({ name: "gatehouse", version: VERSION });
  mcpServer.server.registerCapabilities(capabilities);
  // Pinned SDK: this hook is how its HTTP entry finds a tool's inputSchema (tools are the backends' here).
  mcpServer.toolInputSchemaJson = schemaOf;
  attachRouter(mcpServer.server, deps, session);
  return mcpServer;
}

/** Any params: the Router checks what it relays. */
const ANY_PARAMS = z.looseObject({});

function attachRouter(server: Server, deps: ProxyDependencies, session: FrontSession): Server {
  const router = new Router(deps, session);
  server.fallbackRequestHandler = (request, context) => router.handle(request, context);
  if (session.era === "modern") {
    // SEP-2663 reuses tasks/get and tasks/cancel, which 2026-07-28 removed from the core protocol: the
    // SDK dispatches them only to handlers registered with explicit schemas (else -32601).
    for (const method of ["tasks/get", "tasks/cancel"]) {
      server.setRequestHandler(
        method,
        { params: ANY_PARAMS },
        (params, context) =>
          router.handle({ jsonrpc: "2.0", id: context.mcpReq.id, method, params }, context),
      );
    }
  }
  server.fallbackNotificationHandler = (notification) => router.notify(notification);
  session.server = server;
  session.answer = (request, context) => router.handle(request, context);
  return server;
}
