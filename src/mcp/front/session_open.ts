/**
 * Opening a 2025-era session (`initialize`), and building one: its replay buffer, its SDK transport and
 * server, its front state; the same build serves a session resumed from the store (session_resume.ts).
 */
import type {
  ClientCapabilities,
  JSONRPCRequest,
  Server,
  WebStandardStreamableHTTPServerTransport,
} from "@modelcontextprotocol/server";
import type { Caller } from "../../core/caller.ts";
import { ANY_RESULT } from "../backends/call_origin.ts";
import { SessionEventStore } from "../event_store.ts";
import { announcedCapabilities, createProxyServer } from "../relay/capabilities.ts";
import type { ServerSdk } from "../sdk.ts";
import { FrontSession, type ProxyDependencies, type ProxyScope, scopeKey } from "../session.ts";
import type { LegacySessions } from "./legacy_sessions.ts";
import { initializedState, type SessionRecords } from "./session_records.ts";

/** What opening and resuming sessions work with: the relay's dependencies, the sessions held, the store's. */
export interface SessionContext {
  readonly deps: ProxyDependencies;
  readonly sessions: LegacySessions;
  /** Absent without a store: sessions then live in this process only. */
  readonly records: SessionRecords | undefined;
}

export interface BuiltSession {
  readonly session: FrontSession;
  readonly transport: WebStandardStreamableHTTPServerTransport;
  /** Its replay buffer, shared by the SDK's streams and the fast calls'. */
  readonly events: SessionEventStore;
  readonly server: Server;
}

/**
 * Answers an `initialize` POST (`parsedBody`) with a new session; once the SDK accepted it, the session is
 * recorded in the store (before the client has its id, so that any replica can serve its next request).
 */
export async function openLegacySession(
  sdk: ServerSdk,
  context: SessionContext,
  request: Request,
  parsedBody: unknown,
  scope: ProxyScope,
  caller: Caller,
): Promise<Response> {
  const { deps, sessions, records } = context;
  const id = crypto.randomUUID();
  const params = (parsedBody as { params?: { capabilities?: ClientCapabilities } }).params;
  const { session, transport, events, server } = await buildLegacySession(
    sdk,
    context,
    id,
    caller,
    scope,
    params?.capabilities,
  );
  const recordKey = await records?.keyOf(id);
  sessions.add(session, transport, events, recordKey);
  const response = await transport.handleRequest(request, { parsedBody });
  if (!response.ok) {
    await sessions.close(id);
    return response;
  }
  if (recordKey !== undefined) records!.opened(recordKey, session, initializedState(server, params));
  deps.log.info("MCP session opened", {
    session_era: "legacy",
    scope: scopeKey(scope) || "/mcp",
    user: caller.name,
  });
  sessions.closeOverCap(caller, id, deps.registry().gateway.maxSessionsPerUser);
  return response;
}

/**
 * A session `id` for `caller` on `scope`, its server connected to its transport, not yet initialized nor
 * held (the caller adds it). `clientCapabilities` are what the client declared at `initialize`: what the
 * session may ask it outside a call.
 */
export async function buildLegacySession(
  sdk: ServerSdk,
  { deps, sessions }: SessionContext,
  id: string,
  caller: Caller,
  scope: ProxyScope,
  clientCapabilities: ClientCapabilities | undefined,
): Promise<BuiltSession> {
  const session = new FrontSession(id, caller, scope, "legacy");
  const events = new SessionEventStore();
  const transport = new sdk.WebStandardStreamableHTTPServerTransport({
    sessionIdGenerator: () => id,
    eventStore: events,
    // DELETE (MCP 2025-11-25 §Session Management): the session ends on every replica.
    onsessionclosed: (closedId) => {
      void sessions.end(closedId);
    },
  });
  session.owner = {
    sessionId: id,
    userId: caller.id,
    request: (outgoing, signal) => {
      if (!session.server) return Promise.reject(new Error("Session is closed"));
      return session.server.request(outgoing as JSONRPCRequest, ANY_RESULT, { signal });
    },
    notify: async (notification) => await session.server?.notification(notification),
    clientCapabilities,
  };
  const server = createProxyServer(sdk, deps, session, announcedCapabilities(deps, session));
  server.onclose = () => sessions.forget(id);
  await server.connect(transport);
  return { session, transport, events, server };
}
