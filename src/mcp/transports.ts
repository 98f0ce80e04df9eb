import { SSEClientTransport, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { getDefaultEnvironment, StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import type { Template, TemplateContext } from "../config/template.ts";
import type { BackendSettings } from "../config/types.ts";

type ClientTransport = StdioClientTransport | StreamableHTTPClientTransport | SSEClientTransport;

/** Renders a backend's env or headers for one caller; `context` is needed only for per-user values. */
export function renderValues(
  values: Readonly<Record<string, Template>>,
  context: TemplateContext | undefined,
): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([key, template]) => [key, template.render(context)]));
}

/**
 * The SDK client transport that reaches a backend: a child process for stdio (stderr piped, so the
 * gateway can log it), or an HTTP connection carrying the rendered headers.
 */
export function createClientTransport(
  backend: BackendSettings,
  context: TemplateContext | undefined,
  /** For per-user HTTP headers: rendered anew for every request (tokens refresh). */
  freshHeaders?: () => Promise<Record<string, string>>,
): ClientTransport {
  const transport = backend.transport;
  if (transport.kind === "stdio") {
    return new StdioClientTransport({
      command: transport.command,
      args: [...transport.args],
      env: { ...getDefaultEnvironment(), ...renderValues(transport.env, context) },
      cwd: transport.cwd,
      stderr: "pipe",
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
    return fetch(input, { ...init, headers: merged });
  };
  if (transport.kind === "sse") return new SSEClientTransport(url, { fetch: withHeaders });
  return new StreamableHTTPClientTransport(url, { fetch: withHeaders });
}
