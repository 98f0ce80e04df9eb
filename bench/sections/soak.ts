/**
 * The soak run (`--only soak`): several users with real access tokens send mixed traffic through a stdio,
 * a Streamable HTTP and a legacy SSE backend, in both protocol eras, opening and closing sessions; every
 * interval it prints requests, errors, latency and the gateway's RSS, open fds and child processes, and at
 * the end says whether those three stayed flat.
 */
import { Client, StreamableHTTPClientTransport } from "@modelcontextprotocol/client";
import { clientCredentialsToken } from "../clients.ts";
import { type GatewayUnderTest, startGatewayProcess } from "../gateway.ts";
import { HTTP_TIMEOUT_MS, median, percentile, sleep } from "../measure.ts";
import {
  descendantsOf,
  echoStdioCommand,
  freePort,
  openFileCount,
  residentMemory,
  ROOT,
  type RunningProcess,
  spawnProcess,
  waitForPort,
} from "../processes.ts";
import { megabytes, ms, newSection, printLine, type SectionResult, type Table } from "../report.ts";
import type { BenchSettings, SoakSettings } from "../settings.ts";

const EVERYTHING = "npm:@modelcontextprotocol/server-everything@2026.8.31";
/** server-everything is a test package: its lockfile is the tests' (serving's deno.lock never holds it). */
const TESTS_LOCK = `--lock=${ROOT}tests/deno.lock`;
const MB = 1024 * 1024;

/** Bound on one MCP request or token grant: a stuck gateway fails calls instead of stalling the run. */
const REQUEST_TIMEOUT_MS = 10_000;
/** A user asks for a new access token this often (the default lifetime is an hour). */
const TOKEN_RENEW_MS = 5 * 60_000;
/** Calls per session: the session is closed after a random number in this range (churn). */
const CALLS_PER_SESSION = { min: 3, max: 15 };
/** A worker pauses up to this long between calls, so the run is steady rather than flat out. */
const MAX_THINK_MS = 40;
/** One 2025-era session in this many is dropped without `DELETE`, as a client that crashed would. */
const ABANDON_ONE_IN = 20;
/** After a failed session a worker waits this long, so a broken gateway is not hammered in a loop. */
const AFTER_ERROR_MS = 200;
/** Hard bound on the operations of one worker per second of the run. */
const MAX_OPERATIONS_PER_SECOND = 2_000;
/**
 * 2025-era sessions per user. Dropped sessions stay open until they are evicted (least recently used
 * first) past this cap: a low cap reaches that steady state during the warm-up, and exercises eviction.
 */
const MAX_SESSIONS_PER_USER = 20;
/** Distinct error messages kept for the report. */
const KEPT_ERROR_KINDS = 20;

/** Flat means the last third's median is at most this much above the first third's (after warm-up). */
const TOLERANCE = {
  rss: { ratio: 0.10, absolute: 10 * MB, text: "+10% or +10 MB, whichever is larger" },
  fds: { ratio: 0.10, absolute: 8, text: "+10% or +8, whichever is larger" },
  children: { ratio: 0, absolute: 1, text: "+1" },
} as const;

type Era = "legacy" | "modern";

/** A backend of the soak registry: its gateway name and the arguments of its `echo` tool. */
interface SoakBackend {
  readonly name: string;
  readonly echoArguments: (text: string) => Record<string, string>;
}

const EVERYTHING_ECHO = (text: string) => ({ message: text });
const STDIO: SoakBackend = { name: "stdio", echoArguments: EVERYTHING_ECHO };
const HTTP: SoakBackend = { name: "http", echoArguments: EVERYTHING_ECHO };
const SSE: SoakBackend = { name: "sse", echoArguments: EVERYTHING_ECHO };
/** A process per 2025-era session (`isolation: session`): churns child processes. One user only. */
const STDIO_SESSION: SoakBackend = { name: "stdio-session", echoArguments: (text) => ({ text }) };
const SHARED_BACKENDS = [STDIO, HTTP, SSE] as const;

