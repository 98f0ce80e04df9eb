/**
 * A reload on one replica reaches the others (issue 17): a SIGHUP to replica A makes A reload, A announces it
 * through PostgreSQL, and B reads its own registry again, without an echo back to A. Real processes.
 */
import assert from "node:assert/strict";
import { eventually } from "../helpers/gatehouse_process.ts";
import { freshDatabase } from "../helpers/postgres.ts";
import { startReplicas } from "./_replicas.ts";

async function generation(base: string): Promise<number> {
  const response = await fetch(`${base}/readyz`);
  const body = await response.json();
  return body.registry.generation;
}

Deno.test("a reload on one replica makes the others read their registry again, once", async () => {
  const replicas = await startReplicas(2, await freshDatabase(), {
    gateway: { auth: "oauth" },
    backends: {},
  });
  try {
    const [a, b] = replicas.urls;
    assert.equal(await generation(a!), 1);
    assert.equal(await generation(b!), 1);

    Deno.kill(replicas.processes[0]!.child.pid, "SIGHUP");
    await eventually(async () => await generation(a!) === 2, 5_000);
    await eventually(async () => await generation(b!) === 2, 5_000);
    await replicas.processes[1]!.waitForLine((line) =>
      line.includes("another replica reloaded its registry")
    );

    // B's reload followed A's: it is not announced again, so neither replica reloads a third time.
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    assert.equal(await generation(a!), 2);
    assert.equal(await generation(b!), 2);
  } finally {
    await replicas.stop();
  }
});
