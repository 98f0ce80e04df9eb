// Calls of 2026-07-28 clients waiting, parked, for the retry that answers their backend's question
// (`input_required`), kept per user and bounded in time.
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";

type Result = Record<string, unknown>;
type Ask = { method: string; params?: Record<string, unknown> };

/** What a parked call is waiting for next: its backend's result, or an answer to a question it asked. */
type Outcome = { kind: "result"; result: Result } | { kind: "error"; error: unknown } | {
  kind: "ask";
  ask: Ask;
};

/** Marks request states the gateway made, as opposed to a 2026-07-28 backend's own (passed through). */
export const PARKED_STATE_PREFIX = "gatehouse-parked:";
const PARKED_TTL_MS = 10 * 60 * 1000;

/**
 * A backend call from a 2026-07-28 client, kept running across the client's retries: when the backend
 * sends a request to the client (sampling, elicitation, roots), the gateway answers the client with
 * `input_required`, and the client's retry carries the answer back to the waiting backend.
 */
export class ParkedCall {
  readonly id = crypto.randomUUID();
  readonly userId: string;
  readonly expiresAt = Date.now() + PARKED_TTL_MS;
  /** Cancels the backend call: when the client goes away while it waits, or never comes back. */
  readonly controller = new AbortController();
  readonly #outcomes: Outcome[] = [];
  #wake: (() => void) | undefined;
  #pendingAnswer: { resolve: (result: Result) => void; reject: (error: unknown) => void } | undefined;

  constructor(userId: string) {
    this.userId = userId;
  }

  /** Runs the backend call; its result (or error) becomes the call's final outcome. */
  run(call: Promise<Result>): void {
    call.then(
      (result) => this.#push({ kind: "result", result }),
      (error) => this.#push({ kind: "error", error }),
    );
  }

  /** Called for the backend's request to the client: resolves when the client's retry answers it. */
  ask(ask: Ask): Promise<Result> {
    if (this.#pendingAnswer) {
      return Promise.reject(
        new JsonRpcError(
          JSONRPC.routingRefused,
          `Cannot relay ${ask.method}: another question is still open`,
        ),
      );
    }
    const answered = Promise.withResolvers<Result>();
    this.#pendingAnswer = answered;
    this.#push({ kind: "ask", ask });
    return answered.promise;
  }

  /** Hands the client's answer to the backend's waiting request. */
  answer(response: unknown): void {
    const pending = this.#pendingAnswer;
    this.#pendingAnswer = undefined;
    if (!pending) return;
    if (response && typeof response === "object") pending.resolve(response as Result);
    else pending.reject(new JsonRpcError(JSONRPC.invalidParams, "The client sent no answer"));
  }

  /** Answers the backend's open question with an error, without the client: the call goes on. */
  decline(error: JsonRpcError): void {
    const pending = this.#pendingAnswer;
    this.#pendingAnswer = undefined;
    pending?.reject(error);
  }

  /** Waits for the next thing the client must hear about. */
  async next(signal: AbortSignal): Promise<Outcome> {
    while (this.#outcomes.length === 0) {
      if (signal.aborted) {
        // 2026-07-28: closing the response stream cancels the request.
        this.controller.abort();
        throw new JsonRpcError(JSONRPC.internalError, "Request cancelled");
      }
      const woken = new Promise<void>((resolve) => this.#wake = resolve);
      const aborted = new Promise<void>((resolve) =>
        signal.addEventListener("abort", () => resolve(), { once: true })
      );
      await Promise.race([woken, aborted]);
    }
    return this.#outcomes.shift()!;
  }

  /** Ends the call on the backend side when the client never comes back. */
  abandon(): void {
    this.controller.abort();
    this.#pendingAnswer?.reject(new JsonRpcError(JSONRPC.internalError, "The client did not answer in time"));
    this.#pendingAnswer = undefined;
  }

  #push(outcome: Outcome): void {
    this.#outcomes.push(outcome);
    this.#wake?.();
  }
}

/** The parked calls of all 2026-07-28 requests, found again by the request state the client echoes. */
export class ParkedCalls {
  readonly #calls = new Map<string, ParkedCall>();

  /** Parks a call under a fresh state token: every round gets its own, used once. */
  park(call: ParkedCall): string {
    this.#sweep();
    const token = crypto.randomUUID();
    this.#calls.set(token, call);
    return `${PARKED_STATE_PREFIX}${token}`;
  }

  /** The parked call a request state names, if it exists and belongs to this user. */
  take(state: string, userId: string): ParkedCall | undefined {
    if (!state.startsWith(PARKED_STATE_PREFIX)) return undefined;
    const token = state.slice(PARKED_STATE_PREFIX.length);
    this.#sweep();
    const call = this.#calls.get(token);
    if (!call || call.userId !== userId) return undefined;
    this.#calls.delete(token);
    return call;
  }

  get size(): number {
    return this.#calls.size;
  }

  #sweep(): void {
    const now = Date.now();
    for (const [id, call] of this.#calls) {
      if (call.expiresAt < now) {
        call.abandon();
        this.#calls.delete(id);
      }
    }
  }
}
