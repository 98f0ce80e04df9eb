/**
 * The MCP SDK packages, imported once, off the start path: `startGateway()` asks for both as soon as it
 * listens (`preloadSdks()`), so that being ready never waits for them, and no request ever needs to read
 * them from disk (under a flood of connections the process may have no file descriptor left to do so).
 * A failed import is not kept: the next caller tries again.
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
  return serverSdk ??= import("@modelcontextprotocol/server").catch((error) => {
    serverSdk = undefined;
    throw error;
  });
}

/** The client SDK, imported once. */
export function loadClientSdk(): Promise<ClientSdk> {
  return clientSdk ??= import("@modelcontextprotocol/client").catch((error) => {
    clientSdk = undefined;
    throw error;
  });
}

/** Imports both SDKs now, in the background; `onError` hears of a failure (the first use tries again). */
export function preloadSdks(onError: (error: unknown) => void): void {
  Promise.all([loadServerSdk(), loadClientSdk()]).catch(onError);
}
