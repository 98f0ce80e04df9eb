/**
 * `gatehouse doctor`'s checks: public URL, backends, stdio commands, services, login providers, data directory.
 */
import { isLoopbackHost } from "../config/schema.ts";
import { remoteOAuthOf } from "../config/types.ts";
import type {
  BackendSettings,
  GatewaySettings,
  LoginProvider,
  Registry,
  RemoteOAuthSettings,
  ServiceSettings,
} from "../config/types.ts";
import { urlOf } from "../http/server.ts";
import { GITHUB } from "../login/providers.ts";
import { checkStdioCommand } from "./command.ts";
import { describeRemoteOAuth } from "../services/remote_oauth.ts";
import { checkDataDir } from "./data_dir.ts";
import { checkPostgresStore } from "./store.ts";
import { type NetworkOptions, probeDiscovery, probeReachable, probeTokenEndpoint } from "./network.ts";
import type { CheckRow, Verdict } from "./verdict.ts";

export interface DoctorOptions {
  /** How network checks reach hosts; tests pass a fake. */
  fetch?: typeof fetch;
  /** The bound on each network check. */
  timeoutMs?: number;
  env?: (name: string) => string | undefined;
  /** What relative paths (a backend's `cwd`, a relative `command`) are resolved against. */
  cwd?: string;
}

export const DEFAULT_CHECK_TIMEOUT_MS = 5_000;

/**
 * Checks what `check` cannot see from the file alone: whether the deployment around a valid registry will
 * work. Network checks run at the same time, each within `timeoutMs`, so a hanging host costs at most that.
 * Rows come in registry order: public URL, backends, services, login providers, data directory, store.
 */
export async function runDoctorChecks(registry: Registry, options: DoctorOptions = {}): Promise<CheckRow[]> {
  const network: NetworkOptions = {
    fetch: options.fetch ?? fetch,
    timeoutMs: options.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS,
  };
  const local = {
    env: options.env ?? ((name: string) => Deno.env.get(name)),
    cwd: options.cwd ?? Deno.cwd(),
  };
  const row = async (check: string, target: string, verdict: Verdict | Promise<Verdict>) => [
    { check, target, ...await verdict },
  ];
  const pending: Promise<CheckRow[]>[] = [
    row("public_url", registry.gateway.publicUrl ?? "(unset)", checkPublicUrl(registry.gateway)),
    ...Object.values(registry.backends).map((backend) =>
      row(
        backend.transport.kind === "stdio" ? "command" : "backend",
        backend.name,
        checkBackend(backend, network, local, registry.gateway),
      )
    ),
    ...Object.values(registry.services).map((service) =>
      row("service", service.name, checkService(service, network))
    ),
    ...Object.values(registry.login.providers).map((provider) =>
      row("login_provider", provider.name, checkLoginProvider(provider, network))
    ),
    checkDataDir(registry.gateway.dataDir).then((rows) =>
      // On PostgreSQL there is no database file in the data directory: the store row says what there is.
      registry.gateway.store === undefined ? rows : rows.filter((row) => row.check !== "database")
    ),
    ...(registry.gateway.store === undefined
      ? []
      : [checkPostgresStore(registry.gateway.store, network.timeoutMs).then((row) => [row])]),
  ];
  return (await Promise.all(pending)).flat();
}

/**
 * `public_url` is the token issuer and the base of every link: off this machine it must be https, and a
 * gateway that others reach with sign-in on needs one (the listening address would be the issuer).
 */
export function checkPublicUrl(gateway: GatewaySettings): Verdict {
  const { publicUrl, listen, auth } = gateway;
  const listening = urlOf(listen.hostname, listen.port);
  if (publicUrl === undefined) {
    if (auth === "oauth" && !isLoopbackHost(listen.hostname)) {
      return {
        result: "FAIL",
        detail: `unset while listening on ${listen.hostname} with auth: oauth; tokens and links would name ` +
          `${listening}: set it to the https:// address clients use`,
      };
    }
    return { result: "ok", detail: `unset: ${listening} is used (this machine only)` };
  }
  const url = new URL(publicUrl);
  if (url.protocol === "https:") return { result: "ok", detail: "https" };
  if (isLoopbackHost(url.hostname.replace(/^\[(.*)\]$/, "$1"))) {
    return { result: "ok", detail: "plain http on a loopback host (this machine only)" };
  }
  return {
    result: "FAIL",
    detail:
      `plain http to ${url.hostname}: sign-ins, cookies and tokens would cross the network unencrypted; ` +
      "use https:// (a reverse proxy that terminates TLS)",
  };
}

function checkBackend(
  backend: BackendSettings,
  network: NetworkOptions,
  local: { env: (name: string) => string | undefined; cwd: string },
  gateway: GatewaySettings,
): Promise<Verdict> {
  const transport = backend.transport;
  if (transport.kind === "stdio") return checkStdioCommand(transport, local);
  const remote = remoteOAuthOf(backend);
  if (remote !== undefined) return checkRemoteOAuth({ name: backend.name, ...remote }, network, gateway);
  // Per-user values need a signed-in user; send only the headers that are the same for everyone.
  const headers: Record<string, string> = {};
  let skipped = 0;
  for (const [name, template] of Object.entries(transport.headers)) {
    if (template.perUser) skipped += 1;
    else headers[name] = template.render();
  }
  return probeReachable(transport.url, headers, network).then((verdict) =>
    skipped > 0 && verdict.result !== "FAIL"
      ? { ...verdict, detail: `${verdict.detail}; ${skipped} per-user header(s) not sent` }
      : verdict
  );
}

/**
 * An OAuth-protected backend: what its 401 and metadata say (resource, authorization server, how Gatehouse
 * registers), asked afresh; nothing is registered.
 */
async function checkRemoteOAuth(
  backend: { readonly name: string; readonly url: string; readonly oauth: RemoteOAuthSettings },
  network: NetworkOptions,
  gateway: GatewaySettings,
): Promise<Verdict> {
  const { facts, failure } = await describeRemoteOAuth(backend, {
    baseUrl: () => gateway.publicUrl ?? urlOf(gateway.listen.hostname, gateway.listen.port),
    fetch: network.fetch,
    timeoutMs: network.timeoutMs,
  });
  if (failure !== undefined) {
    return { result: "FAIL", detail: [`${failure.step}: ${failure.message}`, ...facts].join("; ") };
  }
  return { result: "ok", detail: facts.join("; ") };
}

/** The gateway discovers a service's endpoints (RFC 8414, then OIDC) unless both are given. */
function checkService(service: ServiceSettings, network: NetworkOptions): Promise<Verdict> {
  if (service.authorizationEndpoint && service.tokenEndpoint) {
    return probeTokenEndpoint(service.tokenEndpoint, service.clientId, network);
  }
  return probeDiscovery(service.issuer!, ["oauth2", "oidc"], network);
}

function checkLoginProvider(provider: LoginProvider, network: NetworkOptions): Promise<Verdict> {
  if (provider.type === "oidc") return probeDiscovery(provider.issuer, ["oidc"], network);
  return probeTokenEndpoint(provider.tokenEndpoint ?? GITHUB.tokenEndpoint, provider.clientId, network);
}