/** The user allowed on `stdio-session`. */
const SESSION_USER = "soak-1";

interface Sample {
  readonly at_seconds: number;
  readonly requests: number;
  readonly errors: number;
  readonly p50_ms: number;
  readonly p99_ms: number;
  readonly rss_bytes: number;
  readonly open_fds: number;
  readonly children: number;
  /** The gateway's own count of open 2025-era sessions, from /metrics. */
  readonly sessions: number | null;
}

/** What the workers count during one interval; swapped out at every sample. */
class Interval {
  requests = 0;
  errors = 0;
  readonly callLatenciesMs: number[] = [];
}

class Counters {
  interval = new Interval();
  totalRequests = 0;
  totalErrors = 0;
  sessionsOpened = { legacy: 0, modern: 0 };
  sessionsDeleted = 0;
  sessionsAbandoned = 0;
  tokenGrants = 0;
  readonly errorKinds = new Map<string, number>();

  request(): void {
    this.interval.requests++;
    this.totalRequests++;
  }

  call(latencyMs: number): void {
    this.request();
    this.interval.callLatenciesMs.push(latencyMs);
  }

  error(error: unknown): void {
    this.interval.errors++;
    this.totalErrors++;
    // Ids and numbers vary from one error to the next: group by the message's shape.
    const kind = (error instanceof Error ? error.message : String(error)).slice(0, 160).replace(/\d+/g, "N");
    if (this.errorKinds.has(kind) || this.errorKinds.size < KEPT_ERROR_KINDS) {
      this.errorKinds.set(kind, (this.errorKinds.get(kind) ?? 0) + 1);
    }
  }

  take(): Interval {
    const interval = this.interval;
    this.interval = new Interval();
    return interval;
  }
}

export async function soak(settings: BenchSettings): Promise<SectionResult> {
  const options = settings.soak;
  const section = newSection("soak", "Soak: mixed traffic over time, gateway memory, fds and children");
  const backends: RunningProcess[] = [];
  let gateway: GatewayUnderTest | undefined;
  try {
    const http = await startEverything("streamableHttp", settings.startTimeoutMs);
    backends.push(http.process);
    const sse = await startEverything("sse", settings.startTimeoutMs);
    backends.push(sse.process);
    const users = Array.from({ length: options.users }, (_, index) => ({
      id: `soak-${index + 1}`,
      secret: `soak-secret-${index + 1}-${crypto.randomUUID()}`,
    }));
    gateway = await startGatewayProcess(soakRegistry(users, http.url, sse.url), settings.startTimeoutMs);
    const pid = gateway.process!.pid;
    const baseUrl = gateway.url;

    printLine(
      `soak: ${options.users} users x ${options.workersPerUser} workers for ` +
        `${(options.durationMs / 60_000).toFixed(1)} min, a sample every ${
          options.sampleIntervalMs / 1000
        } s ` +
        `(gateway pid ${pid})`,
    );
    printLine(sampleHeader());

    const counters = new Counters();
    const started = performance.now();
    const deadline = started + options.durationMs;
    const stop = new AbortController();
    const workers = users.flatMap((user) =>
      Array.from({ length: options.workersPerUser }, (_, index) =>
        runWorker({
          baseUrl,
          user,
          tokens: tokenCache(baseUrl, user, counters),
          firstEra: index % 2 === 0 ? "legacy" : "modern",
          deadline,
          maxOperations: Math.ceil(options.durationMs / 1000) * MAX_OPERATIONS_PER_SECOND,
          counters,
          signal: stop.signal,
        }))
    );
    const samples: Sample[] = [];
    try {
      await sampleUntil(options, started, pid, baseUrl, counters, samples, gateway.process!);
    } finally {
      stop.abort();
      await Promise.all(workers);
    }

    report(section, options, samples, counters);
  } finally {
    await gateway?.stop();
    await Promise.all(backends.map((process) => process.stop()));
  }
  return section;
}

