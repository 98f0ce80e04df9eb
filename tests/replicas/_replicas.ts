/**
 * Gateway replicas for the tests: real `gatehouse serve` processes, each with its own directory (registry
 * and data_dir), all on one store (`gateway.store`, a PostgreSQL URL) with the same `public_url` (the
 * issuer, as behind a load balancer) and the same `vault_key`. Not a test file itself.
 */
import { join } from "node:path";
import { type GatehouseProcess, startGatehouse } from "../helpers/gatehouse_process.ts";
import { freePort } from "../helpers/mcp_clients.ts";

/** The one vault key every replica shares (32 bytes, hex): it seals the shared signing keys. */
export const VAULT_KEY = "7f0c1e5a9b3d2c4e6f8a0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e";

export interface Replicas {
  readonly processes: readonly GatehouseProcess[];
  /** `http://127.0.0.1:PORT` of each replica, in start order. */
  readonly urls: readonly string[];
  /** The issuer they share (the address a load balancer would have; nothing needs to listen there). */
  readonly publicUrl: string;
  /** Stops every replica still running (SIGKILL: their state is in the store) and removes their directories. */
  stop(): Promise<void>;
}

/**
 * Starts `count` replicas of `registry` (its `gateway` merged with the shared settings) on `storeUrl`,
 * together, as a deployment's replicas start: the first start's key and migrations are raced for.
 */
export async function startReplicas(
  count: number,
  storeUrl: string,
  registry: Record<string, unknown>,
): Promise<Replicas> {
  const publicUrl = `http://127.0.0.1:${freePort()}`;
  const gateway = registry.gateway as Record<string, unknown> | undefined;
  const text = JSON.stringify({
    ...registry,
    gateway: {
      shutdown_timeout: "1s",
      ...gateway,
      public_url: publicUrl,
      store: storeUrl,
      vault_key: VAULT_KEY,
    },
  });
  const dirs: string[] = [];
  const started: GatehouseProcess[] = [];
  const stop = async () => {
    await Promise.all(started.map((process) => process.stop("SIGKILL")));
    await Promise.all(dirs.map((dir) => Deno.remove(dir, { recursive: true })));
  };
  try {
    for (let index = 0; index < count; index++) {
      const dir = await Deno.makeTempDir({ prefix: `gatehouse-replica-${index}-` });
      dirs.push(dir);
      // JSON is YAML.
      await Deno.writeTextFile(join(dir, "registry.yaml"), text);
    }
    const outcomes = await Promise.allSettled(
      dirs.map((dir) =>
        startGatehouse(["--listen", "127.0.0.1:0", "--data", join(dir, "data")], { cwd: dir })
      ),
    );
    for (const outcome of outcomes) if (outcome.status === "fulfilled") started.push(outcome.value);
    const failed = outcomes.find((outcome) => outcome.status === "rejected");
    if (failed) throw failed.reason;
  } catch (error) {
    await stop();
    throw error;
  }
  return { processes: started, urls: started.map((process) => process.url), publicUrl, stop };
}
