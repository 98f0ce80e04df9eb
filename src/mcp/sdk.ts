/**
 * The MCP SDK packages, imported once, off the start path: `startGateway()` asks for both a moment after
 * it listens (`preloadSdks()`; their ~70 ms of loading would otherwise hold up the first answers), so that
 * later requests never need to read them from disk (under a flood of connections the process may have no
 * file descriptor left to do so). A failed import is not kept: the next caller tries again.
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

/**
 * Imports both SDKs after `delayMs` (or sooner, when a request asks for one first); resolves when done,
 * also on failure, which `onError` hears of (the first use then tries again).
 */
export function preloadSdks(delayMs: number, onError: (error: unknown) => void): Promise<void> {
  return new Promise<void>((resolve) => setTimeout(resolve, delayMs))
    .then(() => Promise.all([loadServerSdk(), loadClientSdk()]))
    .then(() => {}, onError);
}
