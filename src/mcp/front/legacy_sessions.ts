/**
 * The 2025-era sessions (Mcp-Session-Id) this gateway holds: found only by their own user on their own
 * endpoint, capped per user, closed when idle, and forgotten with their backend connections. With a store,
 * each is recorded there too (session_records.ts): ending a session deletes its record, while letting it go
 * here (idle, shutdown, ended on another replica) leaves it to whichever replica the client reaches next.
 */
import type { WebStandardStreamableHTTPServerTransport } from "@modelcontextprotocol/server";
import type { SessionEventStore } from "../event_store.ts";
import type { Logger } from "../../log/logger.ts";
import type { BackendPool } from "../backends/pool.ts";
import type { Caller } from "../../core/caller.ts";
import { type FrontSession, type ProxyScope, scopeKey } from "../session.ts";
import { SESSION_IDLE_MS, type SessionRecords } from "./session_records.ts";

export interface LegacySession {
  readonly session: FrontSession;
  readonly transport: WebStandardStreamableHTTPServerTransport;
  /** Its replay buffer, shared by the SDK's streams and the fast calls' (fast_calls.ts). */
  readonly events: SessionEventStore;
  /** Its key in the store (session_records.ts); undefined when it is not recorded. */
  readonly recordKey: string | undefined;
  lastSeenAt: number;
  /** When its `seen_at` was last written (SessionRecords.seen). */
  seenWrittenAt: number;
}

export class LegacySessions {
  readonly #entries = new Map<string, LegacySession>();
  readonly #pool: BackendPool;
  readonly #log: Logger;
  readonly #records: SessionRecords | undefined;

  constructor(pool: BackendPool, log: Logger, records?: SessionRecords) {
    this.#pool = pool;
    this.#log = log;
    this.#records = records;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Whether this process holds the session `id`, whoever's it is. */
  has(id: string): boolean {
    return this.#entries.has(id);
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

  /** Holds a session opened here or resumed; `recordKey` is its key in the store, if it is recorded. */
  add(
    session: FrontSession,
    transport: WebStandardStreamableHTTPServerTransport,
    events: SessionEventStore,
    recordKey?: string,
  ): void {
    // Written at the next sweep: a resumed session's record may be nearly an hour old.
    this.#entries.set(session.id, {
      session,
      transport,
      events,
      recordKey,
      lastSeenAt: Date.now(),
      seenWrittenAt: 0,
    });
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
      void this.end(id);
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

  /** Closes a session here only: its record stays for whichever replica the client reaches next. */
  async close(id: string): Promise<void> {
    const entry = this.#entries.get(id);
    this.forget(id);
    await entry?.transport.close().catch(() => {});
  }

  /** Ends a session everywhere (DELETE, over its user's cap): its record is deleted, then it is closed. */
  async end(id: string): Promise<void> {
    const key = this.#entries.get(id)?.recordKey;
    if (key !== undefined) this.#records?.ended(key);
    await this.close(id);
  }

  closeIdle(now = Date.now()): void {
    for (const [id, entry] of this.#entries) {
      if (now - entry.lastSeenAt <= SESSION_IDLE_MS) continue;
      if (entry.recordKey !== undefined) this.#records?.idle(entry.recordKey);
      void this.close(id);
    }
  }

  /**
   * Writes when the sessions used since the last time were seen (one batch, off any request's path), and
   * closes here those whose record is gone: ended on another replica, or expired there.
   */
  writeSeen(now = Date.now()): void {
    if (!this.#records) return;
    const used = [...this.#entries.values()].filter((entry) =>
      entry.recordKey !== undefined && entry.lastSeenAt > entry.seenWrittenAt
    );
    const gone = new Set(this.#records.seen(used.map((entry) => entry.recordKey!), now));
    for (const entry of used) {
      entry.seenWrittenAt = now;
      if (gone.has(entry.recordKey!)) void this.close(entry.session.id);
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
