/**
 * Helpers for the MCP proxy's end-to-end tests: an in-process gateway on a temporary registry, the
 * backends it proxies (server-everything in its three transports, the misbehaving fixture), and MCP
 * clients of both SDK generations and both protocol eras.
 */
import {
  Client,
  type ListChangedHandlers,
  StreamableHTTPClientTransport,
} from "@modelcontextprotocol/client";
import { Client as ClientV1 } from "npm:@modelcontextprotocol/sdk@1.32.2/client/index.js";
import { StreamableHTTPClientTransport as StreamableHTTPClientTransportV1 } from "npm:@modelcontextprotocol/sdk@1.32.2/client/streamableHttp.js";
import { join } from "node:path";
import { type RunningGateway, startGateway } from "../../src/gateway.ts";
import { createLogger } from "../../src/log/logger.ts";
import { eventually, ROOT } from "./gatehouse_process.ts";

export { eventually };

export const EVERYTHING_PACKAGE = "npm:@modelcontextprotocol/server-everything@2026.8.31";
const FIXTURE = join(ROOT, "tests", "fixtures", "misbehaving_server.ts");
const CONFIG = join(ROOT, "deno.json");
/** Pins server-everything's dependencies: it is a test dependency, so deno.lock does not hold it. */
const TESTS_LOCK = join(ROOT, "tests", "deno.lock");

/** A stdio backend running server-everything. */
export function everythingStdio(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    stdio: {
      command: Deno.execPath(),
      args: ["run", "-A", `--lock=${TESTS_LOCK}`, EVERYTHING_PACKAGE, "stdio"],
    },
    ...extra,
  };
}

/** A stdio backend running tests/fixtures/misbehaving_server.ts, answering as `name`. */
export function misbehaving(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    stdio: { command: Deno.execPath(), args: ["run", "-A", `--config=${CONFIG}`, FIXTURE, "--name", name] },
    ...extra,
  };
}

/** The first text block of a tool result. */
export function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  const block = content.find((item) => item.type === "text");
  if (!block?.text) throw new Error(`No text in result: ${JSON.stringify(result)}`);
  return block.text;
}

/**
 * Runs `test`, then `cleanup` whatever happens; when both fail, the test's error is the one reported
 * (with the cleanup's appended), since a failed cleanup is usually a consequence.
 */
export async function withCleanup(test: () => Promise<void>, cleanup: () => Promise<void>): Promise<void> {
  let failure: unknown;
  try {
    await test();
  } catch (error) {
    failure = error;
  }
  try {
    await cleanup();
  } catch (error) {
    if (failure === undefined) throw error;
    if (failure instanceof Error) failure.message += `\n(then, cleaning up: ${error})`;
  }
  if (failure !== undefined) throw failure;
}

/** Rejects when `promise` has not settled within `ms` (a bound on what a test awaits). */
export async function within<T>(ms: number, promise: Promise<T>, what = "operation"): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const bound = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, bound]);
  } finally {
    clearTimeout(timer);
  }
}

export interface TestGateway {
  readonly gateway: RunningGateway;
  /** `http://127.0.0.1:PORT/mcp` */
  readonly mcpUrl: string;
  readonly dir: string;
  /** Every log line the gateway wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** Replaces registry.yaml and applies it now (the file watcher may apply it again: a no-op). */
  reload(registry: Record<string, unknown>): Promise<void>;
  close(): Promise<void>;
}

/** The registry of a test gateway: `gateway.auth: none`, a short shutdown bound, and `backends`. */
export function registryWith(
  backends: Record<string, Record<string, unknown>>,
  gateway: Record<string, unknown> = {},
): Record<string, unknown> {
  return { gateway: { auth: "none", shutdown_timeout: "1s", ...gateway }, backends };
}

/** The rule of test registries that say nothing of policies: everyone may use everything. */
export const ALLOW_EVERYONE = {
  id: "tests-allow-everyone",
  effect: "allow",
  subjects: ["*"],
  backends: ["*"],
};

/** A registry as written for a test: with `ALLOW_EVERYONE` unless it has `policies` of its own. */
export function withDefaultPolicy(registry: Record<string, unknown>): Record<string, unknown> {
  return "policies" in registry ? registry : { ...registry, policies: [ALLOW_EVERYONE] };
}

/**
 * Starts the gateway in-process on 127.0.0.1 with a temporary registry (JSON is YAML) and data directory.
 * Tests apply registry changes with `reload()`, which awaits the swap. A registry without `policies`
 * gets `ALLOW_EVERYONE` (nothing allowed would otherwise mean nothing listed).
 */
export async function startTestGateway(registry: Record<string, unknown>): Promise<TestGateway> {
  const dir = await Deno.makeTempDir({ prefix: "gatehouse-mcp-" });
  const registryPath = join(dir, "registry.yaml");
  await Deno.writeTextFile(registryPath, JSON.stringify(withDefaultPolicy(registry), null, 2));
  const dataDir = join(dir, "data");
  await Deno.mkdir(dataDir, { mode: 0o700 });
  const logs: Record<string, unknown>[] = [];
  const log = createLogger({ level: "debug", write: (line) => logs.push(JSON.parse(line)) });
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({ registryPath, listen: "127.0.0.1:0", dataDir, log });
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
  return {
    gateway,
    mcpUrl: `${gateway.url}/mcp`,
    dir,
    logs,
    async reload(next) {
      await Deno.writeTextFile(registryPath, JSON.stringify(withDefaultPolicy(next), null, 2));
      if (!(await gateway.watcher!.reload())) {
        throw new Error(`registry rejected: ${JSON.stringify(logs.at(-1))}`);
      }
    },
    async close() {
      try {
        // Bounded: a gateway that cannot stop must fail the test, not hang the suite.
        await within(8_000, gateway.shutdown(), "gateway shutdown");
      } finally {
        await Deno.remove(dir, { recursive: true });
      }
    },
  };
}