/** Every interval until the end: a sample, printed at once. Fails when the gateway exits. */
async function sampleUntil(
  options: SoakSettings,
  started: number,
  pid: number,
  baseUrl: string,
  counters: Counters,
  samples: Sample[],
  gatewayProcess: RunningProcess,
): Promise<void> {
  const count = Math.max(1, Math.floor(options.durationMs / options.sampleIntervalMs));
  for (let index = 1; index <= count; index++) {
    const dueAt = started + index * options.sampleIntervalMs;
    while (performance.now() < dueAt) {
      if (gatewayProcess.exited()) {
        throw new Error(`the gateway exited during the soak: ${gatewayProcess.recentOutput().slice(-1_000)}`);
      }
      await sleep(Math.min(1_000, dueAt - performance.now()));
    }
    const interval = counters.take();
    const latencies = interval.callLatenciesMs.sort((a, b) => a - b);
    const sample: Sample = {
      at_seconds: Math.round((performance.now() - started) / 1000),
      requests: interval.requests,
      errors: interval.errors,
      p50_ms: percentile(latencies, 50),
      p99_ms: percentile(latencies, 99),
      rss_bytes: (await residentMemory(pid)).rssBytes,
      open_fds: openFileCount(pid),
      children: descendantsOf(pid).length,
      sessions: await legacySessions(baseUrl),
    };
    samples.push(sample);
    printLine(sampleRow(sample).join("  "));
  }
}

const SAMPLE_COLUMNS = [
  "time",
  "requests",
  "errors",
  "p50 ms",
  "p99 ms",
  "RSS MB",
  "fds",
  "children",
  "sessions",
];

function sampleHeader(): string {
  return SAMPLE_COLUMNS.join("  ");
}

function sampleRow(sample: Sample): string[] {
  return [
    clock(sample.at_seconds),
    String(sample.requests),
    String(sample.errors),
    ms(sample.p50_ms),
    ms(sample.p99_ms),
    megabytes(sample.rss_bytes),
    String(sample.open_fds),
    String(sample.children),
    sample.sessions === null ? "-" : String(sample.sessions),
  ];
}

/** `12:30` (minutes and seconds since the start). */
function clock(seconds: number): string {
  return `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, "0")}`;
}

interface Flatness {
  readonly metric: string;
  readonly first: number;
  readonly last: number;
  readonly allowed: number;
  readonly tolerance: string;
  /** null when there were too few samples after the warm-up to tell. */
  readonly flat: boolean | null;
}

/**
 * Compares the median of the last third of the samples after the warm-up (the first sixth, at least one
 * sample: 5 minutes of 30) with that of the first third.
 */
function flatness(
  metric: string,
  values: readonly number[],
  tolerance: { ratio: number; absolute: number; text: string },
): Flatness {
  const warmup = Math.max(1, Math.ceil(values.length / 6));
  const measured = values.slice(warmup);
  const third = Math.floor(measured.length / 3);
  if (third < 1) {
    return { metric, first: NaN, last: NaN, allowed: NaN, tolerance: tolerance.text, flat: null };
  }
  const first = median(measured.slice(0, third));
  const last = median(measured.slice(-third));
  const allowed = Math.max(first * tolerance.ratio, tolerance.absolute);
  return { metric, first, last, allowed, tolerance: tolerance.text, flat: last - first <= allowed };
}

