/**
 * Cross-references in a registry: policies and limits that name backends, services and providers that exist.
 */
import { globToRegExp, isGlob } from "../core/glob.ts";
import type { ConfigProblem } from "./errors.ts";
import type { ConfigPath, SourceFile } from "./source.ts";
import { Template } from "./template.ts";

/** An interpolated file, before (and whatever the outcome of) schema validation. */
export interface InterpolatedFile {
  readonly source: SourceFile;
  readonly value: unknown;
  /** Path relative to the registry's directory. */
  readonly relativePath: string;
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  value !== null && typeof value === "object" && !Array.isArray(value) && !(value instanceof Template);
const keysOf = (value: unknown) => new Set(isRecord(value) ? Object.keys(value) : []);

/** Why a glob cannot be compiled (a range out of order, as in `[z-a]`), or undefined when it can. */
function globError(pattern: string): string | undefined {
  if (!isGlob(pattern)) return undefined;
  try {
    globToRegExp(pattern);
    return undefined;
  } catch (error) {
    // "Invalid regular expression: /^[z-a]$/: Range out of order in character class": keep the reason.
    return error instanceof SyntaxError ? error.message.replace(/^.*: /, "") : "cannot be compiled";
  }
}

/**
 * How many single-character edits (insert, delete, replace, swap two neighbours) turn `a` into `b`:
 * the optimal string alignment distance.
 */
function editDistance(a: string, b: string): number {
  const rows: number[][] = [Array.from({ length: b.length + 1 }, (_, j) => j)];
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row[j] = Math.min(rows[i - 1]![j]! + 1, row[j - 1]! + 1, rows[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        row[j] = Math.min(row[j]!, rows[i - 2]![j - 2]! + 1);
      }
    }
    rows.push(row);
  }
  return rows[a.length]![b.length]!;
}

/**
 * The one of `candidates` that `name` most likely misspells (a third of its letters or fewer differ,
 * ignoring case), or undefined.
 */
export function closestName(name: string, candidates: Iterable<string>): string | undefined {
  let best: { candidate: string; distance: number } | undefined;
  for (const candidate of candidates) {
    const distance = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (!best || distance < best.distance) best = { candidate, distance };
  }
  if (!best) return undefined;
  const allowed = Math.max(1, Math.floor(Math.max(name.length, best.candidate.length) / 3));
  return best.distance <= allowed ? best.candidate : undefined;
}

/** `; did you mean "everything"?` when `name` looks like a misspelling of one of `candidates`, else "". */
export function didYouMean(name: string, candidates: Iterable<string>): string {
  const closest = closestName(name, candidates);
  return closest === undefined ? "" : `; did you mean "${closest}"?`;
}

/** The rules and limits a file holds, with their paths, whatever shape the file has. */
function entriesOf(
  file: InterpolatedFile,
  isRegistry: boolean,
): { item: unknown; path: ConfigPath; kind: string }[] {
  const { value } = file;
  if (!isRegistry && Array.isArray(value)) {
    return value.map((item, index) => ({ item, path: [index], kind: "rule" }));
  }
  if (!isRecord(value)) return [];
  const list = (key: string, kind: string) =>
    Array.isArray(value[key]) ? value[key].map((item, index) => ({ item, path: [key, index], kind })) : [];
  return [...list("policies", "rule"), ...list("limits", "limit")];
}

function unknownService(service: string, services: Set<string>): string {
  const closest = closestName(service, services);
  return closest === undefined
    ? `unknown service "${service}": define it under services:`
    : `unknown service "${service}": did you mean "${closest}"?`;
}

/** What `checkReferences()` found: problems reject the registry, warnings do not. */
export interface ReferenceCheck {
  readonly problems: ConfigProblem[];
  readonly warnings: ConfigProblem[];
}

/**
 * Checks what refers to what across the registry and its policy files: services used by backends,
 * unique prefixes, unique rule ids, globs, providers and backends named by rules. It reads the values
 * defensively, so these problems are reported together with schema problems.
 *
 * A rule or limit naming a backend that does not exist is only a warning: removing a backend must not
 * stop the registry from reloading while a policy file still names it (the rule then matches nothing).
 */
