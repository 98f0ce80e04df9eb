/**
 * The four lists (tools, prompts, resources, resource templates) and `tasks/list`: fetched from every
 * backend of the scope at once, each bounded in time on `/mcp`, filtered by the policies and merged, with
 * names prefixed and the owners of names and URIs remembered for routing.
 */
import type { ServerCapabilities } from "@modelcontextprotocol/server";
import type { BackendSettings } from "../../config/types.ts";
import { policyOf } from "../../policy/policy.ts";
import { ConsentRequiredError } from "../../services/consent_required.ts";
import { NameTable } from "../names.ts";
import { isReadOnly, toolAllowed } from "../scope.ts";
import { type FrontSession, scopeKey } from "../session.ts";
import { callBackend } from "./call.ts";
import { connectTool, connectToolName } from "./consent.ts";
import { visible } from "./guard.ts";
import { backendsOf, type RelayRequest, type Result, singleBackendOf } from "./request.ts";
import { canonicalListedUri, templateMatcher } from "./uri.ts";
import { taskOwnersOf } from "./tasks.ts";

type Item = Record<string, unknown>;

/** Pages of one list a backend may send before the gateway stops asking for more. */
const MAX_PAGES = 100;

/** Collects every page of a list from one backend, remembering it for later sessions and for routing. */
export async function listAll(
  relay: RelayRequest,
  backend: BackendSettings,
  method: string,
  key: string,
): Promise<Item[]> {
  const { deps, session } = relay;
  let items: Item[];
  try {
    items = await allPages(relay, backend, method, key);
  } catch (error) {
    if (!(error instanceof ConsentRequiredError)) throw error;
    // A user who has not connected the backend's service yet sees what it offers (as it was last listed
    // for someone who had), so that calling it brings them the consent link. When no one has, `/mcp`
    // offers one tool that brings the link; the backend's own endpoint answers with the link.
    const cached = await deps.lists.get(backend, method);
    if (cached) return cached;
    if (singleBackendOf(relay)) throw error;
    return method === "tools/list" ? [connectTool(backend, error.service)] : [];
  }
  if (backend.services.length > 0) await deps.lists.set(backend, method, items);
  if (method === "tools/list") {
    deps.toolReadOnly.set(backend.name, new Map(items.map((tool) => [String(tool.name), isReadOnly(tool)])));
  }
  const listKey = `${backend.name}\n${method}`;
  session.lastLists.set(listKey, items);
  // Per-user and per-session backends list for their own: only a shared one's list may stand in for anyone's.
  if (!backend.perUser && backend.isolation === "shared") deps.lastKnownLists.set(listKey, items);
  return items;
}

async function allPages(relay: RelayRequest, backend: BackendSettings, method: string, key: string) {
  const items: Item[] = [];
  let cursor: string | undefined;
  for (let page = 0; page < MAX_PAGES; page++) {
    const result: Result = await callBackend(relay, backend, method, cursor ? { cursor } : undefined);
    items.push(...((result[key] as Item[] | undefined) ?? []));
    cursor = typeof result.nextCursor === "string" ? result.nextCursor : undefined;
    if (!cursor) break;
  }
  return items;
}

/** Marks a list that did not come within `gateway.list_timeout`. */
const LATE = Symbol("late");

/**
 * Runs `work` for every backend offering `capability`, leaving out those that fail. On `/mcp` each
 * backend gets `gateway.list_timeout`: a slower one is answered from `late(backend)` (its last known
 * list) or left out, and its work goes on so that the next list has it.
 */