function report(section: SectionResult, options: SoakSettings, samples: Sample[], counters: Counters): void {
  // About six rows, evenly spaced, always with the last sample.
  const step = Math.max(1, Math.round(samples.length / 6));
  const shown = samples.filter((_, index) => (index + 1) % step === 0 || index === samples.length - 1);
  section.tables.push({
    title: `samples (each covers the ${options.sampleIntervalMs / 1000} s before it)`,
    columns: SAMPLE_COLUMNS,
    rows: shown.map(sampleRow),
  });

  const verdicts = [
    flatness("RSS", samples.map((sample) => sample.rss_bytes), TOLERANCE.rss),
    flatness("open fds", samples.map((sample) => sample.open_fds), TOLERANCE.fds),
    flatness("child processes", samples.map((sample) => sample.children), TOLERANCE.children),
  ];
  const show = (verdict: Flatness, value: number) =>
    verdict.metric === "RSS" ? `${megabytes(value)} MB` : Number.isFinite(value) ? value.toFixed(1) : "-";
  const flatTable: Table = {
    title: "flat? median of the first third after warm-up against the last third",
    columns: ["measure", "first third", "last third", "change", "allowed", "flat"],
    rows: verdicts.map((verdict) => [
      verdict.metric,
      show(verdict, verdict.first),
      show(verdict, verdict.last),
      `${verdict.last >= verdict.first ? "+" : "-"}${show(verdict, Math.abs(verdict.last - verdict.first))}`,
      show(verdict, verdict.allowed),
      verdict.flat === null ? "too short" : verdict.flat ? "yes" : "NO",
    ]),
  };
  section.tables.push(flatTable);

  const callLatencies = samples.map((sample) => sample.p50_ms).filter(Number.isFinite);
  const opened = counters.sessionsOpened;
  section.notes.push(
    `${counters.totalRequests} requests (token grants, connects, lists, calls, session deletes), ` +
      `${counters.totalErrors} errors (${
        (100 * counters.totalErrors / Math.max(1, counters.totalRequests))
          .toFixed(3)
      }%)`,
    `sessions opened: ${opened.legacy} 2025-11-25, ${opened.modern} 2026-07-28; ` +
      `${counters.sessionsDeleted} closed with DELETE, ${counters.sessionsAbandoned} dropped without; ` +
      `${counters.tokenGrants} token grants`,
    `p50 and p99 are of tools/call; the median of the per-sample p50 was ${ms(median(callLatencies))} ms`,
    `warm-up: the first sixth of the samples (at least one) is left out of the flatness check`,
  );
  for (const [kind, count] of [...counters.errorKinds].sort((a, b) => b[1] - a[1]).slice(0, 5)) {
    section.notes.push(`error x${count}: ${kind}`);
  }
  for (const verdict of verdicts) {
    section.targets.push({
      name: `soak ${verdict.metric} flat`,
      measured: `${show(verdict, verdict.first)} -> ${show(verdict, verdict.last)}`,
      target: verdict.tolerance,
      met: verdict.flat,
    });
  }
  section.targets.push({
    name: "soak errors",
    measured: `${counters.totalErrors} of ${counters.totalRequests}`,
    target: "0",
    met: counters.totalErrors === 0,
  });
  Object.assign(section.data, {
    duration_ms: options.durationMs,
    sample_interval_ms: options.sampleIntervalMs,
    users: options.users,
    workers_per_user: options.workersPerUser,
    requests: counters.totalRequests,
    errors: counters.totalErrors,
    error_kinds: Object.fromEntries(counters.errorKinds),
    sessions_opened: opened,
    sessions_deleted: counters.sessionsDeleted,
    sessions_abandoned: counters.sessionsAbandoned,
    token_grants: counters.tokenGrants,
    samples,
    flat: Object.fromEntries(verdicts.map((verdict) => [verdict.metric, verdict])),
  });
}

/** A registry with `auth: oauth`, a `client_credentials` client per user and the four backends. */
function soakRegistry(
  users: readonly { id: string; secret: string }[],
  httpUrl: string,
  sseUrl: string,
): Record<string, unknown> {
  const echo = echoStdioCommand();
  return {
    gateway: {
      auth: "oauth",
      listen: "127.0.0.1:0",
      shutdown_timeout: "1s",
      registration: "off",
      max_sessions_per_user: MAX_SESSIONS_PER_USER,
    },
    clients: Object.fromEntries(
      users.map((user) => [user.id, { secret: user.secret, grant_types: ["client_credentials"] }]),
    ),
    backends: {
      // One process per user: as many children as users, for the whole run.
      [STDIO.name]: {
        stdio: { command: Deno.execPath(), args: ["run", "-A", TESTS_LOCK, EVERYTHING, "stdio"] },
        isolation: "user",
      },
      [STDIO_SESSION.name]: { stdio: echo, isolation: "session" },
      [HTTP.name]: { http: { url: httpUrl } },
      [SSE.name]: { sse: { url: sseUrl } },
    },
    policies: [
      {
        id: "soak-everyone",
        effect: "allow",
        subjects: ["*"],
        backends: SHARED_BACKENDS.map((backend) => backend.name),
      },
      {
        id: "soak-session-user",
        effect: "allow",
        subjects: [`user:${SESSION_USER}`],
        backends: [STDIO_SESSION.name],
      },
    ],
  };
}

