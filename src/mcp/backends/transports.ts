/** Builds the client transport that reaches one backend: a stdio process or an HTTP connection. */
import type { SSEClientTransport, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import type { Template, TemplateContext } from "../../config/template.ts";
import type { BackendSettings } from "../../config/types.ts";
import type { ClientSdk } from "../sdk.ts";
import { StdioTransport } from "./stdio_transport.ts";

export type ClientTransport = StdioTransport | StreamableHTTPClientTransport | SSEClientTransport;

/** Renders a backend's env or headers for one caller; `context` is needed only for per-user values. */
export function renderValues(
  values: Readonly<Record<string, Template>>,
  context: TemplateContext | undefined,
): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, template]) => [key, template.render(context)]));
}

/** What a stdio backend inherits of the gateway's environment (the SDK's list, after sudo's). */
const INHERITED_ENV_VARS = Deno.build.os === "windows"
  ? [
    "APPDATA",
    "COMSPEC",
    "HOMEDRIVE",
    "HOMEPATH",
    "LOCALAPPDATA",
    "PATH",
    "PATHEXT",
    "PROCESSOR_ARCHITECTURE",
    "PROGRAMDATA",
    "PROGRAMFILES",
    "PROGRAMFILES(X86)",
    "PROGRAMW6432",
    "SYSTEMDRIVE",
    "SYSTEMROOT",
    "TEMP",
    "USERNAME",
    "USERPROFILE",
    "WINDIR",
  ]
  : ["HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER"];

/**
 * The few variables of the gateway's environment a stdio backend gets, as the SDK's
 * `getDefaultEnvironment()` picks them: those of INHERITED_ENV_VARS that are set, never a shell function
 * (a value starting with "()").
 */
export function inheritedEnvironment(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const name of INHERITED_ENV_VARS) {
    const value = Deno.env.get(name);
    if (value !== undefined && !value.startsWith("()")) env[name] = value;
  }
  return env;
}

/**
 * The client transport that reaches a backend: our own child-process transport for stdio (stderr
 * piped, so the gateway can log it; answers bounded by `max_response_size`), or an SDK HTTP connection
 * carrying the rendered headers.
 */
export function createClientTransport(
  sdk: ClientSdk,
  backend: BackendSettings,
  context: TemplateContext | undefined,
  /** For per-user HTTP headers: rendered anew for every request (tokens refresh). */
  freshHeaders?: () => Promise<Record<string, string>>,
  /**
   * For a backend with its own OAuth: what a 401 answer becomes (the user's token was revoked or expired
   * at the server): the error thrown instead, which asks the user to connect again.
   */
  onUnauthorized?: () => Promise<Error>,
): ClientTransport {
  const transport = backend.transport;
  if (transport.kind === "stdio") {
    return new StdioTransport({
      command: transport.command,
      args: [...transport.args],
      // The child gets only this environment, as with the SDK's transport: a few safe variables plus env.
      env: { ...inheritedEnvironment(), ...renderValues(transport.env, context) },
      cwd: transport.cwd,
      maxResponseBytes: backend.maxResponseBytes,
    });
  }
  const headers = renderValues(transport.headers, context);
  const url = new URL(transport.url);
  // Every request, and the SSE stream, carries the headers (rendered anew when they are per user).
  const withHeaders = async (input: string | URL, init?: RequestInit) => {
    const merged = new Headers(init?.headers);
    for (const [name, value] of Object.entries(freshHeaders ? await freshHeaders() : headers)) {
      merged.set(name, value);
    }
    const response = await fetch(input, { ...init, headers: merged });
    if (response.status === 401 && onUnauthorized) {
      await response.body?.cancel();
      throw await onUnauthorized();
    }
    return response;
  };
  if (transport.kind === "sse") return new sdk.SSEClientTransport(url, { fetch: withHeaders });
  return new sdk.StreamableHTTPClientTransport(url, { fetch: withHeaders });
}
