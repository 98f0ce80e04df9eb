/**
 * The hostile-input suite's world: one real `gatehouse serve` process with `auth: oauth`, two local users
 * (alice the attacker, bob the bystander), one cheap stdio backend and one service; a seeded PRNG; raw
 * HTTP/1.1 over TCP for what `fetch` refuses to send. Not a test file itself.
 */
import { join } from "node:path";
import { type GatehouseProcess, startGatehouse } from "../helpers/gatehouse_process.ts";
import { JSON_HEADERS, messagesOf, misbehaving, within } from "../helpers/mcp_clients.ts";
import { ScriptedBrowser } from "../helpers/browser_session.ts";
import { hashPassword } from "../../src/login/password.ts";
import { ALICE, aliceHashOnce, signedInTokens } from "../oauth/_flow.ts";

export { ALICE, JSON_HEADERS, messagesOf, within };
export const BOB = { username: "bob", password: "bob-password-for-tests" } as const;

/** Bodies above this are refused with 413 (`gateway.max_body_size` of the hostile registry). */
export const MAX_BODY_BYTES = 64 * 1024;
export const BACKEND = "mis";
export const SERVICE = "acme";

/** Mulberry32: a small seeded PRNG, so that a failing run can be replayed with the same seed. */
export class Prng {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(below: number): number {
    return Math.floor(this.next() * below);
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }
  bytes(length: number): Uint8Array<ArrayBuffer> {
    return Uint8Array.from({ length }, () => this.int(256));
  }
  ascii(length: number, alphabet = "abcdefghijklmnopqrstuvwxyz0123456789-_"): string {
    return Array.from({ length }, () => alphabet[this.int(alphabet.length)]).join("");
  }
}

/** A signed-in user: a browser with a Gatehouse session and an access token for `/mcp`. */
export interface User {
  readonly browser: ScriptedBrowser;
  readonly token: string;
  readonly clientId: string;
}

export interface HostileWorld {
  readonly process: GatehouseProcess;
  readonly base: string;
  readonly dir: string;
  readonly alice: User;
  readonly bob: User;
  /** The gateway's resident memory now (VmRSS of /proc/PID/status), in bytes. */
  rssBytes(): Promise<number>;
  close(): Promise<void>;
}

