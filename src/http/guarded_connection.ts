/**
 * One client connection held by the connection guard: its relay to the HTTP server, and the clocks the
 * guard's timeouts read (when the current head and body began, when anything last moved).
 */
import { RequestFraming } from "./request_framing.ts";

export class GuardedConnection {
  readonly opened = Date.now();
  lastActivity = this.opened;
  /** When the current request head began (set at open: the first request must come in time too). */
  headSince: number | undefined = this.opened;
  bodySince: number | undefined;
  inFlight = 0;
  /** Requests that reached the server on this connection. */
  served = 0;
  closed = false;
  inner: Deno.TcpConn | undefined;
  readonly framing: RequestFraming;

  constructor(readonly outer: Deno.TcpConn, readonly peer: Deno.NetAddr, readonly network: string) {
    this.framing = new RequestFraming({
      headStarted: () => this.headSince ??= Date.now(),
      headEnded: (hasBody) => {
        this.headSince = undefined;
        if (hasBody) this.bodySince = Date.now();
      },
      bodyEnded: () => this.bodySince = undefined,
      lost: () => {
        this.headSince = undefined;
        this.bodySince = undefined;
      },
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const conn of [this.outer, this.inner]) {
      try {
        conn?.close();
      } catch {
        // already closed
      }
    }
  }
}
