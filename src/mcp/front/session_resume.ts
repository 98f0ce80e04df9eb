/**
 * Resuming a 2025-era session this process does not hold (opened on another replica, or here before a
 * restart): when the store has a live record of it and the caller (user and client) and endpoint are
 * those that opened it, the session is rebuilt with the same id, already initialized with the same
 * protocol version, client info and capabilities. Anyone else's id is as unknown as a made-up one.
 * Backends are connected afresh (their own sessions are not carried over), and events are not: a stream
 * resumed with a Last-Event-ID this process does not hold starts afresh (`withoutForeignLastEventId`).
 */
import type { Caller } from "../../core/caller.ts";
import type { SessionEventStore } from "../event_store.ts";
import type { ServerSdk } from "../sdk.ts";
import { type ProxyScope, scopeKey } from "../session.ts";
import type { LegacySession } from "./legacy_sessions.ts";
import { buildLegacySession, type SessionContext } from "./session_open.ts";
import type { ResumableState, SessionRecords } from "./session_records.ts";

const JSON_POST = { "content-type": "application/json", accept: "application/json, text/event-stream" };

export class SessionResumer {
  readonly #records: SessionRecords;
  readonly #context: SessionContext;
  /**
   * Resumptions under way, by session id, user, client and endpoint: concurrent requests for one session
   * resume it once (only the key of its owner can match its record, so a stranger's attempt delays nobody).
   */
  readonly #resuming = new Map<string, Promise<void>>();

  constructor(records: SessionRecords, context: SessionContext) {
    this.#records = records;
    this.#context = context;
  }

  /**
   * The session `id` for this caller on this endpoint, resumed from the store if it can be; undefined
   * when it cannot (then the request is answered 404, as for any unknown session). `url` is the request's.
   */
  async resume(
    sdk: ServerSdk,
    url: string,
    id: string,
    caller: Caller,
    scope: ProxyScope,
  ): Promise<LegacySession | undefined> {
    const key = [id, caller.id, caller.clientId ?? "", scopeKey(scope)].join("\n");
    let resuming = this.#resuming.get(key);
    if (!resuming) {
      resuming = this.#resume(sdk, url, id, caller, scope).finally(() => this.#resuming.delete(key));
      this.#resuming.set(key, resuming);
    }
    await resuming;
    return this.#context.sessions.find(id, caller, scope);
  }

  async #resume(sdk: ServerSdk, url: string, id: string, caller: Caller, scope: ProxyScope): Promise<void> {
    const { sessions, deps } = this.#context;
    const recordKey = await this.#records.keyOf(id);
    if (sessions.has(id)) return;
    const record = this.#records.find(recordKey);
    if (!record) return;
    if (
      record.userId !== caller.id || record.clientId !== caller.clientId ||
      record.endpoint !== scopeKey(scope)
    ) {
      deps.log.info("MCP session of another user, client or endpoint: not resumed", { user: caller.name });
      return;
    }
    const { state } = record;
    const built = await buildLegacySession(sdk, this.#context, id, caller, scope, state.clientCapabilities);
    try {
      await replayInitialize(built.transport, url, id, state);
    } catch (error) {
      await built.transport.close().catch(() => {});
      throw error;
    }
    sessions.add(built.session, built.transport, built.events, recordKey);
    deps.log.info("MCP session resumed", {
      session_era: "legacy",
      scope: scopeKey(scope) || "/mcp",
      user: caller.name,
      protocol_version: state.protocolVersion,
    });
  }
}

/**
 * The handshake the client made when it opened the session, made again inside this process so that the
 * SDK's transport and server are initialized as they were (same version, client info, capabilities);
 * its answers go nowhere (the client had them from the replica that opened the session).
 */
async function replayInitialize(
  transport: LegacySession["transport"],
  url: string,
  id: string,
  state: ResumableState,
): Promise<void> {
  const initialize = {
    jsonrpc: "2.0" as const,
    id: 0,
    method: "initialize" as const,
    params: {
      protocolVersion: state.protocolVersion,
      capabilities: state.clientCapabilities,
      clientInfo: state.clientInfo,
    },
  };
  const answer = await transport.handleRequest(new Request(url, { method: "POST", headers: JSON_POST }), {
    parsedBody: initialize,
  });
  const text = await answer.text();
  if (!answer.ok || !text.includes('"result"')) {
    throw new Error(`Cannot resume an MCP session: its initialize was answered ${answer.status}`);
  }
  const initialized = { jsonrpc: "2.0" as const, method: "notifications/initialized" as const };
  const acknowledged = await transport.handleRequest(
    new Request(url, { method: "POST", headers: { ...JSON_POST, "mcp-session-id": id } }),
    { parsedBody: initialized },
  );
  await acknowledged.body?.cancel();
  if (acknowledged.status !== 202) {
    throw new Error(`Cannot resume an MCP session: its initialized was answered ${acknowledged.status}`);
  }
}

/**
 * A GET that resumes a stream with a Last-Event-ID this process holds no events of (another replica sent
 * them, or this process before a restart) opens a fresh stream instead, without replay: what was sent on
 * the old stream after that event is lost, and an error would help the client no more.
 */
export function withoutForeignLastEventId(request: Request, events: SessionEventStore): Request {
  const lastEventId = request.method === "GET" ? request.headers.get("last-event-id") : null;
  if (lastEventId === null || events.holds(lastEventId)) return request;
  const headers = new Headers(request.headers);
  headers.delete("last-event-id");
  return new Request(request.url, { method: "GET", headers });
}
