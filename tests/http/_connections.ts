/**
 * Helpers for the connection-layer tests: the registry's default connection settings, and raw TCP
 * connections from a chosen loopback address (127.0.0.0/8 is all loopback, so each address is a
 * distinct client). Not a test file itself.
 */
import net from "node:net";
import { DEFAULTS } from "../../src/config/resolve.ts";
import type { ConnectionSettings } from "../../src/http/server.ts";

export const DEFAULT_CONNECTION_SETTINGS: ConnectionSettings = {
  headerTimeoutSeconds: DEFAULTS.headerTimeoutSeconds,
  bodyTimeoutSeconds: DEFAULTS.bodyTimeoutSeconds,
  keepaliveTimeoutSeconds: DEFAULTS.keepaliveTimeoutSeconds,
  maxConnections: DEFAULTS.maxConnections,
  maxConnectionsPerAddress: DEFAULTS.maxConnectionsPerAddress,
  trustedProxies: [],
};

/** A raw client connection: what it received so far, and whether the server closed it. */
export class RawClient {
  received = "";
  readonly closed: Promise<void>;
  readonly #socket: net.Socket;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => this.received += chunk);
    this.closed = new Promise((resolve) => socket.on("close", () => resolve()));
    socket.on("error", () => {});
  }

  /** Connects to `port` on 127.0.0.1 from `localAddress` (another loopback address is another client). */
  static connect(port: number, localAddress = "127.0.0.1"): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: "127.0.0.1", port, localAddress });
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  write(text: string): Promise<void> {
    return new Promise((resolve) => this.#socket.write(text, "latin1", () => resolve()));
  }

  /** Whether the server closed the connection within `ms`. */
  async closedWithin(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const result = await Promise.race([
      this.closed.then(() => true),
      new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms)),
    ]);
    clearTimeout(timer);
    return result;
  }

  /** Waits until `predicate` holds for what was received, at most `ms`. */
  async receivedWithin(ms: number, predicate: (text: string) => boolean): Promise<boolean> {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      if (predicate(this.received)) return true;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return predicate(this.received);
  }

  close(): void {
    this.#socket.destroy();
  }
}

/** The status code of the first answer received, or 0 when none arrived. */
export function statusOf(text: string): number {
  return Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
}
