/**
 * A RelayRequest for unit tests of the relay's pieces: a registry loaded from YAML, a pool of scripted
 * backends (answers, delays, failures), and an SDK context that records what went to the client.
 */
import type { ServerCapabilities, ServerContext } from "@modelcontextprotocol/server";
import type { Registry } from "../../../src/config/types.ts";
import { createLogger } from "../../../src/log/logger.ts";
import { RateLimiter } from "../../../src/policy/limits.ts";
import type { Caller } from "../../../src/core/caller.ts";
import type { BackendPool } from "../../../src/mcp/backends/pool.ts";
import { ParkedCalls } from "../../../src/mcp/era/parked.ts";
import { ListCache } from "../../../src/mcp/list_cache.ts";
import type { RelayRequest } from "../../../src/mcp/relay/request.ts";
import { FrontSession, type ProxyDependencies, type ProxyScope } from "../../../src/mcp/session.ts";
import { registryOf, yaml } from "../../config/_helpers.ts";

type Result = Record<string, unknown>;

/** How one scripted backend answers a method. */
export type Script = (method: string, params: Record<string, unknown> | undefined) => Promise<Result>;

export interface FakeBackend {
  capabilities?: ServerCapabilities;
  modern?: boolean;
  answer: Script;
}

/** A registry with the given stdio backends (never started) and policies. */
export function registryWithBackends(backends: string[], policies: string[]): Promise<Registry> {
  return registryOf({
    files: {
      "registry.yaml": yaml(
        "gateway:",
        "  auth: none",
        "  list_timeout: 1s",
        "backends:",
        ...backends.flatMap((name) => [`  ${name}:`, `    stdio: { command: ${name}-server }`]),
        "policies:",
        ...policies.map((rule) => `  - ${rule}`),
      ),
    },
  });
}

/** The relay's dependencies with a pool of scripted backends; `sent` records every backend request. */
export function fakeDeps(registry: Registry, backends: Record<string, FakeBackend>) {
  const sent: { backend: string; method: string; params: Record<string, unknown> | undefined }[] = [];
  const pool = {
    capabilities: (name: string) => backends[name]?.capabilities,
    upstream: (name: string) => {
      const backend = backends[name];
      if (!backend) return Promise.reject(new Error(`no backend ${name}`));
      return Promise.resolve({
        modern: backend.modern ?? false,
        request: (method: string, params: Record<string, unknown> | undefined) => {
          sent.push({ backend: name, method, params });
          return backend.answer(method, params);
        },
      });
    },
    releaseSession: () => {},
  } as unknown as BackendPool;
  const deps: ProxyDependencies = {
    registry: () => registry,
    pool,
    log: createLogger({ level: "error", write: () => {} }),
    parked: new ParkedCalls(),
    lists: new ListCache(undefined),
    audit: undefined,
    metrics: undefined,
    events: undefined,
    shortened: new Map(),
    limiter: new RateLimiter(),
    toolReadOnly: new Map(),
    toolSchemas: new Map(),
    lastKnownLists: new Map(),
    stopping: new AbortController().signal,
  };
  return { deps, sent };
}

/** An SDK request context whose client messages are recorded. */
export function fakeContext(envelope?: Record<string, unknown>): ServerContext & { notified: unknown[] } {
  const notified: unknown[] = [];
  return {
    notified,
    mcpReq: {
      signal: new AbortController().signal,
      _meta: undefined,
      envelope,
      inputResponses: undefined,
      requestState: () => undefined,
      notify: (notification: unknown) => {
        notified.push(notification);
        return Promise.resolve();
      },
      send: () => Promise.reject(new Error("no client requests in this test")),
    },
  } as unknown as ServerContext & { notified: unknown[] };
}

/** One request of user `user` on `/mcp` (or `/mcp/{backend}` with `scope`). */
export function relayFor(
  deps: ProxyDependencies,
  user = "alice",
  scope: ProxyScope = { kind: "aggregate" },
  era: "legacy" | "modern" = "legacy",
  context = fakeContext(),
): RelayRequest {
  const caller: Caller = {
    id: user,
    name: user,
    email: undefined,
    groups: [],
    clientId: "test-client",
    provider: undefined,
  };
  const session = new FrontSession(crypto.randomUUID(), caller, scope, era);
  return { deps, session, context };
}