/** server-everything over Streamable HTTP (`/mcp`) or legacy SSE (`/sse`) on a free port. */
async function startEverything(
  mode: "streamableHttp" | "sse",
  timeoutMs: number,
): Promise<{ url: string; process: RunningProcess }> {
  const port = freePort();
  const process = spawnProcess(
    `server-everything ${mode}`,
    Deno.execPath(),
    ["run", "-A", TESTS_LOCK, EVERYTHING, mode],
    {
      env: { PORT: String(port) },
    },
  );
  try {
    await waitForPort(port, process, timeoutMs);
  } catch (error) {
    await process.stop();
    throw error;
  }
  return { url: `http://127.0.0.1:${port}${mode === "sse" ? "/sse" : "/mcp"}`, process };
}

/** The gateway's gauge of open 2025-era sessions (/metrics is served to loopback). */
async function legacySessions(baseUrl: string): Promise<number | null> {
  try {
    const response = await fetch(`${baseUrl}/metrics`, { signal: AbortSignal.timeout(HTTP_TIMEOUT_MS) });
    const match = /^gatehouse_sessions\{era="legacy"\} (\d+)/m.exec(await response.text());
    return match ? Number(match[1]) : null;
  } catch {
    return null;
  }
}

type TokenFor = (resource: string) => Promise<string>;

/**
 * A user's access tokens, one per resource (`/mcp` or `/mcp/{backend}`), each asked for again after
 * `TOKEN_RENEW_MS` with `client_credentials` (RFC 6749 §4.4; `resource` is RFC 8707).
 */
function tokenCache(baseUrl: string, user: { id: string; secret: string }, counters: Counters): TokenFor {
  const tokens = new Map<string, { token: Promise<string>; obtainedAt: number }>();
  const grant = async (resource: string) => {
    counters.request();
    counters.tokenGrants++;
    return await clientCredentialsToken(baseUrl, user, resource);
  };
  return (resource) => {
    const cached = tokens.get(resource);
    if (cached && performance.now() - cached.obtainedAt < TOKEN_RENEW_MS) return cached.token;
    const token = grant(resource);
    tokens.set(resource, { token, obtainedAt: performance.now() });
    // A failed grant is not kept: the next session asks again.
    token.catch(() => tokens.delete(resource));
    return token;
  };
}

interface WorkerOptions {
  readonly baseUrl: string;
  readonly user: { readonly id: string };
  readonly tokens: TokenFor;
  readonly firstEra: Era;
  readonly deadline: number;
  readonly maxOperations: number;
  readonly counters: Counters;
  readonly signal: AbortSignal;
}

/** Opens a session, lists tools, calls `echo` a few times, closes it; again until the deadline. */
async function runWorker(options: WorkerOptions): Promise<void> {
  const { counters } = options;
  let era = options.firstEra;
  let operations = 0;
  const running = () =>
    !options.signal.aborted && performance.now() < options.deadline && operations < options.maxOperations;
  while (running()) {
    const target = pickTarget(options.user.id, era);
    try {
      operations += await oneSession(options, target, era, running);
    } catch (error) {
      operations++;
      if (options.signal.aborted) break; // the run ended under this session
      counters.error(error);
      await sleep(AFTER_ERROR_MS);
    }
    // Mostly alternate, sometimes not: both eras on every endpoint over time.
    if (Math.random() < 0.8) era = era === "legacy" ? "modern" : "legacy";
  }
}

