/**
 * The same-era fast path of 2025-era sessions: a POST carrying one call (`tools/call`, `prompts/get`,
 * `resources/read`, `completion/complete`) on an open session goes straight to the session's Router,
 * without the SDK's transport and protocol layers decoding, classifying and re-encoding it. The answer is
 * the same resumable SSE stream the SDK would send (call_stream.ts); the client's answers to questions
 * asked on it, and its cancellations, are taken here too. Anything else, or anything unusual, takes the
 * SDK's path.
 */
import type { JSONRPCRequest, ServerContext } from "@modelcontextprotocol/server";
import type { SessionEventStore } from "../event_store.ts";
import { JSONRPC } from "../../core/jsonrpc.ts";
import type { AnyResult } from "../backends/call_origin.ts";
import type { FrontSession } from "../session.ts";
import { CallStream, isCallStreamEvent } from "./call_stream.ts";

/** The calls answered on the fast path: each names one backend and is answered once. */
const FAST_METHODS: ReadonlySet<string> = new Set([
  "tools/call",
  "prompts/get",
  "resources/read",
  "completion/complete",
]);

/** A single JSON-RPC request the fast path may answer. */
export interface FastCall {
  readonly id: string | number;
  readonly method: string;
  readonly params: Record<string, unknown> | undefined;
  /** The revision the client speaks (its header, or the SDK's default when it sent none). */
  readonly protocolVersion: string;
}

/** What the SDK takes a 2025-era request without the header to speak (MCP 2025-03-26 §Transports). */
const DEFAULT_PROTOCOL_VERSION = "2025-03-26";

/** 2025-era codes the SDK rewrites on the way out (its 2025-11-25 codec): kept identical here. */
const encodeErrorCode = (code: number) => code === -32002 ? JSONRPC.invalidParams : code;

/**
 * The call in `body`, when the fast path may answer it: one request (not a batch), a known call method,
 * a usable id and params, no progress asked for (progress streams stay with the SDK, which can resume
 * them), and headers the SDK would accept as they are (`supportedVersions`: the SDK's protocol versions).
 */
export function fastCallOf(
  request: Request,
  body: unknown,
  supportedVersions: readonly string[],
): FastCall | undefined {
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const { jsonrpc, id, method, params } = body as Record<string, unknown>;
  if (jsonrpc !== "2.0" || typeof method !== "string" || !FAST_METHODS.has(method)) return undefined;
  if (typeof id !== "string" && (typeof id !== "number" || !Number.isSafeInteger(id))) return undefined;
  if (params !== undefined && (params === null || typeof params !== "object" || Array.isArray(params))) {
    return undefined;
  }
  const meta = (params as { _meta?: unknown } | undefined)?._meta;
  if (meta !== undefined && (meta === null || typeof meta !== "object" || !plainMeta(meta))) return undefined;
  const accept = request.headers.get("accept") ?? "";
  if (!accept.includes("application/json") || !accept.includes("text/event-stream")) return undefined;
  const version = request.headers.get("mcp-protocol-version");
  if (version !== null && !supportedVersions.includes(version)) return undefined;
  return {
    id,
    method,
    params: params as Record<string, unknown> | undefined,
    protocolVersion: version ?? DEFAULT_PROTOCOL_VERSION,
  };
}

/** `_meta` with no progress token and none of the 2026-07-28 envelope's keys. */
function plainMeta(meta: object): boolean {
  return Object.keys(meta).every((key) =>
    key !== "progressToken" && !key.startsWith("io.modelcontextprotocol/")
  );
}

/** Answers the fast calls of every session; holds their questions to the client and their streams. */
export class FastCalls {
  /** Questions sent to clients on fast calls' streams, by the id they were sent with. */
  readonly #questions = new Map<
    string,
    { sessionId: string; resolve(result: AnyResult): void; reject(error: Error): void }
  >();
  /** The fast calls running, by session id and request id. */
  readonly #running = new Map<string, AbortController>();
  /** The streams of the fast calls running, by stream id (a client may resume one). */
  readonly #streams = new Map<string, { sessionId: string; stream: CallStream }>();
  #nextQuestion = 1;

