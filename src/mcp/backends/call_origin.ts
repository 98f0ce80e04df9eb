// Who a backend call was made for: the front-end session that receives the backend's messages about it.
import type { ClientCapabilities, Notification } from "@modelcontextprotocol/client";
import { z } from "zod";

/** Results are relayed as they are: the backend's result object, unvalidated beyond being an object. */
export const ANY_RESULT = z.looseObject({});
export type AnyResult = z.infer<typeof ANY_RESULT>;

/** The front-end session a backend call was made for, able to carry messages back to its client. */
export interface CallOrigin {
  /** The front session (legacy) or request (modern) id; messages never cross between these. */
  readonly sessionId: string;
  readonly userId: string;
  /** Sends a server-to-client request (sampling, elicitation, roots) to the client, tied to the call. */
  request(
    request: { method: string; params?: Record<string, unknown> },
    signal: AbortSignal,
  ): Promise<AnyResult>;
  /** Sends a notification (such as a log message) to the client, tied to the call. */
  notify(notification: Notification): Promise<void>;
  /** What the client declared it can answer; a connection of its own declares the same to the backend. */
  readonly clientCapabilities?: ClientCapabilities;
}
