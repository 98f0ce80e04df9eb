/**
 * What a session may see: the backends of its endpoint that the policies let its caller use, each
 * backend's static tool filter, and the policy object a listed item stands for.
 */
import type { BackendSettings, Registry } from "../config/types.ts";
import { GlobSet } from "../core/glob.ts";
import { type PolicyObject, policyOf, type PolicySubject } from "../policy/policy.ts";
import { canonicalListedUri } from "./relay/uri.ts";
import type { ProxyScope } from "./session.ts";

export type ListKind = "tools" | "prompts" | "resources" | "resourceTemplates";

/** The backends a session can reach, in registry order: those of its scope the policies let it use. */
export function scopeBackends(
  registry: Registry,
  scope: ProxyScope,
  subject: PolicySubject,
): BackendSettings[] {
  const policy = policyOf(registry);
  const backends = scope.kind === "backend"
    ? (Object.hasOwn(registry.backends, scope.name) ? [registry.backends[scope.name]!] : [])
    : Object.values(registry.backends);
  return backends.filter((backend) => policy.usesBackend(subject, backend.name));
}

const toolFilters = new WeakMap<BackendSettings, { include: GlobSet | undefined; exclude: GlobSet }>();

/** The backend's static `tools:` filter (compiled once per backend definition). */
export function toolAllowed(backend: BackendSettings, name: string): boolean {
  let filter = toolFilters.get(backend);
  if (!filter) {
    const { include, exclude } = backend.tools;
    filter = {
      include: include.length > 0 ? new GlobSet(include) : undefined,
      exclude: new GlobSet(exclude),
    };
    toolFilters.set(backend, filter);
  }
  return (filter.include?.test(name) ?? true) && !filter.exclude.test(name);
}

/** Whether a listed tool is annotated `readOnlyHint: true`. */
export function isReadOnly(tool: Record<string, unknown>): boolean {
  return (tool.annotations as { readOnlyHint?: unknown } | undefined)?.readOnlyHint === true;
}

/** The policy object a listed item stands for. */
export function listedObject(kind: ListKind, item: Record<string, unknown>): PolicyObject {
  if (kind === "tools") return { kind: "tool", name: String(item.name), readOnly: isReadOnly(item) };
  if (kind === "prompts") return { kind: "prompt", name: String(item.name) };
  // Policies match the canonical form of a URI, the form a read of it is checked in.
  if (kind === "resources") return { kind: "resource", uri: canonicalListedUri(String(item.uri)) };
  return { kind: "resource", uri: String(item.uriTemplate) };
}

/** The list kind a list method returns, by method. */
export const LIST_KINDS: Readonly<Record<string, ListKind | undefined>> = {
  "tools/list": "tools",
  "prompts/list": "prompts",
  "resources/list": "resources",
  "resources/templates/list": "resourceTemplates",
};
