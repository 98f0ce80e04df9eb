// The calls in flight on one backend connection, and which of them a message the backend sends unprompted
// belongs to: exactly one session's, never another user's.
import type { CallOrigin } from "./call_origin.ts";

/** A call in flight: who made it, and how many of the backend's questions about it await an answer. */
export interface InFlightCall {
  readonly origin: CallOrigin;
  asking: number;
  readonly method: string;
  readonly since: number;
}

/** The calls in flight on one connection, each under a number of the connection's own. */
export class InFlightCalls {
  /** The single session the connection belongs to (isolation: session), if any. */
  readonly #owner: CallOrigin | undefined;
  readonly #calls = new Map<number, InFlightCall>();
  #next = 0;

  constructor(owner: CallOrigin | undefined) {
    this.#owner = owner;
  }

  /** Calls in flight right now. */
  get size(): number {
    return this.#calls.size;
  }

  /** Records a call of `origin`; its number, unique on this connection, is what `end()` takes. */
  begin(origin: CallOrigin, method: string): number {
    const id = this.#next++;
    this.#calls.set(id, { origin, asking: 0, method, since: Date.now() });
    return id;
  }

  end(id: number): void {
    this.#calls.delete(id);
  }

  /** What is in flight, for diagnostics: methods, ages and open questions, never who or what. */
  describe(): { method: string; age_ms: number; asking: number }[] {
    const now = Date.now();
    return [...this.#calls.values()].map((call) => ({
      method: call.method,
      age_ms: now - call.since,
      asking: call.asking,
    }));
  }

  /**
   * The call a backend-initiated message belongs to, when it can be known: the owner of a session's own
   * connection; else the only session with calls in flight. With several, a call already waiting for an
   * answer to its own question is not the one asking, so if exactly one call is free and every call in
   * flight is the same user's, it is that one. Otherwise nobody gets it: never another user's session.
   */
  target(): InFlightCall | undefined {
    const calls = [...this.#calls.values()];
    if (this.#owner) {
      // Every call here is the owner's session's: the one free to ask, else the session itself.
      const free = calls.filter((call) => call.asking === 0);
      return free.length === 1 ? free[0] : { origin: this.#owner, asking: 0, method: "", since: 0 };
    }
    if (new Set(calls.map((call) => call.origin.sessionId)).size === 1) return calls[0];
    if (new Set(calls.map((call) => call.origin.userId)).size !== 1) return undefined;
    const free = calls.filter((call) => call.asking === 0);
    return new Set(free.map((call) => call.origin.sessionId)).size === 1 ? free[0] : undefined;
  }
}
