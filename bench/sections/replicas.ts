/**
 * Product §10: two replicas on one PostgreSQL store against one. The same `tools/call` load as the HTTP
 * benchmark (an echo tool on a Streamable HTTP backend, a real access token on every request), at
 * concurrency 16, sent all to one replica, then split round-robin by the load generator across two: each
 * new worker (client and session) goes to the next replica. The store is a fresh database on a PostgreSQL
 * server the run starts itself (Debian's package, as the tests do: tests/helpers/postgres.ts).
 */
import { freshDatabase } from "../../tests/helpers/postgres.ts";
import { clientCredentialsToken, httpWorker } from "../clients.ts";
import { type GatewayUnderTest, startGatewayProcess } from "../gateway.ts";
import { freePort, type HttpFixture, startEchoHttp } from "../processes.ts";
import { ms, newSection, perSecond, type SectionResult } from "../report.ts";
import type { BenchSettings } from "../settings.ts";
import { type LoadTarget, resultOf, runSideBySide } from "../side_by_side.ts";

const ONE = "1 replica";
const TWO = "2 replicas (round-robin)";
/** One worker would use one replica only: the split is measured with many. */
const CONCURRENCY = 16;
/**
 * Not a number of the product's. On one machine both replicas share its CPUs with the load generator, the
 * backend and PostgreSQL, so a second replica cannot add much; it must at least cost nothing (nothing on
 * the call path waits for the other replica or the shared store), within a run's noise.
 */
const TARGET_RATIO = 0.9;

const BENCH_CLIENT = { id: "bench", secret: "bench-client-secret-0123456789abcdef" };
/** The vault key both replicas share (it seals the signing key they share). */
const VAULT_KEY = "0b8e1f2a3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7";

/** A replica's registry: sign-in on, the shared store and issuer, one HTTP backend. */
function replicaRegistry(storeUrl: string, publicUrl: string, backendUrl: string): Record<string, unknown> {
  return {
    gateway: {
      auth: "oauth",
      listen: "127.0.0.1:0",
      shutdown_timeout: "1s",
      registration: "off",
      public_url: publicUrl,
      store: storeUrl,
      vault_key: VAULT_KEY,
    },
    clients: { [BENCH_CLIENT.id]: { secret: BENCH_CLIENT.secret, grant_types: ["client_credentials"] } },
    backends: { echo: { http: { url: backendUrl } } },
    policies: [{ id: "bench-allow-everyone", effect: "allow", subjects: ["*"], backends: ["*"] }],
  };
}

export async function replicas(settings: BenchSettings): Promise<SectionResult> {
  const section = newSection("replicas", "Replicas: 2 on one PostgreSQL store vs 1");
  let backend: HttpFixture | undefined;
  const gateways: GatewayUnderTest[] = [];
  try {
    const storeUrl = await freshDatabase();
    backend = await startEchoHttp(settings.startTimeoutMs);
    // The address of the load balancer the replicas would sit behind: their shared issuer. Nothing listens
    // there; the load generator is the balancer.
    const publicUrl = `http://127.0.0.1:${freePort()}`;
    const registry = replicaRegistry(storeUrl, publicUrl, backend.url);
    // One after the other, as the bench measures no start-up here; the second finds the key the first made.
    gateways.push(await startGatewayProcess(registry, settings.startTimeoutMs));
    gateways.push(await startGatewayProcess(registry, settings.startTimeoutMs));
    const [first, second] = gateways as [GatewayUnderTest, GatewayUnderTest];
    const roundRobin = [first, second];
    const token = await clientCredentialsToken(first.url, BENCH_CLIENT, `${publicUrl}/mcp/echo`);
    const headers = { authorization: `Bearer ${token}` };
    let next = 0;
    const targets: LoadTarget[] = [
      { label: ONE, connect: () => httpWorker(`${first.url}/mcp/echo`, "echo", headers) },
      {
        label: TWO,
        connect: () => httpWorker(`${roundRobin[next++ % 2]!.url}/mcp/echo`, "echo", headers),
      },
    ];
    const outcomes = await runSideBySide(targets, { ...settings, concurrency: [CONCURRENCY] });
    const rows: string[][] = [];
    const data: Record<string, unknown> = {};
    for (const { label } of targets) {
      const outcome = outcomes.get(CONCURRENCY)?.get(label);
      if (!outcome || "error" in outcome) {
        rows.push([label, outcome?.error ?? "not run"]);
        data[label] = { error: outcome?.error ?? "not run" };
        continue;
      }
      const { result } = outcome;
      rows.push([
        label,
        String(result.calls),
        String(result.errors),
        ms(result.p50Ms),
        ms(result.p99Ms),
        perSecond(result.throughputPerSecond),
      ]);
      data[label] = {
        calls: result.calls,
        errors: result.errors,
        p50_ms: result.p50Ms,
        p99_ms: result.p99Ms,
        throughput_per_second: result.throughputPerSecond,
        ...(result.firstError !== undefined ? { first_error: result.firstError } : {}),
      };
    }
    const one = resultOf(outcomes, CONCURRENCY, ONE);
    const two = resultOf(outcomes, CONCURRENCY, TWO);
    const ratio = one && two ? two.throughputPerSecond / one.throughputPerSecond : undefined;
    section.tables.push({
      title: `concurrency ${CONCURRENCY}`,
      columns: ["target", "calls", "errors", "p50 ms", "p99 ms", "calls/s"],
      rows,
    });
    section.data.concurrency_16 = data;
    section.data.ratio_2_vs_1 = ratio ?? null;
    section.targets.push({
      name: `2 replicas vs 1, calls/s (c=${CONCURRENCY})`,
      measured: ratio !== undefined ? `${ratio.toFixed(2)}×` : "-",
      target: `≥ ${TARGET_RATIO.toFixed(1)}×`,
      met: ratio !== undefined ? ratio >= TARGET_RATIO : null,
    });
    section.notes.push(
      "both replicas are `main.ts serve` processes (the flags of `deno task start`) with `gateway.store` " +
        "naming one fresh PostgreSQL database, the same public_url and vault_key, and the same Streamable " +
        "HTTP echo backend; every request carries one access token (client_credentials, audience " +
        "{public_url}/mcp/echo) issued by the first replica. The load generator is the balancer: each new " +
        `worker (one SDK v2 client and its session) goes to the next replica. The runs alternate ` +
        `${settings.rounds} time(s) and are pooled; the load generator, both replicas, the backend and ` +
        "PostgreSQL share this machine's CPUs.",
    );
  } finally {
    await Promise.all(gateways.map((gateway) => gateway.stop()));
    await backend?.process.stop();
  }
  return section;
}