export type Era = "2025-11-25" | "2026-07-28";

/** What a client answers when a backend asks it something (through the gateway). */
export interface ClientAnswers {
  sampling?: (params: Record<string, unknown>) => Record<string, unknown>;
  elicitation?: (params: Record<string, unknown>) => Record<string, unknown>;
  roots?: () => { uri: string; name?: string }[];
}

/**
 * An SDK v2 client of the given era, with handlers for the server-to-client requests it is given, and
 * `listChanged` handlers if any (on 2026-07-28 these open a `subscriptions/listen` stream).
 */
export async function connectV2(
  url: string,
  era: Era,
  answers: ClientAnswers = {},
  listChanged?: ListChangedHandlers,
): Promise<Client> {
  const client = new Client(
    { name: "gatehouse-test", version: "1.0.0" },
    {
      capabilities: {
        ...(answers.sampling ? { sampling: {} } : {}),
        ...(answers.elicitation ? { elicitation: { form: {} } } : {}),
        ...(answers.roots ? { roots: { listChanged: true } } : {}),
      },
      ...(era === "2026-07-28" ? { versionNegotiation: { mode: "auto" as const } } : {}),
      ...(listChanged ? { listChanged } : {}),
    },
  );
  if (answers.sampling) {
    const sampling = answers.sampling;
    // deno-lint-ignore no-explicit-any
    client.setRequestHandler("sampling/createMessage", (request) => sampling(request.params) as any);
  }
  if (answers.elicitation) {
    const elicitation = answers.elicitation;
    // deno-lint-ignore no-explicit-any
    client.setRequestHandler("elicitation/create", (request) => elicitation(request.params) as any);
  }
  if (answers.roots) {
    const roots = answers.roots;
    client.setRequestHandler("roots/list", () => ({ roots: roots() }));
  }
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** An SDK v1 client (protocol 2025-11-25). Its types are `any` under deno check. */
export async function connectV1(url: string) {
  const client = new ClientV1({ name: "gatehouse-test-v1", version: "1.0.0" }, { capabilities: {} });
  await client.connect(new StreamableHTTPClientTransportV1(new URL(url)));
  return client;
}

/** A free TCP port on 127.0.0.1 (released again before it is returned). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

export interface HttpBackend {
  /** Where the gateway reaches it: always 127.0.0.1. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Runs server-everything in its Streamable HTTP (`/mcp`) or legacy SSE (`/sse`) mode on a free port. */
export async function startEverythingHttp(mode: "streamableHttp" | "sse"): Promise<HttpBackend> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `--lock=${TESTS_LOCK}`, EVERYTHING_PACKAGE, mode],
    env: { PORT: String(port) },
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let stderr = "";
  const listening = Promise.withResolvers<void>();
  const reading = (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of child.stderr) {
      stderr += decoder.decode(chunk, { stream: true });
      if (/listening on port|running on port/i.test(stderr)) listening.resolve();
    }
  })();
  const stop = async () => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already exited.
    }
    await child.status;
    await reading;
  };
  try {
    await within(
      20_000,
      Promise.race([
        listening.promise,
        child.status.then((status) => {
          throw new Error(`server-everything ${mode} exited with ${status.code}: ${stderr}`);
        }),
      ]),
      `server-everything ${mode} start`,
    );
  } catch (error) {
    await stop();
    throw error;
  }
  const path = mode === "sse" ? "/sse" : "/mcp";
  return { url: `http://127.0.0.1:${port}${path}`, stop };
}

/** The JSON-RPC messages of a response: its JSON body, or every `data:` event of its SSE stream. */
export async function messagesOf(response: Response): Promise<Record<string, unknown>[]> {
  const text = await response.text();
  if (!(response.headers.get("content-type") ?? "").startsWith("text/event-stream")) {
    return text ? [JSON.parse(text)] : [];
  }
  return text.split(/\r?\n\r?\n/).flatMap((event) => {
    const data = event.split(/\r?\n/).filter((line) => line.startsWith("data:")).map((line) => line.slice(5))
      .join("\n").trim();
    return data ? [JSON.parse(data)] : [];
  });
}

export const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
} as const;

/** Opens a 2025-11-25 session by hand (initialize + initialized) and returns its id. */
export async function openRawSession(url: string, headers: Record<string, string> = {}): Promise<string> {
  const response = await fetch(url, {
    method: "POST",
    headers: { ...JSON_HEADERS, ...headers },
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: { protocolVersion: "2025-11-25", capabilities: {}, clientInfo: { name: "raw", version: "1" } },
    }),
  });
  const sessionId = response.headers.get("mcp-session-id");
  const [message] = await messagesOf(response);
  if (response.status !== 200 || !sessionId || !message?.result) {
    throw new Error(`initialize failed: ${response.status} ${JSON.stringify(message)}`);
  }
  const initialized = await postRaw(
    url,
    sessionId,
    { jsonrpc: "2.0", method: "notifications/initialized" },
    headers,
  );
  await initialized.body?.cancel();
  return sessionId;
}

/** POSTs one JSON-RPC message in a 2025-11-25 session. */
export function postRaw(
  url: string,
  sessionId: string,
  message: unknown,
  headers: Record<string, string> = {},
): Promise<Response> {
  return fetch(url, {
    method: "POST",
    headers: {
      ...JSON_HEADERS,
      ...headers,
      "mcp-session-id": sessionId,
      "mcp-protocol-version": "2025-11-25",
    },
    body: JSON.stringify(message),
  });
}
