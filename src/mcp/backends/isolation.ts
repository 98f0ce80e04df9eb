// Which connection of a backend serves a caller: one shared, one per user, or one per front session.
import type { BackendSettings } from "../../config/types.ts";
import type { Caller } from "../../core/caller.ts";

/** The key of the connection serving a caller, by the backend's isolation. */
export function isolationKey(
  backend: BackendSettings,
  caller: Caller,
  sessionId: string | undefined,
): string {
  if (backend.transport.kind !== "stdio") return backend.perUser ? `user:${caller.id}` : "shared";
  if (backend.isolation === "session" && sessionId) return `session:${sessionId}`;
  if (backend.isolation === "shared") return "shared";
  return `user:${caller.id}`;
}
