/** Access policies compiled from the registry: who may list and call what on which backend. */
import type { PolicyRule, Registry } from "../config/types.ts";
import type { Caller } from "../core/caller.ts";
import { GlobSet, isGlob } from "../core/glob.ts";

/**
 * Who is asking, as policies see it: the caller's id (a local user's name, or `provider:login`), groups,
 * OAuth client and identity provider. A view of the one Caller type, so any Caller is a subject.
 */
export type PolicySubject = Pick<Caller, "id" | "groups" | "clientId" | "provider">;

/** What is asked for, within one backend. */
export type PolicyObject =
  | { readonly kind: "tool"; readonly name: string; readonly readOnly: boolean }
  | { readonly kind: "prompt"; readonly name: string }
  | { readonly kind: "resource"; readonly uri: string };

export interface Decision {
  readonly allowed: boolean;
  /** The rule that decided; undefined when nothing allowed it (the default deny). */
  readonly rule: PolicyRule | undefined;
}

const DEFAULT_DENY: Decision = Object.freeze({ allowed: false, rule: undefined });

/** The `subjects` of a rule or limit, compiled: `*`, `user:`, `group:`, `client:`, `provider:`. */
export class SubjectMatcher {
  readonly #anyone: boolean;
  readonly #users: ReadonlySet<string>;
  readonly #groups: ReadonlySet<string>;
  readonly #clients: ReadonlySet<string>;
  readonly #providers: ReadonlySet<string>;

  constructor(subjects: readonly string[]) {
    const named = (kind: string) =>
      new Set(
        subjects.filter((subject) => subject.startsWith(`${kind}:`)).map((s) => s.slice(kind.length + 1)),
      );
    this.#anyone = subjects.includes("*");
    this.#users = named("user");
    this.#groups = named("group");
    this.#clients = named("client");
    this.#providers = named("provider");
  }

  matches(subject: PolicySubject): boolean {
    return this.#anyone || this.#users.has(subject.id) ||
      subject.groups.some((group) => this.#groups.has(group)) ||
      (subject.clientId !== undefined && this.#clients.has(subject.clientId)) ||
      (subject.provider !== undefined && this.#providers.has(subject.provider));
  }
}

/**
 * A rule's resource pattern in the form URIs are matched in (the WHATWG URL serialisation the relay
 * gives every URI): a literal URI canonicalised whole, a glob's scheme lower-cased.
 */
function canonicalResourcePattern(pattern: string): string {
  if (isGlob(pattern)) return pattern.replace(/^[A-Za-z][A-Za-z0-9+.-]*:/, (scheme) => scheme.toLowerCase());
  try {
    return new URL(pattern).href;
  } catch {
    return pattern;
  }
}

/** A rule with its globs compiled. */
class CompiledRule {
  readonly rule: PolicyRule;
  readonly subjects: SubjectMatcher;
  readonly backends: GlobSet;
  readonly tools: GlobSet | undefined;
  readonly prompts: GlobSet | undefined;
  readonly resources: GlobSet | undefined;
  /** A rule naming no tools, prompts, resources (nor read_only) covers everything in its backends. */
  readonly wholeBackend: boolean;

  constructor(rule: PolicyRule) {
    this.rule = rule;
    this.subjects = new SubjectMatcher(rule.subjects);
    this.backends = new GlobSet(rule.backends);
    // read_only without tool names covers every tool annotated readOnlyHint.
    const tools = rule.tools ?? (rule.readOnly ? ["*"] : undefined);
    this.tools = tools && new GlobSet(tools);
    this.prompts = rule.prompts && new GlobSet(rule.prompts);
    this.resources = rule.resources && new GlobSet(rule.resources.map(canonicalResourcePattern));
    this.wholeBackend = !this.tools && !this.prompts && !this.resources;
  }

  covers(object: PolicyObject): boolean {
    if (this.wholeBackend) return true;
    switch (object.kind) {
      case "tool":
        return (this.tools?.test(object.name) ?? false) && (!this.rule.readOnly || object.readOnly);
      case "prompt":
        return this.prompts?.test(object.name) ?? false;
      case "resource":
        return this.resources?.test(object.uri) ?? false;
    }
  }
}

/**
 * The policies of one registry generation, compiled once: deny overrides allow, and nothing allowed
 * means denied. The first matching rule of the deciding effect (in registry, then file, order) is the
 * one reported.
 */
export class Policy {
  readonly #rules: readonly CompiledRule[];
  readonly #bySubject = new Map<string, readonly CompiledRule[]>();
  readonly #bySubjectObject = new WeakMap<PolicySubject, readonly CompiledRule[]>();

  constructor(rules: readonly PolicyRule[]) {
    this.#rules = rules.map((rule) => new CompiledRule(rule));
  }

  /**
   * The rules that apply to a subject, memoised per subject (users are few, rules fewer): by the subject
   * object first (a session asks for each item of a list with the same one), then by its fields.
   */
  #rulesFor(subject: PolicySubject): readonly CompiledRule[] {
    const known = this.#bySubjectObject.get(subject);
    if (known) return known;
    const key = JSON.stringify([subject.id, subject.groups, subject.clientId, subject.provider]);
    let rules = this.#bySubject.get(key);
    if (!rules) {
      rules = this.#rules.filter((rule) => rule.subjects.matches(subject));
      if (this.#bySubject.size > 10_000) this.#bySubject.clear();
      this.#bySubject.set(key, rules);
    }
    this.#bySubjectObject.set(subject, rules);
    return rules;
  }

  /** Whether the subject may use anything at all of `backend` (it is then listed and announced). */
  usesBackend(subject: PolicySubject, backend: string): boolean {
    let allowed = false;
    for (const rule of this.#rulesFor(subject)) {
      if (!rule.backends.test(backend)) continue;
      if (rule.rule.effect === "deny" && rule.wholeBackend) return false;
      if (rule.rule.effect === "allow") allowed = true;
    }
    return allowed;
  }

  /** Whether the subject may use `object` of `backend`, and which rule decided. */
  decide(subject: PolicySubject, backend: string, object: PolicyObject): Decision {
    let allow: CompiledRule | undefined;
    for (const rule of this.#rulesFor(subject)) {
      if (!rule.backends.test(backend) || !rule.covers(object)) continue;
      if (rule.rule.effect === "deny") return { allowed: false, rule: rule.rule };
      allow ??= rule;
    }
    return allow ? { allowed: true, rule: allow.rule } : DEFAULT_DENY;
  }

  /** Whether any rule depends on a tool's readOnlyHint (only then must a call know the annotation). */
  get readsAnnotations(): boolean {
    return this.#rules.some((rule) => rule.rule.readOnly);
  }

  /** A fingerprint of the rules: equal for two generations whose decisions are the same. */
  get identity(): string {
    return JSON.stringify(this.#rules.map(({ rule }) => ({ ...rule, source: undefined })));
  }
}

const compiled = new WeakMap<Registry, Policy>();

/** The compiled policy of a registry generation (built on first use, then kept with the registry). */
export function policyOf(registry: Registry): Policy {
  let policy = compiled.get(registry);
  if (!policy) {
    policy = new Policy(registry.policies);
    compiled.set(registry, policy);
  }
  return policy;
}