/** Starts the gateway process and signs alice and bob in through the real code flow. */
export async function startHostileWorld(
  options: { gateway?: Record<string, unknown>; fileLimit?: number } = {},
): Promise<HostileWorld> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-hostile-" });
  const registry = {
    gateway: {
      auth: "oauth",
      listen: "127.0.0.1:0",
      shutdown_timeout: "1s",
      max_body_size: "64KiB",
      // Hundreds of refused registrations come from one address: the throttle is not what is tested here.
      registrations_per_hour: 100_000,
      status_page: "users",
      ...options.gateway,
    },
    login: {
      users: {
        alice: { password_hash: await aliceHashOnce(), groups: ["staff"] },
        bob: { password_hash: await hashPassword(BOB.password), groups: ["staff"] },
      },
    },
    services: {
      // Never reached: every link and callback the suite opens is refused before the service is asked.
      [SERVICE]: {
        authorization_endpoint: "http://127.0.0.1:9/authorize",
        token_endpoint: "http://127.0.0.1:9/token",
        client_id: "gatehouse-hostile",
      },
    },
    backends: { [BACKEND]: misbehaving(BACKEND) },
    policies: [{ id: "staff", effect: "allow", subjects: ["group:staff"], backends: ["*"] }],
  };
  await Deno.writeTextFile(join(dir, "registry.yaml"), JSON.stringify(registry, null, 2));
  const process = await startGatehouse(["--listen", "127.0.0.1:0"], {
    cwd: dir,
    fileLimit: options.fileLimit,
  });
  try {
    const base = process.url;
    const signIn = async (credentials: { username: string; password: string }): Promise<User> => {
      const browser = new ScriptedBrowser();
      const { tokens, clientId } = await signedInTokens(base, { browser, credentials });
      return { browser, token: tokens.access_token, clientId };
    };
    const alice = await signIn(ALICE);
    const bob = await signIn(BOB);
    return {
      process,
      base,
      dir,
      alice,
      bob,
      async rssBytes() {
        const status = await Deno.readTextFile(`/proc/${process.child.pid}/status`);
        const kib = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status)?.[1];
        if (kib === undefined) throw new Error(`No VmRSS in /proc/${process.child.pid}/status`);
        return Number(kib) * 1024;
      },
      async close() {
        try {
          await within(10_000, process.stop("SIGTERM"), "gatehouse stop");
        } finally {
          await Deno.remove(dir, { recursive: true });
        }
      },
    };
  } catch (error) {
    await process.stop("SIGKILL");
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

/** The status line's code and the raw head of an HTTP/1.1 answer read from a socket (or 0 when closed). */
export interface RawAnswer {
  readonly status: number;
  readonly text: string;
}

/**
 * Sends `chunks` over a fresh TCP connection, waiting `pauseMs` between them, and reads what comes back
 * until the server closes or `readMs` passes. For bytes `fetch` will not send (CRLF, NUL, bad framing).
 */
export async function rawExchange(
  base: string,
  chunks: readonly (string | Uint8Array)[],
  options: { pauseMs?: number; readMs?: number; closeAfterSend?: boolean } = {},
): Promise<RawAnswer> {
  const url = new URL(base);
  const connection = await Deno.connect({ hostname: url.hostname, port: Number(url.port) });
  const encoder = new TextEncoder();
  let text = "";
  const decoder = new TextDecoder();
  const reading = (async () => {
    const buffer = new Uint8Array(16 * 1024);
    try {
      while (true) {
        const read = await connection.read(buffer);
        if (read === null) break;
        text += decoder.decode(buffer.subarray(0, read), { stream: true });
        // One answer is all a case needs: stop once its head and declared body are in.
        if (answerComplete(text)) break;
      }
    } catch {
      // Reset by the peer: whatever arrived is the answer.
    }
  })();
  try {
    for (const [index, chunk] of chunks.entries()) {
      if (index > 0 && options.pauseMs) await new Promise((resolve) => setTimeout(resolve, options.pauseMs));
      await connection.write(typeof chunk === "string" ? encoder.encode(chunk) : chunk);
    }
  } catch {
    // The server may close early (it refused the head): read what it said.
  }
  if (options.closeAfterSend) {
    connection.close();
    await reading.catch(() => {});
    return { status: 0, text };
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    reading,
    new Promise((resolve) => timer = setTimeout(resolve, options.readMs ?? 5_000)),
  ]);
  clearTimeout(timer);
  try {
    connection.close();
  } catch {
    // Already closed.
  }
  await reading;
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0);
  return { status, text };
}

function answerComplete(text: string): boolean {
  const end = text.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const head = text.slice(0, end);
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1];
  if (length !== undefined) return new TextEncoder().encode(text.slice(end + 4)).length >= Number(length);
  if (/\r\ntransfer-encoding:\s*chunked/i.test(head)) return text.endsWith("0\r\n\r\n");
  return false;
}

/** Opens a 2025-11-25 session for `token` on `url` (initialize, then initialized); returns its id. */
export async function openSession(url: string, token: string): Promise<string> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, authorization: `Bearer ${token}` },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "hostile", version: "1" },
      },
    }),
  });
  const sessionId = response.headers.get("mcp-session-id");
  const [message] = await messagesOf(response);
  if (response.status !== 200 || !sessionId || !message?.result) {
    throw new Error(`Cannot open a session: ${response.status} ${JSON.stringify(message)}`);
  }
  const initialized = await fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      authorization: `Bearer ${token}`,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify({ jsonrpc: "2.0", method: "notifications/initialized" }),
  });
  await initialized.body?.cancel();
  if (initialized.status !== 202) throw new Error(`initialized answered ${initialized.status}`);
  return sessionId;
}
