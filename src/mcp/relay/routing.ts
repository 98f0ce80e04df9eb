/**
 * Which backend a request goes to, from what it names: an aggregate tool or prompt name, a resource URI
 * (listed, or under a listed template) or a completion's ref. What the session has not listed yet is
 * listed first; what it cannot find is "unknown", however it is spelled.
 */
import type { BackendSettings } from "../../config/types.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { splitPrefixed } from "../names.ts";
import { listPrompts, listResources, listTemplates, listTools } from "./lists.ts";
import { backendNamed, backendsOf, type RelayRequest, singleBackendOf } from "./request.ts";

/**
 * The backend and original name behind an aggregate tool or prompt name: from the session's last
 * list, else by its prefix, else by listing again (a shortened name can only be found that way).
 */
export async function resolveName(
  relay: RelayRequest,
  kind: "tools" | "prompts",
  exposed: string,
): Promise<{ backend: BackendSettings; name: string }> {
  const single = singleBackendOf(relay);
  if (single) return { backend: single, name: exposed };
  const table = () => kind === "tools" ? relay.session.tools : relay.session.prompts;
  let found = table().resolve(exposed);
  if (!found) {
    const split = splitPrefixed(exposed);
    const backend = split && backendsOf(relay).find((candidate) => candidate.prefix === split.prefix);
    if (backend && split) found = { backend: backend.name, name: split.name };
  }
  if (!found) {
    await (kind === "tools" ? listTools(relay) : listPrompts(relay));
    found = table().resolve(exposed);
  }
  if (!found) {
    throw new JsonRpcError(
      JSONRPC.invalidParams,
      `Unknown ${kind === "tools" ? "tool" : "prompt"}: ${exposed}`,
    );
  }
  return { backend: backendNamed(relay, found.backend), name: found.name };
}

/** The backend that listed a canonical URI, or whose template it falls under. */
function ownerOf(relay: RelayRequest, uri: string): string | undefined {
  return relay.session.resourceOwners.get(uri) ??
    relay.session.templateOwners.find((owner) => owner.pattern.test(uri))?.backend;
}

/** The backend a canonical resource URI belongs to, listing resources and templates when not known yet. */
export async function resourceBackend(relay: RelayRequest, uri: string): Promise<BackendSettings> {
  const single = singleBackendOf(relay);
  if (single) return single;
  let owner = ownerOf(relay, uri);
  if (!owner) {
    await listResources(relay);
    await listTemplates(relay);
    owner = ownerOf(relay, uri);
  }
  if (!owner) throw new JsonRpcError(JSONRPC.invalidParams, `Resource not found: ${uri}`, { uri });
  return backendNamed(relay, owner);
}

/** The backend of a completion's `ref/resource`: the one that listed the template (or the URI). */
export async function templateBackend(relay: RelayRequest, uri: string): Promise<BackendSettings> {
  const byTemplate = () => relay.session.templateOwners.find((owner) => owner.template === uri)?.backend;
  let name = singleBackendOf(relay)?.name ?? byTemplate() ?? ownerOf(relay, uri);
  if (!name) {
    await listTemplates(relay);
    name = byTemplate();
  }
  if (!name) throw new JsonRpcError(JSONRPC.invalidParams, `Unknown resource template: ${uri}`);
  return backendNamed(relay, name);
}
