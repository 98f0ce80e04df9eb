/**
 * The tasks extension (SEP-2663) as 2026-07-28 requests and servers declare it: whether one did, and the
 * error for a tasks method from a request that did not.
 */
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";

/** The tasks extension (SEP-2663): its `capabilities.extensions` key, in client and server capabilities. */
export const TASKS_EXTENSION = "io.modelcontextprotocol/tasks";

/** The tasks extension's settings in `capabilities` (a backend's, or a request's), if declared. */
export function tasksExtensionOf(capabilities: unknown): Record<string, unknown> | undefined {
  const extensions = (capabilities as { extensions?: Record<string, unknown> } | undefined)?.extensions;
  const settings = extensions?.[TASKS_EXTENSION];
  return settings && typeof settings === "object" ? settings as Record<string, unknown> : undefined;
}

/** SEP-2575 "Missing Required Capabilities" for a tasks method from a request without the extension. */
export function tasksExtensionRequired(method: string): JsonRpcError {
  return new JsonRpcError(
    JSONRPC.missingClientCapability,
    `Missing required client capability: ${method} needs ${TASKS_EXTENSION}`,
    { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } },
  );
}