interface Target {
  /** `/mcp` or `/mcp/{backend}` */
  readonly path: string;
  /** The backends whose `echo` this session calls (one, or any of the shared ones on `/mcp`). */
  readonly backends: readonly SoakBackend[];
  /** The tool name as this endpoint shows it. */
  readonly tool: (backend: SoakBackend) => string;
}

function pickTarget(user: string, era: Era): Target {
  const roll = Math.random();
  // The session-isolated backend starts a process per session: a 2025-era session of one user, now and then.
  if (user === SESSION_USER && era === "legacy" && roll < 0.1) return backendTarget(STDIO_SESSION);
  if (roll < 0.4) {
    return { path: "/mcp", backends: SHARED_BACKENDS, tool: (backend) => `${backend.name}__echo` };
  }
  return backendTarget(SHARED_BACKENDS[Math.floor(Math.random() * SHARED_BACKENDS.length)]!);
}

function backendTarget(backend: SoakBackend): Target {
  return { path: `/mcp/${backend.name}`, backends: [backend], tool: () => "echo" };
}

/** One session from connect to close; returns how many operations it made. */
async function oneSession(
  options: WorkerOptions,
  target: Target,
  era: Era,
  running: () => boolean,
): Promise<number> {
  const { counters } = options;
  const resource = `${options.baseUrl}${target.path}`;
  const token = await options.tokens(resource);
  const transport = new StreamableHTTPClientTransport(new URL(resource), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client(
    { name: "gatehouse-soak", version: "1.0.0" },
    { capabilities: {}, ...(era === "modern" ? { versionNegotiation: { mode: "auto" as const } } : {}) },
  );
  let operations = 0;
  try {
    await client.connect(transport, { timeout: REQUEST_TIMEOUT_MS, signal: options.signal });
    counters.request();
    operations++;
    if (era === "legacy") counters.sessionsOpened.legacy++;
    else counters.sessionsOpened.modern++;
    if (client.getProtocolEra() !== era) {
      throw new Error(`Expected a ${era} session, the client negotiated ${client.getProtocolEra()}`);
    }

    const listed = await client.listTools(undefined, { timeout: REQUEST_TIMEOUT_MS, signal: options.signal });
    counters.request();
    operations++;
    const names = new Set(listed.tools.map((tool) => tool.name));
    for (const backend of target.backends) {
      if (!names.has(target.tool(backend))) {
        throw new Error(`${target.path} does not list ${target.tool(backend)}`);
      }
    }

    const calls = CALLS_PER_SESSION.min +
      Math.floor(Math.random() * (CALLS_PER_SESSION.max - CALLS_PER_SESSION.min + 1));
    for (let index = 0; index < calls && running(); index++) {
      const backend = target.backends[Math.floor(Math.random() * target.backends.length)]!;
      const text = `soak ${options.user.id} ${index}`;
      const before = performance.now();
      const result = await client.callTool(
        { name: target.tool(backend), arguments: backend.echoArguments(text) },
        { timeout: REQUEST_TIMEOUT_MS, signal: options.signal },
      );
      const latencyMs = performance.now() - before;
      operations++;
      const answer = JSON.stringify(result.content);
      if (result.isError || !answer.includes(text)) {
        throw new Error(`${target.path} ${target.tool(backend)} answered ${answer.slice(0, 200)}`);
      }
      counters.call(latencyMs);
      await sleep(Math.random() * MAX_THINK_MS);
    }

    if (era === "legacy") {
      // Never by the user of `stdio-session` (on its own endpoint or on /mcp, whose lists start it too): its
      // dropped sessions would hold processes until evicted, and the child count would wander with chance
      // instead of showing a leak.
      if (options.user.id !== SESSION_USER && Math.random() * ABANDON_ONE_IN < 1) {
        counters.sessionsAbandoned++;
      } else {
        await transport.terminateSession();
        counters.request();
        operations++;
        counters.sessionsDeleted++;
      }
    }
  } finally {
    await client.close().catch(() => {});
  }
  return operations;
}
