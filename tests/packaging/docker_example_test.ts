/**
 * The Docker example (examples/docker) works with the image as built: its registry is valid in a container
 * and needs no command the image lacks, its backends are services of its compose file.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { parse } from "yaml";
import { ROOT, runGatehouse } from "../helpers/gatehouse_process.ts";

const EXAMPLE = join(ROOT, "examples", "docker");

interface Registry {
  gateway?: { auth?: string; public_url?: string };
  backends?: Record<string, { stdio?: unknown; http?: { url: string }; sse?: { url: string } }>;
}

interface Compose {
  services: Record<string, { volumes?: string[] }>;
}

async function readYaml<T>(path: string): Promise<T> {
  return parse(await Deno.readTextFile(join(EXAMPLE, path))) as T;
}

Deno.test("the Docker example's registry passes check and turns sign-in on, as the image's 0.0.0.0 listener needs", async () => {
  const { code, stdout, stderr } = await runGatehouse(["check", "config/registry.yaml"], { cwd: EXAMPLE });
  assert.equal(code, 0, `${stdout}\n${stderr}`);
  // The image listens on 0.0.0.0, where `auth: none` is refused at start.
  const registry = await readYaml<Registry>("config/registry.yaml");
  assert.equal(registry.gateway?.auth, "oauth");
  assert.ok(registry.gateway?.public_url, "no public_url: tokens would name http://0.0.0.0:8740");
});

Deno.test("the Docker example's backends are compose services, none a stdio command the image lacks", async () => {
  const registry = await readYaml<Registry>("config/registry.yaml");
  const compose = await readYaml<Compose>("compose.yaml");
  const backends = Object.entries(registry.backends ?? {});
  assert.ok(backends.length > 0, "the example has no backend");
  for (const [name, backend] of backends) {
    assert.equal(backend.stdio, undefined, `backend ${name} runs a command inside the gatehouse image`);
    const url = new URL(backend.http?.url ?? backend.sse?.url ?? "");
    assert.ok(
      url.hostname in compose.services,
      `backend ${name} names ${url.hostname}, not a compose service`,
    );
  }
  assert.ok(compose.services.gatehouse?.volumes?.includes("./config:/config:ro"));
});
