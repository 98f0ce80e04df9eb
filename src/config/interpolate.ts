/**
 * `${env:...}` and `${secret:...}` references: replaced with their values, with a problem for each that fails.
 */
import type { ConfigPath, SourceFile } from "./source.ts";
import type { ConfigProblem } from "./errors.ts";
import { Template, type TemplatePart, USER_FIELDS, type UserField } from "./template.ts";

/** Where values come from when a registry says `${env:NAME}` or `${secret:NAME}`. */
export interface InterpolationSources {
  env(name: string): string | undefined;
  /** The content of secret NAME, or undefined when there is none. */
  secret(name: string): Promise<string | undefined>;
}

type Reference = { kind: "env" | "secret" | "service" | "user"; name: string };
type Token = { text: string } | Reference;

const NAME = /^[A-Za-z0-9_.-]+$/;

/** Splits a string into literal text and `${kind:name}` references; `$${` writes a literal `${`. */
function tokenize(value: string): { tokens: Token[]; error?: string } {
  const tokens: Token[] = [];
  let text = "";
  let index = 0;
  while (index < value.length) {
    if (value.startsWith("$${", index)) {
      text += "${";
      index += 3;
      continue;
    }
    if (!value.startsWith("${", index)) {
      text += value[index];
      index += 1;
      continue;
    }
    const end = value.indexOf("}", index);
    if (end < 0) return { tokens, error: "unterminated reference: missing '}'" };
    const inner = value.slice(index + 2, end);
    const colon = inner.indexOf(":");
    const kind = inner.slice(0, colon);
    const name = inner.slice(colon + 1);
    if (colon < 0 || !["env", "secret", "service", "user"].includes(kind)) {
      return { tokens, error: `unknown reference "\${${inner}}": use env:, secret:, service: or user:` };
    }
    if (!NAME.test(name) || name === "." || name === "..") {
      return { tokens, error: `invalid name in reference "\${${inner}}"` };
    }
    if (kind === "user" && !USER_FIELDS.includes(name as UserField)) {
      return { tokens, error: `unknown user field "${name}": use ${USER_FIELDS.join(", ")}` };
    }
    if (text) tokens.push({ text });
    text = "";
    tokens.push({ kind: kind as Reference["kind"], name });
    index = end + 1;
  }
  if (text) tokens.push({ text });
  return { tokens };
}

/** True for the only places per-request placeholders may appear: backend `env` and `headers`. */
export function isTemplatePath(path: ConfigPath): boolean {
  if (path.length !== 5 || path[0] !== "backends") return false;
  return (path[2] === "stdio" && path[3] === "env") ||
    ((path[2] === "http" || path[2] === "sse") && path[3] === "headers");
}

function walk(
  value: unknown,
  path: ConfigPath,
  visit: (value: unknown, path: ConfigPath) => unknown,
): unknown {
  if (Array.isArray(value)) return value.map((item, index) => walk(item, [...path, index], visit));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, walk(item, [...path, key], visit)]),
    );
  }
  return visit(value, path);
}

/**
 * Substitutes `${env:}` and `${secret:}` everywhere, and turns backend `env` and `headers` values into
 * Templates that keep `${service:}` and `${user:}` for each request. Problems never quote a value.
 */
export async function interpolate(
  source: SourceFile,
  sources: InterpolationSources,
): Promise<{ value: unknown; problems: ConfigProblem[]; services: Map<string, ConfigPath> }> {
  const problems: ConfigProblem[] = [];
  const services = new Map<string, ConfigPath>();

  const secretNames = new Set<string>();
  walk(source.value, [], (value) => {
    if (typeof value === "string") {
      for (const token of tokenize(value).tokens) {
        if ("kind" in token && token.kind === "secret") secretNames.add(token.name);
      }
    }
    return value;
  });
  const secrets = new Map<string, string | undefined>();
  await Promise.all([...secretNames].map(async (name) => secrets.set(name, await sources.secret(name))));

  const value = walk(source.value, [], (value, path) => {
    const templated = isTemplatePath(path);
    if (typeof value !== "string") {
      if (templated && (typeof value === "number" || typeof value === "boolean")) {
        return new Template([{ kind: "text", text: String(value), source: String(value) }]);
      }
      return value;
    }
    const { tokens, error } = tokenize(value);
    if (error) {
      problems.push(source.problemAt(path, error));
      return value;
    }
    const parts: TemplatePart[] = [];
    for (const token of tokens) {
      if (!("kind" in token)) {
        parts.push({ kind: "text", text: token.text, source: token.text.replaceAll("${", () => "$${") });
        continue;
      }
      const reference = `\${${token.kind}:${token.name}}`;
      if (token.kind === "env" || token.kind === "secret") {
        const resolved = token.kind === "env" ? sources.env(token.name) : secrets.get(token.name);
        if (resolved === undefined) {
          problems.push(source.problemAt(
            path,
            token.kind === "env"
              ? `environment variable "${token.name}" is not set`
              : `secret "${token.name}" not found (a file named "${token.name}" in $CREDENTIALS_DIRECTORY or in the data directory's secrets/)`,
          ));
        }
        parts.push({ kind: "text", text: resolved ?? "", source: reference });
      } else if (!templated) {
        problems.push(
          source.problemAt(path, `${reference} is only allowed in a backend's stdio env or http/sse headers`),
        );
      } else if (token.kind === "service") {
        parts.push({ kind: "service", service: token.name });
        if (!services.has(token.name)) services.set(token.name, path);
      } else {
        parts.push({ kind: "user", field: token.name as UserField });
      }
    }
    if (templated) return new Template(parts);
    return parts.map((part) => part.kind === "text" ? part.text : "").join("");
  });
  return { value, problems, services };
}

/** Reads only `${env:...}` references, for the few values needed before secrets can be located. */
export function interpolateEnvOnly(
  value: string,
  env: (name: string) => string | undefined,
): string | undefined {
  const { tokens, error } = tokenize(value);
  if (error) return undefined;
  let result = "";
  for (const token of tokens) {
    if (!("kind" in token)) result += token.text;
    else if (token.kind === "env" && env(token.name) !== undefined) result += env(token.name);
    else return undefined;
  }
  return result;
}
