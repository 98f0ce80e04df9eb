/**
 * The 2025-era sessions as the store keeps them (mcp_sessions), so that any replica, or this process after
 * a restart, can resume one: written when a session opens, `seen_at` moved at most once a minute (by the
 * front's sweep, never on a request's path), deleted when the session is ended or expires.
 */
import type { ClientCapabilities, Implementation, Server } from "@modelcontextprotocol/server";
import { hashSecret } from "../../core/secrets.ts";
import type { Logger } from "../../log/logger.ts";
import {
  deleteMcpSession,
  deleteMcpSessionIfUnseen,
  deleteUnseenMcpSessions,
  findLiveMcpSession,
  insertMcpSession,
  touchMcpSessions,
} from "../../store/mcp_sessions.ts";
import type { Store } from "../../store/store.ts";
import { type FrontSession, scopeKey } from "../session.ts";

/** A session with no request for this long is closed, here and in the store. */
export const SESSION_IDLE_MS = 60 * 60 * 1000;

/** How often the front writes when its sessions were last seen (and closes idle ones). */
export const SEEN_INTERVAL_MS = 60_000;

/** What a replica needs to resume a session (the record's `state`, JSON): what its `initialize` settled. */
export interface ResumableState {
  /** The protocol version negotiated at `initialize`. */
  readonly protocolVersion: string;
  readonly clientInfo: Implementation;
  readonly clientCapabilities: ClientCapabilities;
}

/** A live record: whose session it is, on which endpoint, and its state. */
export interface SessionRecord {
  /** "" for `/mcp`, else the backend of `/mcp/{backend}`. */
  readonly endpoint: string;
  readonly userId: string;
  readonly clientId: string | undefined;
  readonly state: ResumableState;
}

/**
 * The state to record of a session whose `initialize` (with `params`) `server` has answered: the version
 * it negotiated (or, should it not say, the one asked for, which the same SDK negotiates the same way).
 */
export function initializedState(server: Server, params: unknown): ResumableState {
  const asked = (params ?? {}) as { protocolVersion?: string; capabilities?: object; clientInfo?: object };
  return {
    protocolVersion: server.getNegotiatedProtocolVersion() ?? asked.protocolVersion ?? "",
    clientInfo: asked.clientInfo as Implementation,
    clientCapabilities: (asked.capabilities ?? {}) as ClientCapabilities,
  };
}

const isObject = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value);

/** The state in a record's JSON, or undefined when it is not of that shape. */
function parseState(json: string): ResumableState | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (!isObject(value)) return undefined;
  const { protocolVersion, clientInfo, clientCapabilities } = value;
  if (typeof protocolVersion !== "string" || !isObject(clientInfo) || !isObject(clientCapabilities)) {
    return undefined;
  }
  if (typeof clientInfo.name !== "string" || typeof clientInfo.version !== "string") return undefined;
  return { protocolVersion, clientInfo: clientInfo as Implementation, clientCapabilities };
}

/**
 * The front's side of `mcp_sessions`. Sessions are stored under the SHA-256 of their id (`keyOf`), never
 * the id itself. A write that fails is logged, never fails the request: the session then lives in this
 * process only, as before replicas.
 */
export class SessionRecords {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #now: () => number;

  constructor(store: Store, log: Logger, now: () => number = Date.now) {
    this.#store = store;
    this.#log = log;
    this.#now = now;
  }

  /** The key a session is stored under. */
  keyOf(sessionId: string): Promise<string> {
    return hashSecret(sessionId);
  }

  /** Records a session that was just opened here. */
  opened(key: string, session: FrontSession, state: ResumableState): void {
    this.#write("record", () =>
      insertMcpSession(this.#store, {
        sessionHash: key,
        endpoint: scopeKey(session.scope),
        userId: session.caller.id,
        clientId: session.caller.clientId,
        state: JSON.stringify(state),
        createdAt: this.#now(),
      }));
  }

  /** The live record under `key`: undefined when there is none, it expired, or its state is unreadable. */
  find(key: string): SessionRecord | undefined {
    const row = findLiveMcpSession(this.#store, key, this.#now() - SESSION_IDLE_MS);
    if (!row) return undefined;
    const state = parseState(row.state);
    if (!state) {
      this.#log.warn("MCP session record unreadable: not resumed", { endpoint: row.endpoint });
      return undefined;
    }
    return { endpoint: row.endpoint, userId: row.userId, clientId: row.clientId, state };
  }

  /** The session was ended (DELETE, over its user's cap): no replica may resume it. */
  ended(key: string): void {
    this.#write("delete", () => deleteMcpSession(this.#store, key));
  }

  /**
   * The session idled out here: its record goes too, unless another replica saw it lately (this one
   * wrote `seen_at` at most SEEN_INTERVAL_MS after its last request).
   */
  idle(key: string): void {
    const cutoff = this.#now() - SESSION_IDLE_MS + SEEN_INTERVAL_MS;
    this.#write("delete", () => deleteMcpSessionIfUnseen(this.#store, key, cutoff));
  }

  /**
   * Notes that these sessions were seen by `seenAt`; returns the keys among them whose record is gone
   * (ended on another replica, or expired there): this process should let them go too.
   */
  seen(keys: readonly string[], seenAt: number): string[] {
    if (keys.length === 0) return [];
    let present: Set<string> | undefined;
    this.#write("touch", () => present = touchMcpSessions(this.#store, keys, seenAt));
    return present ? keys.filter((key) => !present!.has(key)) : [];
  }

  /** Deletes the records of sessions no replica saw for SESSION_IDLE_MS (housekeeping); returns how many. */
  prune(): number {
    return deleteUnseenMcpSessions(this.#store, this.#now() - SESSION_IDLE_MS);
  }

  #write(what: string, work: () => void): void {
    try {
      work();
    } catch (error) {
      this.#log.warn(`MCP session record: ${what} failed`, { error });
    }
  }
}
