/**
 * The MCP SDK packages, imported on first use: the server side with the first `/mcp` request, the client
 * side with the first backend connection. Together they add some 15 MB resident that an idle gateway
 * never needs.
 */

/** `@modelcontextprotocol/server`: the front's transports, handler and servers. */
export type ServerSdk = typeof import("@modelcontextprotocol/server");
/** `@modelcontextprotocol/client`: the backends' clients and HTTP transports. */
export type ClientSdk = typeof import("@modelcontextprotocol/client");

let serverSdk: Promise<ServerSdk> | undefined;
let clientSdk: Promise<ClientSdk> | undefined;

// The specifiers stay string literals: `deno compile` includes only what a dynamic import names literally.

/** The server SDK, imported once. */
export function loadServerSdk(): Promise<ServerSdk> {
  return serverSdk ??= import("@modelcontextprotocol/server");
}

/** The client SDK, imported once. */
export function loadClientSdk(): Promise<ClientSdk> {
  return clientSdk ??= import("@modelcontextprotocol/client");
}