export function checkReferences(
  registry: InterpolatedFile,
  policyFiles: readonly InterpolatedFile[],
): ReferenceCheck {
  const problems: ConfigProblem[] = [];
  const warnings: ConfigProblem[] = [];
  const root = isRecord(registry.value) ? registry.value : {};
  const services = keysOf(root.services);
  const providers = keysOf(isRecord(root.login) ? root.login.providers : undefined);
  const backends = isRecord(root.backends) ? root.backends : {};
  const backendNames = Object.keys(backends);

  const prefixOwners = new Map<string, string>();
  for (const [name, backend] of Object.entries(backends)) {
    if (!isRecord(backend)) continue;
    for (const section of ["stdio", "http", "sse"]) {
      const transport = backend[section];
      const values = isRecord(transport) ? transport[section === "stdio" ? "env" : "headers"] : undefined;
      if (!isRecord(values)) continue;
      for (const [key, value] of Object.entries(values)) {
        if (!(value instanceof Template)) continue;
        for (const service of value.services.filter((service) => !services.has(service))) {
          problems.push(registry.source.problemAt(
            ["backends", name, section, section === "stdio" ? "env" : "headers", key],
            unknownService(service, services),
          ));
        }
      }
    }
    const prefix = typeof backend.prefix === "string" ? backend.prefix : name.replaceAll(".", "-");
    if (typeof backend.prefix !== "string" && prefix.includes("__")) {
      problems.push(registry.source.problemAt(
        ["backends", name],
        `backends.${name}: a prefix must not contain '__' (set prefix:, since the default is the backend name)`,
        { key: true },
      ));
    }
    const owner = prefixOwners.get(prefix);
    if (owner !== undefined) {
      problems.push(registry.source.problemAt(
        ["backends", name],
        `backends.${name}: prefix "${prefix}" is already used by backend "${owner}"`,
        { key: true },
      ));
    } else {
      prefixOwners.set(prefix, name);
    }
  }

  const ruleIds = new Map<string, string>();
  for (const [index, file] of [registry, ...policyFiles].entries()) {
    const report = (path: ConfigPath, message: string) => problems.push(file.source.problemAt(path, message));
    const warn = (path: ConfigPath, message: string) => warnings.push(file.source.problemAt(path, message));
    for (const { item, path, kind } of entriesOf(file, index === 0)) {
      if (!isRecord(item)) continue;
      if (kind === "rule" && typeof item.id === "string") {
        const earlier = ruleIds.get(item.id);
        if (earlier !== undefined) {
          report([...path, "id"], `rule id "${item.id}" is already used in ${earlier}`);
        } else ruleIds.set(item.id, file.relativePath);
      }
      if (Array.isArray(item.subjects)) {
        item.subjects.forEach((subject, position) => {
          const provider = typeof subject === "string" ? /^provider:(.+)$/.exec(subject)?.[1] : undefined;
          if (provider !== undefined && !providers.has(provider)) {
            report(
              [...path, "subjects", position],
              `unknown provider "${provider}" in subject${didYouMean(provider, providers)}`,
            );
          }
        });
      }
      for (const key of ["backends", "tools", "prompts", "resources"]) {
        const list = item[key];
        if (!Array.isArray(list)) continue;
        list.forEach((pattern, position) => {
          const reason = typeof pattern === "string" ? globError(pattern) : undefined;
          if (reason) report([...path, key, position], `invalid glob "${pattern}": ${reason}`);
        });
      }
      if (Array.isArray(item.backends)) {
        item.backends.forEach((pattern, position) => {
          if (typeof pattern !== "string" || pattern === "" || globError(pattern)) return;
          const where = [...path, "backends", position];
          if (!isGlob(pattern)) {
            if (!Object.hasOwn(backends, pattern)) {
              warn(
                where,
                `unknown backend "${pattern}": this entry matches nothing${
                  didYouMean(pattern, backendNames)
                }`,
              );
            }
            return;
          }
          const expression = globToRegExp(pattern);
          if (!backendNames.some((name) => expression.test(name))) {
            warn(where, `backend glob "${pattern}" matches no defined backend`);
          }
        });
      }
    }
  }
  return { problems, warnings };
}
