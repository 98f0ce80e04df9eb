/**
 * The status report: backends, recent events and registry state, as the status page and /status.json show it.
 */
import { formatProblem } from "../config/errors.ts";
import type { RegistryHolder } from "../config/current.ts";
import type { McpFront } from "../mcp/front/http_entry.ts";
import type { BackendPool } from "../mcp/backends/pool.ts";
import { policyOf, type PolicySubject } from "../policy/policy.ts";
import type { ServiceConnections } from "../services/connections.ts";
import { VERSION } from "../version.ts";
import type { RecentEvent, RecentEvents } from "../metrics/events.ts";

/** Who is looking at the status page, and so what they may see. */
export type StatusViewer =
  /** `status_page: public`, not signed in: the gateway's health, nothing about anyone. */
  | { readonly kind: "anonymous" }
  /** A signed-in user: admins (group `admin`, or everyone with `auth: none`) see everything. */
  | {
    readonly kind: "user";
    readonly subject: PolicySubject;
    readonly name: string;
    readonly admin: boolean;
  };

export interface StatusSources {
  readonly holder: RegistryHolder;
  readonly pool: BackendPool;
  readonly front: McpFront;
  readonly events: RecentEvents;
  readonly connections: ServiceConnections | undefined;
  readonly startedAt: number;
  readonly now?: () => number;
}

export interface StatusBackend {
  readonly name: string;
  readonly transport: string;
  readonly state: string;
  readonly tools: number | null;
  readonly latency_ms: number | null;
  readonly processes: number;
  /** Admins only. */
  readonly last_error?: string | null;
  readonly restarts?: number;
  readonly refused_requests?: number;
}

export interface StatusEvent {
  readonly at: string;
  readonly user: string | null;
  readonly backend: string | null;
  readonly message: string;
}

/** `/status.json`, and what `/status` shows. */
export interface StatusReport {
  readonly version: string;
  readonly started_at: string;
  readonly uptime_seconds: number;
  readonly viewer: { readonly user: string | null; readonly admin: boolean };
  readonly registry: {
    readonly generation: number;
    readonly loaded_at: string;
    /** The last reload that was rejected (the registry before it keeps serving); problems for admins only. */
    readonly last_error: { readonly at: string; readonly problems?: readonly string[] } | null;
  };
  readonly backends: readonly StatusBackend[];
  /** Aggregate names shortened to fit 64 characters. */
  readonly renamed: readonly { readonly from: string; readonly to: string }[];
  readonly sessions?: { readonly legacy: number; readonly modern_requests: number };
  readonly recent?: {
    readonly errors: readonly StatusEvent[];
    readonly denials: readonly StatusEvent[];
    readonly consent_requests: readonly StatusEvent[];
  };
  /** The viewer's own connections to third-party services. */
  readonly connections?: readonly {
    readonly service: string;
    readonly scope: string;
    readonly expires_at: string | null;
  }[];
}

const iso = (epochMs: number) => new Date(epochMs).toISOString();

/** The status as `viewer` may see it: admins everything, users their backends and their own events. */
export async function statusReport(sources: StatusSources, viewer: StatusViewer): Promise<StatusReport> {
  const now = sources.now?.() ?? Date.now();
  const snapshot = sources.holder.current();
  const registry = snapshot.registry;
  const admin = viewer.kind === "user" && viewer.admin;
  const policy = policyOf(registry);
  const mayUse = (backend: string) =>
    viewer.kind === "anonymous" || admin || policy.usesBackend(viewer.subject, backend);
  const toolCounts = sources.front.toolCounts();
  const backends = (await sources.pool.status())
    .filter((backend) => Object.hasOwn(registry.backends, backend.name) && mayUse(backend.name))
    .map((backend): StatusBackend => ({
      name: backend.name,
      transport: backend.transport,
      state: backend.state,
      tools: toolCounts.get(backend.name) ?? null,
      latency_ms: backend.latencyMs ?? null,
      processes: backend.processes,
      ...(admin
        ? {
          last_error: backend.lastError ?? null,
          restarts: backend.restarts,
          refused_requests: backend.refused,
        }
        : {}),
    }));
  const visible = new Set(backends.map((backend) => backend.name));
  const failure = sources.holder.lastFailure();
  const userId = viewer.kind === "user" ? viewer.subject.id : undefined;
  // An event about a third-party service names the backends that need it, those this viewer may use.
  const backendOf = (event: RecentEvent): string | null => {
    if (event.backend !== undefined) return event.backend;
    const service = event.service;
    if (service === undefined) return null;
    const names = Object.values(registry.backends)
      .filter((backend) => backend.services.includes(service) && mayUse(backend.name))
      .map((backend) => backend.name);
    return names.length > 0 ? names.join(", ") : null;
  };
  const events = (list: RecentEvent[]): StatusEvent[] =>
    list.filter((event) => admin || (userId !== undefined && event.user === userId))
      .slice(0, 20)
      .map((event) => ({
        at: iso(event.at),
        user: event.user ?? null,
        backend: backendOf(event),
        message: event.message,
      }));
  const stats = sources.front.stats();
  return {
    version: VERSION,
    started_at: iso(sources.startedAt),
    uptime_seconds: Math.max(0, Math.floor((now - sources.startedAt) / 1000)),
    viewer: { user: viewer.kind === "user" ? viewer.name : null, admin },
    registry: {
      generation: snapshot.generation,
      loaded_at: iso(snapshot.loadedAt),
      last_error: failure
        ? { at: iso(failure.at), ...(admin ? { problems: failure.problems.map(formatProblem) } : {}) }
        : null,
    },
    backends,
    renamed: [...sources.front.shortenedNames()]
      .filter(([from]) =>
        admin || [...visible].some((name) => from.startsWith(`${registry.backends[name]?.prefix}__`))
      )
      .map(([from, to]) => ({ from, to })),
    ...(admin || viewer.kind === "anonymous"
      ? { sessions: { legacy: stats.legacySessions, modern_requests: stats.modernRequests } }
      : {}),
    ...(viewer.kind === "user"
      ? {
        recent: {
          errors: events(sources.events.list("error")),
          denials: events(sources.events.list("denial")),
          consent_requests: events(sources.events.list("consent")),
        },
        connections: (sources.connections?.list(viewer.subject.id) ?? []).map((connection) => ({
          service: connection.service,
          scope: connection.scope,
          expires_at: connection.expiresAt === undefined ? null : iso(connection.expiresAt),
        })),
      }
      : {}),
  };
}
