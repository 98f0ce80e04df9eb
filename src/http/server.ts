import type { Logger } from "../log/logger.ts";

export interface RunningServer {
  /** The address actually bound (port 0 asks the system for a free one). */
  readonly hostname: string;
  readonly port: number;
  /**
   * Stops accepting connections and waits for in-flight requests, at most `timeoutMs`; resolves
   * true when they all finished, false when the bound ran out first.
   */
  shutdown(timeoutMs: number): Promise<boolean>;
  /** Resolves once the listener has closed. */
  readonly finished: Promise<void>;
}

/** Listens with `Deno.serve` and hands every request to `handler`. */
export function startServer(options: {
  hostname: string;
  port: number;
  handler: (request: Request, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => Response | Promise<Response>;
  log: Logger;
}): RunningServer {
  const { log } = options;
  const server = Deno.serve({
    hostname: options.hostname,
    port: options.port,
    onListen: () => {},
    onError: (error) => {
      log.error("unhandled request error", { error });
      return new Response(JSON.stringify({ error: "server_error", error_description: "Internal error" }), {
        status: 500,
        headers: { "content-type": "application/json" },
      });
    },
  }, options.handler);
  const address = server.addr;
  let shutdownPromise: Promise<boolean> | undefined;
  return {
    hostname: address.hostname,
    port: address.port,
    finished: server.finished,
    shutdown(timeoutMs) {
      shutdownPromise ??= (async () => {
        let timer: ReturnType<typeof setTimeout> | undefined;
        const bound = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), timeoutMs));
        const drained = server.shutdown().then(() => true as const);
        const result = await Promise.race([drained, bound]);
        clearTimeout(timer);
        return result;
      })();
      return shutdownPromise;
    },
  };
}

/** `http://host:port` for an address, bracketing IPv6 and naming the wildcard by loopback. */
export function urlOf(hostname: string, port: number): string {
  const host = hostname === "0.0.0.0" ? "127.0.0.1" : hostname === "::" ? "[::1]" : hostname;
  return `http://${host.includes(":") && !host.startsWith("[") ? `[${host}]` : host}:${port}`;
}
