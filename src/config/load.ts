/**
 * Loads registry.yaml and the policies directory: parse, interpolate, validate, check references, resolve.
 */
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import type { z } from "zod";
import { findShadowedRules } from "./shadowing.ts";
import { type ConfigProblem, formatLocation, sortProblems } from "./errors.ts";
import { interpolate, interpolateEnvOnly, type InterpolationSources } from "./interpolate.ts";
import { type ConfigPath, formatPath, parseSource, type SourceFile } from "./source.ts";
import {
  listenSchema,
  policyMappingSchema,
  type RawRegistry,
  registrySchema,
  registryWording,
  ruleListSchema,
} from "./schema.ts";
import { checkReferences, type InterpolatedFile } from "./references.ts";
import { type PolicyFile, resolveRegistry } from "./resolve.ts";
import type { PolicyRule, Registry } from "./types.ts";

/** Where the loader reads from; every field has a real default and can be replaced in tests. */
export interface LoadOptions {
  env?: (name: string) => string | undefined;
  readTextFile?: (path: string) => Promise<string>;
  /** Names of the entries of a directory; undefined when it does not exist. */
  readDirNames?: (path: string) => Promise<string[] | undefined>;
  /** `--data DIR` from the command line; wins over `gateway.data_dir`. */
  dataDir?: string;
  /** `--listen HOST:PORT` from the command line; wins over `gateway.listen`. */
  listen?: string;
  /** Base for turning absolute paths into the labels used in messages; default: the working directory. */
  cwd?: string;
}

export type LoadResult =
  | { readonly ok: true; readonly registry: Registry }
  | { readonly ok: false; readonly problems: readonly ConfigProblem[] };

/** What `loadRegistry()` also reports: warnings never stop a registry from loading. */
export interface LoadWarnings {
  /** Rules and limits naming no defined backend, rules shadowed by an earlier deny; sorted. */
  readonly warnings: readonly ConfigProblem[];
}

