/**
 * The 2026-07-28 revision's side of the era bridge: what its requests carry in `_meta`, which log
 * messages they hear, what input they may be asked for, and a 2025-11-25 -32042 in their form.
 */
import type { Notification, ServerContext } from "@modelcontextprotocol/server";
import type { JsonRpcError } from "../../core/jsonrpc.ts";
import { TASKS_EXTENSION, tasksExtensionOf } from "./tasks_extension.ts";
import type { FrontSession } from "../session.ts";

type Params = Record<string, unknown>;
type Result = Record<string, unknown>;

/** Methods that may answer `input_required` in the 2026-07-28 revision. */
export const INPUT_REQUIRED_METHODS: ReadonlySet<string> = new Set([
  "tools/call",
  "prompts/get",
  "resources/read",
]);
export const CLIENT_CAPABILITIES_KEY = "io.modelcontextprotocol/clientCapabilities";
const PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion";
const CLIENT_INFO_KEY = "io.modelcontextprotocol/clientInfo";
const LOG_LEVEL_KEY = "io.modelcontextprotocol/logLevel";
/** Request state for "open the link, then retry": the retry simply runs the call again. */
export const RETRY_STATE = "gatehouse-retry";

const LOG_SEVERITY = ["debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

function envelopeOf(context: ServerContext): Record<string, unknown> {
  return (context.mcpReq.envelope ?? {}) as Record<string, unknown>;
}

/**
 * A backend's notification for a 2026-07-28 request: log messages only when the request asked for a log
 * level (`_meta` logLevel), at or above it.
 */
export function relayModernNotification(notification: Notification, context: ServerContext): Promise<void> {
  if (notification.method === "notifications/message") {
    const wanted = LOG_SEVERITY.indexOf(String(envelopeOf(context)[LOG_LEVEL_KEY]));
    const level = LOG_SEVERITY.indexOf(
      String((notification.params as { level?: unknown } | undefined)?.level),
    );
    if (wanted < 0 || level < wanted) return Promise.resolve();
  }
  return context.mcpReq.notify(notification);
}

/** The capability each server-to-client request needs the client to have declared. */
const CAPABILITY_FOR: Readonly<Record<string, string>> = {
  "sampling/createMessage": "sampling",
  "elicitation/create": "elicitation",
  "roots/list": "roots",
};

/** The capability a 2026-07-28 client must have declared to answer `method`, when it has not. */
export function missingCapability(method: string, context: ServerContext): string | undefined {
  const declared = declaredCapabilities(context);
  const needed = CAPABILITY_FOR[method];
  return needed !== undefined && declared[needed] === undefined ? needed : undefined;
}

/** Whether a 2026-07-28 request's client declared URL-mode elicitation (`elicitation.url`). */
export function declaresUrlElicitation(context: ServerContext): boolean {
  const declared = declaredCapabilities(context) as {
    elicitation?: { url?: unknown };
  };
  return declared.elicitation?.url !== undefined;
}

/**
 * A backend's -32042 (2025-11-25 "open this URL first") in the 2026-07-28 form: URL elicitations as
 * `input_required`; the client's retry runs the call again.
 */
export function urlElicitationAsInputRequired(error: JsonRpcError): Result {
  const elicitations = (error.data as { elicitations?: { url?: string; message?: string }[] } | undefined)
    ?.elicitations ?? [];
  const inputRequests = Object.fromEntries(elicitations.map((elicitation, index) => [
    `url-${index}`,
    {
      method: "elicitation/create",
      params: {
        mode: "url",
        url: String(elicitation.url ?? ""),
        message: String(elicitation.message ?? error.message),
      },
    },
  ]));
  return { resultType: "input_required", inputRequests, requestState: RETRY_STATE };
}

/**
 * What a 2026-07-28 backend needs beside the params: the client's own capabilities and log level
 * (so it asks only for input the client can give), and its echo of input responses and state.
 */
export function forModernBackend(
  session: FrontSession,
  params: Params | undefined,
  context: ServerContext,
): Params {
  const envelope = envelopeOf(context);
  const legacyClient = session.server?.getClientCapabilities();
  // Per-request opt-ins (such as the tasks extension's) travel in the envelope too; the gateway's own
  // client states the protocol version and client info.
  const { [PROTOCOL_VERSION_KEY]: _version, [CLIENT_INFO_KEY]: _info, ...forwardedEnvelope } = envelope;
  const meta: Params = { ...forwardedEnvelope, ...(params?._meta as Params | undefined) };
  // Of the extensions, only SEP-2663 tasks (2026-07-28 clients) is offered on: the others' methods and
  // results are not relayed.
  const { extensions, ...capabilities } = (envelope[CLIENT_CAPABILITIES_KEY] ?? legacyClient ?? {}) as Record<
    string,
    unknown
  >;
  const tasks = session.era === "modern" ? tasksExtensionOf({ extensions }) : undefined;
  meta[CLIENT_CAPABILITIES_KEY] = tasks
    ? { ...capabilities, extensions: { [TASKS_EXTENSION]: tasks } }
    : capabilities;
  // A 2025-era client that never set a level hears every level, as a 2025-era backend would send them.
  const logLevel = envelope[LOG_LEVEL_KEY] ?? session.logLevel ??
    (session.era === "legacy" ? "debug" : undefined);
  if (logLevel !== undefined) meta[LOG_LEVEL_KEY] = logLevel;
  const state = context.mcpReq.requestState<unknown>();
  return {
    ...params,
    _meta: meta,
    ...(context.mcpReq.inputResponses ? { inputResponses: context.mcpReq.inputResponses } : {}),
    ...(typeof state === "string" && state !== RETRY_STATE ? { requestState: state } : {}),
  };
}

/** The capabilities a 2026-07-28 request declares in its `_meta` envelope. */
export function declaredCapabilities(context: ServerContext): Record<string, unknown> {
  return (envelopeOf(context)[CLIENT_CAPABILITIES_KEY] ?? {}) as Record<string, unknown>;
}
