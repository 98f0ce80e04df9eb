/**
 * A stdio MCP server (SDK v2, low level) for the relay guard tests: serves `demo://x/` documents and a
 * template the way the SDKs resolve URIs (`new URL(uri).href`), answers any other method instead of
 * refusing it, and tells through the `seen` tool every method and raw resource URI it was sent.
 *
 * Run: `deno run -A tests/mcp/relay/_guarded_server.ts`.
 */
import { Server } from "@modelcontextprotocol/server";
import { StdioServerTransport } from "@modelcontextprotocol/server/stdio";

const DOCUMENTS = new Map([
  ["demo://x/doc.md", "the secret document"],
  ["demo://x/public.md", "the public document"],
  ["demo://x/items/a", "item a"],
]);

const seen: { method: string; uri?: unknown }[] = [];
const server = new Server(
  { name: "guarded", version: "1.0.0" },
  { capabilities: { tools: {}, resources: { subscribe: true } } },
);

server.setRequestHandler("tools/list", () => ({
  tools: [{ name: "seen", description: "What this server was sent", inputSchema: { type: "object" } }],
}));
server.setRequestHandler("tools/call", () => ({ content: [{ type: "text", text: JSON.stringify(seen) }] }));
server.setRequestHandler("resources/list", () => ({
  resources: [{ uri: "demo://x/doc.md", name: "doc" }, { uri: "demo://x/public.md", name: "public" }],
}));
server.setRequestHandler("resources/templates/list", () => ({
  resourceTemplates: [{ uriTemplate: "demo://x/items/{id}", name: "item" }],
}));
server.setRequestHandler("resources/read", (request) => {
  const raw = request.params.uri;
  seen.push({ method: "resources/read", uri: raw });
  // As the SDKs do: the URI is parsed, and the parsed form looked up (which is what bypassed raw rules).
  const uri = new URL(raw).href;
  const text = DOCUMENTS.get(uri);
  if (text === undefined) throw Object.assign(new Error(`Resource ${uri} not found`), { code: -32602 });
  return { contents: [{ uri, mimeType: "text/plain", text }] };
});
for (const method of ["resources/subscribe", "resources/unsubscribe"] as const) {
  server.setRequestHandler(method, (request) => {
    seen.push({ method, uri: request.params.uri });
    return {};
  });
}
// A backend that would do anything it is asked: the gateway must not ask it what it does not know.
server.fallbackRequestHandler = (request) => {
  seen.push({ method: request.method });
  return Promise.resolve({ done: request.method });
};

await server.connect(new StdioServerTransport());
server.onclose = () => Deno.exit(0);
