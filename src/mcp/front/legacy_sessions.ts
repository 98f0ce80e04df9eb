/**
 * The 2025-era sessions (Mcp-Session-Id) this gateway holds: found only by their own user on their own
 * endpoint, capped per user, closed when idle, and forgotten with their backend connections.
 */
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import type { SessionEventStore } from "../event_store.ts";
import type { Logger } from "../../log/logger.ts";
import type { BackendPool } from "../backends/pool.ts";
import type { Caller } from "../../core/caller.ts";
import { type FrontSession, type ProxyScope, scopeKey } from "../session.ts";

/** A legacy session with no request for this long is closed. */
export const SESSION_IDLE_MS = 60 * 60 * 1000;

export interface LegacySession {
  readonly session: FrontSession;
  readonly transport: WebStandardStreamableHTTPServerTransport;
  /** Its replay buffer, shared by the SDK's streams and the fast calls' (fast_calls.ts). */
  readonly events: SessionEventStore;
  lastSeenAt: number;
}

export class LegacySessions {
  readonly #entries = new Map<string, LegacySession>();
  readonly #pool: BackendPool;
  readonly #log: Logger;

  constructor(pool: BackendPool, log: Logger) {
    this.#pool = pool;
    this.#log = log;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The open sessions' front state. */
  *sessions(): Iterable<FrontSession> {
    for (const entry of this.#entries.values()) yield entry.session;
  }

  /** The session `id` if it is this caller's on this endpoint: anyone else's is as unknown as a made-up one. */
  find(id: string, caller: Caller, scope: ProxyScope): LegacySession | undefined {
    const entry = this.#entries.get(id);
    if (
      !entry || entry.session.caller.id !== caller.id || scopeKey(entry.session.scope) !== scopeKey(scope)
    ) {
      return undefined;
    }
    entry.lastSeenAt = Date.now();
    return entry;
  }

  add(
    session: FrontSession,
    transport: WebStandardStreamableHTTPServerTransport,
    events: SessionEventStore,
  ): void {
    this.#entries.set(session.id, { session, transport, events, lastSeenAt: Date.now() });
  }

  /**
   * Closes the user's least recently used sessions beyond `max` (never `opened`, the one that just came):
   * sessions clients forgot must not pile up. Their ids answer 404 from then on.
   */
  closeOverCap(caller: Caller, opened: string, max: number): void {
    const mine = [...this.#entries].filter(([, entry]) => entry.session.caller.id === caller.id);
    if (mine.length <= max) return;
    // A stable sort: sessions last seen in the same millisecond leave in the order they were opened.
    const oldest = mine.filter(([id]) => id !== opened)
      .sort(([, a], [, b]) => a.lastSeenAt - b.lastSeenAt)
      .slice(0, mine.length - max);
    for (const [id] of oldest) {
      this.#log.info("MCP session closed: over max_sessions_per_user", { user: caller.name, max });
      void this.close(id);
    }
  }

  /** Drops a session that ended: its calls still running are cancelled and its own connections released. */
  forget(id: string): void {
    const entry = this.#entries.get(id);
    if (!entry) return;
    this.#entries.delete(id);
    entry.session.closed.abort();
    this.#pool.releaseSession(id);
  }

  async close(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    this.forget(id);
    await entry?.transport.close().catch(() => {});
  }

  closeIdle(now = Date.now()): void {
    for (const [id, entry] of this.#entries) {
      if (now - entry.lastSeenAt > SESSION_IDLE_MS) void this.close(id);
    }
  }

  /** Ends the sessions' GET streams (clients reconnect, or resume with Last-Event-ID). */
  endStreams(): void {
    for (const { transport } of this.#entries.values()) transport.closeStandaloneSSEStream();
  }

  async closeAll(): Promise<void> {
    await Promise.all([...this.#entries.keys()].map((id) => this.close(id)));
  }
}