export async function fanOut<T>(
  relay: RelayRequest,
  capability: keyof ServerCapabilities,
  work: (backend: BackendSettings) => Promise<T>,
  late?: (backend: BackendSettings) => T | undefined,
): Promise<{ backend: BackendSettings; value: T }[]> {
  const { deps } = relay;
  const single = singleBackendOf(relay);
  const waitMs = deps.registry().gateway.listTimeoutSeconds * 1000;
  const results = await Promise.all(
    backendsOf(relay).map(async (backend) => {
      const capabilities = deps.pool.capabilities(backend.name);
      if (capabilities && !capabilities[capability]) return undefined;
      const running = work(backend);
      let timer: ReturnType<typeof setTimeout> | undefined;
      try {
        const value = single ? await running : await Promise.race([
          running,
          new Promise<typeof LATE>((resolve) => timer = setTimeout(() => resolve(LATE), waitMs)),
        ]);
        if (value !== LATE) return { backend, value };
        running.catch(() => {});
        const known = late?.(backend);
        deps.log.warn("backend slow to list", {
          backend: backend.name,
          wait_ms: waitMs,
          last_known: !!known,
        });
        return known === undefined ? undefined : { backend, value: known };
      } catch (error) {
        // On a backend's own endpoint there is nothing else to list: the answer is the consent link.
        if (error instanceof ConsentRequiredError && single) throw error;
        deps.log.warn("backend left out of a list", { backend: backend.name, error });
        return undefined;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  return results.filter((result) => result !== undefined);
}

/** One backend's list for a fan-out: fetched, or its last known form when it is slow. */
function listOf(relay: RelayRequest, method: string, key: string) {
  return {
    work: (backend: BackendSettings) => listAll(relay, backend, method, key),
    late: (backend: BackendSettings) =>
      relay.session.lastLists.get(`${backend.name}\n${method}`) ??
        relay.deps.lastKnownLists.get(`${backend.name}\n${method}`),
  };
}

export async function listTools(relay: RelayRequest): Promise<Result> {
  const { work, late } = listOf(relay, "tools/list", "tools");
  const lists = await fanOut(relay, "tools", work, late);
  const single = singleBackendOf(relay);
  const names = new NameTable();
  const tools = lists.flatMap(({ backend, value }) =>
    value
      .filter((tool) =>
        backend.services.some((service) => connectToolName(service) === tool.name) ||
        (toolAllowed(backend, String(tool.name)) && visible(relay, backend, "tools", tool))
      )
      .map((tool) =>
        single ? tool : { ...tool, name: names.add(backend.prefix, backend.name, String(tool.name)) }
      )
  );
  if (!single) {
    relay.session.tools = names;
    for (const [from, to] of names.shortened) relay.deps.shortened.set(from, to);
  }
  const schemas = new Map<string, Item>();
  for (const tool of tools) {
    if (tool.inputSchema && typeof tool.inputSchema === "object") {
      schemas.set(String(tool.name), tool.inputSchema as Item);
    }
  }
  relay.deps.toolSchemas.set(scopeKey(relay.session.scope), schemas);
  return { tools };
}

export async function listPrompts(relay: RelayRequest): Promise<Result> {
  const { work, late } = listOf(relay, "prompts/list", "prompts");
  const lists = await fanOut(relay, "prompts", work, late);
  const single = singleBackendOf(relay);
  const names = new NameTable();
  const prompts = lists.flatMap(({ backend, value }) =>
    value.filter((prompt) => visible(relay, backend, "prompts", prompt)).map((prompt) =>
      single ? prompt : { ...prompt, name: names.add(backend.prefix, backend.name, String(prompt.name)) }
    )
  );
  if (!single) relay.session.prompts = names;
  return { prompts };
}

export async function listResources(relay: RelayRequest): Promise<Result> {
  const { work, late } = listOf(relay, "resources/list", "resources");
  const lists = await fanOut(relay, "resources", work, late);
  const resources: Item[] = [];
  for (const { backend, value } of lists) {
    for (const resource of value) {
      const uri = canonicalListedUri(String(resource.uri));
      const owner = relay.session.resourceOwners.get(uri);
      if (owner && owner !== backend.name) {
        relay.deps.log.warn("resource URI listed by two backends; the first keeps it", {
          uri,
          kept: owner,
          dropped: backend.name,
        });
        continue;
      }
      // Routed even when hidden: reading it is then refused (and audited) rather than "not found".
      relay.session.resourceOwners.set(uri, backend.name);
      if (visible(relay, backend, "resources", resource)) resources.push(resource);
    }
  }
  return { resources };
}

export async function listTemplates(relay: RelayRequest): Promise<Result> {
  const { work, late } = listOf(relay, "resources/templates/list", "resourceTemplates");
  const lists = await fanOut(relay, "resources", work, late);
  const owners: FrontSession["templateOwners"] = [];
  // Every template routes (a read under a hidden one is refused, not "not found"); visible ones are listed.
  const resourceTemplates = lists.flatMap(({ backend, value }) =>
    value.filter((template) => {
      const uriTemplate = String(template.uriTemplate);
      owners.push({ pattern: templateMatcher(uriTemplate), template: uriTemplate, backend: backend.name });
      return visible(relay, backend, "resourceTemplates", template);
    })
  );
  relay.session.templateOwners = owners;
  return { resourceTemplates };
}

/** tasks/list (2025-11-25): every backend's list, keeping only the caller's own tasks; one page. */
export async function listTasks(relay: RelayRequest): Promise<Result> {
  const owners = taskOwnersOf(relay.deps.pool);
  const caller = relay.session.caller;
  const lists = await fanOut(relay, "tasks", async (backend) => {
    const tasks = (relay.deps.pool.capabilities(backend.name)?.tasks ?? {}) as { list?: unknown };
    if (tasks.list === undefined) return [];
    // Not through listAll: a task list is nobody's to cache or share.
    return await allPages(relay, backend, "tasks/list", "tasks");
  });
  const tasks = lists.flatMap(({ backend, value }) =>
    value.filter((task) => owners.owns(caller, backend.name, task.taskId))
  );
  return { tasks };
}

/** Whether a tool is annotated readOnlyHint; asks the backend when a `read_only` rule needs to know. */
export async function readOnlyTool(relay: RelayRequest, backend: BackendSettings, name: string) {
  if (!policyOf(relay.deps.registry()).readsAnnotations) return false;
  const { toolReadOnly } = relay.deps;
  let known = toolReadOnly.get(backend.name)?.get(name);
  if (known === undefined) {
    await listAll(relay, backend, "tools/list", "tools").catch(() => []);
    known = toolReadOnly.get(backend.name)?.get(name);
  }
  return known ?? false;
}
