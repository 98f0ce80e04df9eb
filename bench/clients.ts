/**
 * The load generator's MCP clients: one SDK v2 `Client` per concurrent worker, speaking 2025-11-25
 * (what deployed clients speak today), each calling the `echo` tool.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { StdioClientTransport } from "@modelcontextprotocol/client/stdio";
import { type Call, HTTP_TIMEOUT_MS } from "./measure.ts";

/** The headers of a raw JSON-RPC POST to a Streamable HTTP endpoint. */
export const JSON_HEADERS = {
  "content-type": "application/json",
  accept: "application/json, text/event-stream",
};

/** A raw 2025-11-25 `initialize` POST, bounded: the answer, its body, and the session id it gave. */
export async function postInitialize(
  url: string,
): Promise<{ response: Response; body: string; sessionId: string | null }> {
  const response = await fetch(url, {
    signal: AbortSignal.timeout(HTTP_TIMEOUT_MS),
    method: "POST",
    headers: JSON_HEADERS,
    body: JSON.stringify({
      jsonrpc: "2.0",
      id: 1,
      method: "initialize",
      params: {
        protocolVersion: "2025-11-25",
        capabilities: {},
        clientInfo: { name: "bench", version: "1" },
      },
    }),
  });
  const body = await response.text();
  return { response, body, sessionId: response.headers.get("mcp-session-id") };
}

export interface Worker {
  readonly call: Call;
  close(): Promise<void>;
}

/** Bound on one call or one connection: a stuck target fails its calls instead of stalling the run. */
const REQUEST_TIMEOUT_MS = 10_000;

function echoCall(client: Client, tool: string): Call {
  return async () => {
    const result = await client.callTool(
      { name: tool, arguments: { text: "hello" } },
      { timeout: REQUEST_TIMEOUT_MS },
    );
    if (result.isError) throw new Error(`${tool} answered an error: ${JSON.stringify(result.content)}`);
  };
}

async function connectWorker(transport: StreamableHTTPClientTransport | StdioClientTransport, tool: string) {
  const client = new Client({ name: "gatehouse-bench", version: "1.0.0" }, { capabilities: {} });
  await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS });
  return {
    call: echoCall(client, tool),
    close: async () => {
      await client.close().catch(() => {});
    },
  };
}

/** A worker calling `tool` over Streamable HTTP at `url`, sending `headers` (an access token) on every request. */
export function httpWorker(url: string, tool: string, headers: Record<string, string> = {}): Promise<Worker> {
  return connectWorker(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } }), tool);
}

/**
 * An access token for `resource` from the gateway at `baseUrl`, granted to a registry client with
 * `client_credentials` (RFC 6749 §4.4; `resource` is RFC 8707).
 */
export async function clientCredentialsToken(
  baseUrl: string,
  client: { readonly id: string; readonly secret: string },
  resource: string,
): Promise<string> {
  const response = await fetch(`${baseUrl}/token`, {
    signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    method: "POST",
    headers: {
      authorization: `Basic ${btoa(`${client.id}:${client.secret}`)}`,
      "content-type": "application/x-www-form-urlencoded",
    },
    body: new URLSearchParams({ grant_type: "client_credentials", resource }),
  });
  const body = await response.json() as { access_token?: string };
  if (response.status !== 200 || !body.access_token) {
    throw new Error(`Cannot get a token: /token answered ${response.status}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

/** A worker that starts its own stdio server process and calls `tool` on it. */
export function stdioWorker(command: string, args: readonly string[], tool: string): Promise<Worker> {
  return connectWorker(new StdioClientTransport({ command, args: [...args], stderr: "pipe" }), tool);
}

/** `count` workers made by `connect`; if one fails to connect, those already connected are closed. */
export async function connectWorkers(count: number, connect: () => Promise<Worker>): Promise<Worker[]> {
  const settled = await Promise.allSettled(Array.from({ length: count }, () => connect()));
  const workers = settled.flatMap((outcome) => outcome.status === "fulfilled" ? [outcome.value] : []);
  const failed = settled.find((outcome) => outcome.status === "rejected");
  if (failed) {
    await closeWorkers(workers);
    throw failed.reason;
  }
  return workers;
}

export async function closeWorkers(workers: readonly Worker[]): Promise<void> {
  await Promise.all(workers.map((worker) => worker.close()));
}