  /** Relays `call` on `session` through its Router; resolves with the HTTP answer. */
  answer(session: FrontSession, events: SessionEventStore, call: FastCall): Promise<Response> {
    const answer = session.answer;
    if (!answer) {
      return Promise.resolve(Response.json({ jsonrpc: "2.0", id: call.id, error: SESSION_NOT_FOUND }));
    }
    const key = runningKey(session.id, call.id);
    const controller = new AbortController();
    // A session that ends (DELETE, idle, over its user's cap) cancels its calls still running.
    const onSessionClosed = () => controller.abort();
    session.closed.signal.addEventListener("abort", onSessionClosed, { once: true });
    if (session.closed.signal.aborted) controller.abort();
    this.#running.set(key, controller);
    const stream = new CallStream(events, session.id, call.protocolVersion);
    this.#streams.set(stream.id, { sessionId: session.id, stream });
    const context = {
      sessionId: session.id,
      mcpReq: {
        id: call.id,
        method: call.method,
        _meta: call.params?._meta,
        signal: controller.signal,
        // 2025-era requests carry no request state (SEP-2322 is 2026-07-28's).
        requestState: () => undefined,
        notify: (notification: { method: string; params?: unknown }) => {
          stream.send({ jsonrpc: "2.0", ...notification });
          return SENT;
        },
        send: (
          question: { method: string; params?: unknown },
          _schema: unknown,
          options?: { signal?: AbortSignal },
        ) => this.#ask(session.id, stream, question, options?.signal),
      },
    } as unknown as ServerContext;
    const request = {
      jsonrpc: "2.0",
      id: call.id,
      method: call.method,
      params: call.params,
    } as JSONRPCRequest;
    const settle = (message: Record<string, unknown>) => {
      session.closed.signal.removeEventListener("abort", onSessionClosed);
      if (this.#running.get(key) === controller) this.#running.delete(key);
      this.#streams.delete(stream.id);
      // A call its client cancelled gets no answer (MCP 2025-11-25 §Cancellation): its stream just ends.
      if (controller.signal.reason === CANCELLED_BY_CLIENT) return stream.end();
      try {
        stream.finish(message);
      } catch {
        // An answer JSON cannot carry: the client still gets one.
        stream.finish(errorAnswer(call.id, { code: JSONRPC.internalError, message: "Internal error" }));
      }
    };
    answer(request, context).then(
      (result) => settle({ jsonrpc: "2.0", id: call.id, result }),
      (error: { code?: unknown; message?: string; data?: unknown }) => settle(errorAnswer(call.id, error)),
    );
    return stream.response;
  }

  /**
   * A client resuming the stream of a fast call still running (GET with Last-Event-ID): what it missed,
   * then the rest. Undefined when the event is not of such a stream (the SDK replays finished ones).
   */
  resume(session: FrontSession, lastEventId: string): Response | undefined {
    if (!isCallStreamEvent(lastEventId)) return undefined;
    for (const { sessionId, stream } of this.#streams.values()) {
      if (sessionId === session.id && stream.owns(lastEventId)) return stream.resume(lastEventId);
    }
    return undefined;
  }

  /**
   * Takes what a client POSTs that belongs to a fast call: the answer to a question it was asked, or the
   * cancellation of a running call. Returns false for anything else (the SDK's path takes it).
   */
  take(session: FrontSession, body: unknown): boolean {
    if (body === null || typeof body !== "object" || Array.isArray(body)) return false;
    const message = body as { id?: unknown; method?: unknown; params?: { requestId?: unknown } };
    if (message.method === "notifications/cancelled") {
      const requestId = message.params?.requestId;
      if (typeof requestId !== "string" && typeof requestId !== "number") return false;
      const controller = this.#running.get(runningKey(session.id, requestId));
      if (!controller) return false;
      controller.abort(CANCELLED_BY_CLIENT);
      return true;
    }
    if (message.method !== undefined || typeof message.id !== "string") return false;
    const question = this.#questions.get(message.id);
    if (!question || question.sessionId !== session.id) return false;
    this.#questions.delete(message.id);
    const { result, error } = body as { result?: unknown; error?: { code?: number; message?: string } };
    if (error) question.reject(Object.assign(new Error(error.message ?? "Error"), { code: error.code }));
    else question.resolve((result ?? {}) as AnyResult);
    return true;
  }

  #ask(
    sessionId: string,
    stream: CallStream,
    question: { method: string; params?: unknown },
    signal: AbortSignal | undefined,
  ): Promise<AnyResult> {
    // Never a number: the SDK's own questions on this session are numbered.
    const id = `gatehouse-${this.#nextQuestion++}`;
    return new Promise<AnyResult>((resolve, reject) => {
      const onAbort = () => {
        this.#questions.delete(id);
        reject(signal?.reason ?? new Error("The question was withdrawn"));
      };
      if (signal?.aborted) return onAbort();
      signal?.addEventListener("abort", onAbort, { once: true });
      const settle = <T>(then: (value: T) => void) => (value: T) => {
        signal?.removeEventListener("abort", onAbort);
        then(value);
      };
      this.#questions.set(id, { sessionId, resolve: settle(resolve), reject: settle(reject) });
      stream.send({ jsonrpc: "2.0", id, method: question.method, params: question.params });
    });
  }
}

/** The error answer to call `id`, its code as the SDK would encode it. */
function errorAnswer(id: string | number, error: { code?: unknown; message?: string; data?: unknown }) {
  return {
    jsonrpc: "2.0",
    id,
    error: {
      code: encodeErrorCode(Number.isSafeInteger(error?.code) ? error.code as number : JSONRPC.internalError),
      message: error?.message ?? "Internal error",
      ...(error?.data !== undefined ? { data: error.data } : {}),
    },
  };
}

/** What `notify` resolves with: the message is kept and written by then. */
const SENT: Promise<void> = Promise.resolve();

/** Why a call's signal aborted when its client sent `notifications/cancelled`. */
const CANCELLED_BY_CLIENT = new DOMException("The client cancelled the request", "AbortError");

const SESSION_NOT_FOUND = { code: JSONRPC.sessionNotFound, message: "Session not found" };

const runningKey = (sessionId: string, id: string | number) => `${sessionId}\n${typeof id}:${id}`;