async function defaultReadDirNames(path: string): Promise<string[] | undefined> {
  try {
    const names: string[] = [];
    for await (const entry of Deno.readDir(path)) if (entry.isFile || entry.isSymlink) names.push(entry.name);
    return names;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

/** Turns zod issues into positioned problems; messages never include the offending value. */
export function schemaProblems(
  source: SourceFile,
  issues: readonly z.core.$ZodIssue[],
  prefix: ConfigPath = [],
): ConfigProblem[] {
  return issues.flatMap((issue) => {
    const path = [
      ...prefix,
      ...issue.path.map((segment) => typeof segment === "number" ? segment : String(segment)),
    ];
    const where = path.length > 0 ? `${formatPath(path)}: ` : "";
    if (issue.code === "unrecognized_keys") {
      return issue.keys.map((key) =>
        source.problemAt([...path, key], `${where}unknown key "${key}"`, { key: true })
      );
    }
    if (issue.code === "invalid_key") {
      // The key itself is wrong: say why, at the key.
      return [source.problemAt(path, `${where}${issue.issues[0]?.message ?? "invalid key"}`, { key: true })];
    }
    const missing = ["invalid_type", "invalid_value", "invalid_union"].includes(issue.code) &&
      valueAt(source.value, path) === undefined;
    const message = missing ? "missing required key" : issue.message.replace(/^Invalid input: /, "");
    return [source.problemAt(path, `${where}${message}`)];
  });
}

/**
 * Reads, interpolates, validates and resolves a registry and every `*.yaml` of its policies directory.
 * Never throws for bad input: every problem comes back, positioned, at once.
 */
export async function loadRegistry(
  registryPath: string,
  options: LoadOptions = {},
): Promise<LoadResult & LoadWarnings> {
  const env = options.env ?? ((name: string) => Deno.env.get(name));
  const readTextFile = options.readTextFile ?? ((path: string) => Deno.readTextFile(path));
  const readDirNames = options.readDirNames ?? defaultReadDirNames;
  const cwd = options.cwd ?? Deno.cwd();
  const absolutePath = resolve(cwd, registryPath);
  const baseDir = dirname(absolutePath);
  const label = (path: string) => {
    const rel = relative(cwd, path);
    return rel.startsWith("..") || isAbsolute(rel) ? path : rel;
  };

  const problems: ConfigProblem[] = [];
  const parsed = await readAndParse(absolutePath, label(absolutePath), readTextFile);
  problems.push(...parsed.problems);
  if (!parsed.source) return { ok: false, problems: sortProblems(problems), warnings: [] };
  const source = parsed.source;

  const rawGateway = isRecord(source.value) && isRecord(source.value.gateway) ? source.value.gateway : {};
  for (const key of ["data_dir", "policies_dir"]) {
    // These locate secrets and policies, so they can only use the environment.
    const text = rawGateway[key];
    if (typeof text === "string" && /\$\{(secret|service|user):/.test(text.replaceAll("$${", ""))) {
      problems.push(
        source.problemAt(["gateway", key], `gateway.${key}: only \${env:...} references are allowed here`),
      );
    }
  }
  const dataDirText = options.dataDir ??
    (typeof rawGateway.data_dir === "string" ? interpolateEnvOnly(rawGateway.data_dir, env) : undefined) ??
    "./data";
  const dataDir = resolve(options.dataDir ? cwd : baseDir, dataDirText);
  const sources: InterpolationSources = {
    env,
    async secret(name) {
      const credentials = env("CREDENTIALS_DIRECTORY");
      for (const dir of credentials ? [credentials, join(dataDir, "secrets")] : [join(dataDir, "secrets")]) {
        try {
          return (await readTextFile(join(dir, name))).replace(/\r?\n$/, "");
        } catch {
          // Not in this directory; try the next.
        }
      }
      return undefined;
    },
  };

  const interpolated = await interpolate(source, sources);
  problems.push(...interpolated.problems);
  if (options.listen !== undefined && isRecord(interpolated.value)) {
    // A bad --listen is the command line's mistake, not the file's: say so instead of pointing into it.
    const listen = listenSchema.safeParse(options.listen, { error: registryWording });
    if (listen.success) {
      const gateway = isRecord(interpolated.value.gateway) ? interpolated.value.gateway : {};
      interpolated.value.gateway = { ...gateway, listen: options.listen };
    } else {
      problems.push({
        file: "--listen",
        line: 0,
        col: 0,
        message: listen.error.issues[0]?.message ?? "invalid",
      });
    }
  }
  const checked = registrySchema.safeParse(interpolated.value, { error: registryWording });
  if (!checked.success) {
    let issues = checked.error.issues;
    if (options.listen !== undefined) {
      // The listener is the command line's: point at --listen, not at a line of the file.
      const offLoopback = (issue: z.core.$ZodIssue) =>
        issue.code === "custom" && issue.params?.authNoneOffLoopback === true;
      if (issues.some(offLoopback)) {
        const auth = source.problemAt(["gateway", "auth"], "");
        problems.push({
          file: "--listen",
          line: 0,
          col: 0,
          message: `${options.listen} is not a loopback address, and gateway.auth is "none" ` +
            `(${formatLocation(auth)}), which is only allowed on a loopback listener (localhost, ` +
            "127.x.x.x or ::1): give --listen 127.0.0.1:PORT, or use auth: oauth",
        });
        issues = issues.filter((issue) => !offLoopback(issue));
      }
    }
    problems.push(...withoutEchoes(schemaProblems(source, issues), interpolated.problems));
  }

  const rawPoliciesDir = typeof rawGateway.policies_dir === "string"
    ? interpolateEnvOnly(rawGateway.policies_dir, env) ?? "./policies"
    : "./policies";
  const policiesDir = resolve(baseDir, rawPoliciesDir);
  const policyFiles: PolicyFile[] = [];
  const interpolatedPolicyFiles: InterpolatedFile[] = [];
  const names = (await readDirNames(policiesDir))
    ?.filter((name) => /\.ya?ml$/.test(name) && join(policiesDir, name) !== absolutePath).sort() ?? [];
  for (const name of names) {
    const path = join(policiesDir, name);
    const relativePath = relative(baseDir, path);
    const parsedPolicy = await readAndParse(path, label(path), readTextFile);
    problems.push(...parsedPolicy.problems);
    if (!parsedPolicy.source) continue;
    const file = await interpolate(parsedPolicy.source, sources);
    problems.push(...file.problems);
    interpolatedPolicyFiles.push({ source: parsedPolicy.source, value: file.value, relativePath });
    const checkedPolicy = checkPolicyFile(parsedPolicy.source, file.value, relativePath);
    problems.push(...withoutEchoes(checkedPolicy.problems, file.problems));
    if (checkedPolicy.file) policyFiles.push(checkedPolicy.file);
  }

  const references = checkReferences(
    { source, value: interpolated.value, relativePath: relative(baseDir, absolutePath) },
    interpolatedPolicyFiles,
  );
  problems.push(...references.problems);
  const warnings = references.warnings;
  if (!checked.success || problems.length > 0) {
    return { ok: false, problems: sortProblems(problems), warnings: sortProblems(warnings) };
  }
  const registry = resolveRegistry({
    raw: checked.data as RawRegistry,
    source,
    relativePath: relative(baseDir, absolutePath),
    policyFiles,
    baseDir,
    dataDir,
    policiesDir,
    files: [absolutePath, ...names.map((name) => join(policiesDir, name))],
  });
  // Rule locations are relative to the registry's directory; messages use the same labels as problems.
  const where = ({ source }: PolicyRule) => ({
    file: label(resolve(baseDir, source.file)),
    line: source.line,
    col: source.col,
  });
  for (const { rule, by } of findShadowedRules(registry.policies)) {
    warnings.push({
      ...where(rule),
      message: `rule "${rule.id}" is shadowed by the earlier deny rule "${by.id}" ` +
        `(${formatLocation(where(by))}), which covers everything it covers`,
    });
  }
  return { ok: true, registry, warnings: sortProblems(warnings) };
}

async function readAndParse(
  path: string,
  label: string,
  readTextFile: (path: string) => Promise<string>,
): Promise<{ source?: SourceFile; problems: ConfigProblem[] }> {
  let text: string;
  try {
    text = await readTextFile(path);
  } catch (error) {
    const reason = error instanceof Deno.errors.NotFound ? "no such file" : "cannot read the file";
    return { problems: [{ file: label, line: 0, col: 0, message: reason }] };
  }
  return parseSource(label, text);
}

/** Validates a policy file: a list of rules, or a mapping with `policies` and/or `limits`. */
function checkPolicyFile(
  source: SourceFile,
  value: unknown,
  relativePath: string,
): { file?: PolicyFile; problems: ConfigProblem[] } {
  if (value === null || value === undefined) {
    return { file: { source, relativePath, policies: [], limits: [] }, problems: [] };
  }
  if (Array.isArray(value)) {
    const checked = ruleListSchema.safeParse(value, { error: registryWording });
    if (!checked.success) return { problems: schemaProblems(source, checked.error.issues) };
    const policies = checked.data.map((rule, index) => ({ rule, path: [index] }));
    return { file: { source, relativePath, policies, limits: [] }, problems: [] };
  }
  if (!isRecord(value)) {
    return {
      problems: [
        source.problemAt([], "expected a list of rules, or a mapping with policies: and/or limits:"),
      ],
    };
  }
  const checked = policyMappingSchema.safeParse(value, { error: registryWording });
  if (!checked.success) return { problems: schemaProblems(source, checked.error.issues) };
  return {
    file: {
      source,
      relativePath,
      policies: (checked.data.policies ?? []).map((rule, index) => ({ rule, path: ["policies", index] })),
      limits: (checked.data.limits ?? []).map((limit, index) => ({ limit, path: ["limits", index] })),
    },
    problems: [],
  };
}

/** Drops problems at the position of a reference that already failed: they are its consequence. */
function withoutEchoes(problems: ConfigProblem[], causes: readonly ConfigProblem[]): ConfigProblem[] {
  const taken = new Set(causes.map((cause) => `${cause.line}:${cause.col}`));
  return problems.filter((problem) => !taken.has(`${problem.line}:${problem.col}`));
}

/** The value at `path` in a parsed file, or undefined when some segment of it is not written. */
function valueAt(value: unknown, path: ConfigPath): unknown {
  let current = value;
  for (const segment of path) {
    if (current === null || typeof current !== "object" || !Object.hasOwn(current, segment)) return undefined;
    current = (current as Record<string | number, unknown>)[segment];
  }
  return current;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
