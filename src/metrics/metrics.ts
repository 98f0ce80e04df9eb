/**
 * The gateway's metrics, in the Prometheus text exposition format (version 0.0.4): counters, one latency
 * histogram, and gauges read when scraped.
 */
type Labels = Record<string, string>;

/** Prometheus label values escape backslash, double quote and newline. */
function escapeLabel(value: string): string {
  return value.replaceAll("\\", "\\\\").replaceAll('"', '\\"').replaceAll("\n", "\\n");
}

function labelText(labels: Labels): string {
  const entries = Object.entries(labels);
  if (entries.length === 0) return "";
  return `{${entries.map(([name, value]) => `${name}="${escapeLabel(value)}"`).join(",")}}`;
}

const keyOf = (labels: Labels) => JSON.stringify(Object.entries(labels));

class Counter {
  readonly values = new Map<string, { labels: Labels; value: number }>();

  constructor(readonly name: string, readonly help: string) {}

  inc(labels: Labels = {}, by = 1): void {
    const key = keyOf(labels);
    const entry = this.values.get(key);
    if (entry) entry.value += by;
    else this.values.set(key, { labels, value: by });
  }

  render(): string[] {
    return [
      `# HELP ${this.name} ${this.help}`,
      `# TYPE ${this.name} counter`,
      ...[...this.values.values()].map(({ labels, value }) => `${this.name}${labelText(labels)} ${value}`),
    ];
  }
}

/** Request latency buckets, in seconds: from a fast local call to a slow tool. */
const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

class Histogram {
  readonly values = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(readonly name: string, readonly help: string, readonly buckets: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const key = keyOf(labels);
    let entry = this.values.get(key);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.values.set(key, entry);
    }
    for (let index = 0; index < this.buckets.length; index++) {
      if (value <= this.buckets[index]!) entry.counts[index]! += 1;
    }
    entry.sum += value;
    entry.count += 1;
  }

  render(): string[] {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, counts, sum, count } of this.values.values()) {
      this.buckets.forEach((bound, index) => {
        lines.push(`${this.name}_bucket${labelText({ ...labels, le: String(bound) })} ${counts[index]}`);
      });
      lines.push(`${this.name}_bucket${labelText({ ...labels, le: "+Inf" })} ${count}`);
      lines.push(`${this.name}_sum${labelText(labels)} ${sum}`);
      lines.push(`${this.name}_count${labelText(labels)} ${count}`);
    }
    return lines;
  }
}

/** A gauge whose samples are read when scraped. */
interface Gauge {
  readonly name: string;
  readonly help: string;
  read(): Promise<{ labels: Labels; value: number }[]> | { labels: Labels; value: number }[];
}

export class Metrics {
  readonly requests = new Counter(
    "gatehouse_mcp_requests_total",
    "MCP requests relayed to backends, by backend, method and outcome (ok or error).",
  );
  readonly latency = new Histogram(
    "gatehouse_mcp_request_duration_seconds",
    "Time to a backend's answer, by backend and method.",
    LATENCY_BUCKETS,
  );
  readonly authFailures = new Counter(
    "gatehouse_auth_failures_total",
    "Requests to /mcp refused for a missing or invalid access token.",
  );
  readonly denials = new Counter("gatehouse_policy_denials_total", "Calls refused by the access policies.");
  readonly rateLimited = new Counter("gatehouse_rate_limited_total", "Requests refused by a rate limit.");
  readonly tokenRefreshes = new Counter(
    "gatehouse_service_token_refreshes_total",
    "Refreshes of users' third-party tokens, by service and outcome.",
  );
  readonly reloads = new Counter(
    "gatehouse_registry_reloads_total",
    "Registry reloads, by outcome (applied or rejected).",
  );
  readonly restarts = new Counter(
    "gatehouse_backend_restarts_total",
    "Backend restarts, by backend: stdio processes that died, and HTTP sessions started anew.",
  );
  readonly timeouts = new Counter(
    "gatehouse_backend_timeouts_total",
    "Backend calls not answered within the backend's timeout, by backend and method.",
  );
  readonly connectionsCut = new Counter(
    "gatehouse_connections_cut_total",
    "Client connections refused or cut, by reason (total, per_address, header_timeout, body_timeout).",
  );
  readonly #gauges: Gauge[] = [];

  gauge(name: string, help: string, read: Gauge["read"]): void {
    this.#gauges.push({ name, help, read });
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    for (const counter of [this.requests, this.authFailures, this.denials, this.rateLimited]) {
      lines.push(...counter.render());
    }
    lines.push(...this.latency.render());
    for (
      const counter of [this.tokenRefreshes, this.reloads, this.restarts, this.timeouts, this.connectionsCut]
    ) {
      lines.push(...counter.render());
    }
    for (const gauge of this.#gauges) {
      lines.push(`# HELP ${gauge.name} ${gauge.help}`, `# TYPE ${gauge.name} gauge`);
      for (const { labels, value } of await gauge.read()) {
        lines.push(`${gauge.name}${labelText(labels)} ${value}`);
      }
    }
    return `${lines.join("\n")}\n`;
  }
}
