/** Warnings for policy rules that can never apply because an earlier deny already covers them. */
import type { PolicyRule } from "./types.ts";
import { globToRegExp, isGlob } from "../core/glob.ts";

/** A rule that can never decide anything, because an earlier deny rule covers all it covers. */
export interface Shadowing {
  readonly rule: PolicyRule;
  /** The first earlier deny rule that covers it. */
  readonly by: PolicyRule;
}

/**
 * Finds the rules shadowed by an earlier deny rule: that deny applies to every subject, backend and
 * object the later rule does, so the later rule is never the one that decides. Only certain coverage
 * counts (`*`, equal entries, or an earlier glob matching a later literal name): a warning here must
 * never be wrong, so a later glob is covered only by `*` or by the same glob.
 */
export function findShadowedRules(rules: readonly PolicyRule[]): Shadowing[] {
  const shadowed: Shadowing[] = [];
  rules.forEach((rule, index) => {
    const by = rules.slice(0, index).find((earlier) => earlier.effect === "deny" && covers(earlier, rule));
    if (by) shadowed.push({ rule, by });
  });
  return shadowed;
}

/** Whether `earlier` applies wherever `later` does. */
function covers(earlier: PolicyRule, later: PolicyRule): boolean {
  return coversSubjects(earlier.subjects, later.subjects) &&
    coversNames(earlier.backends, later.backends) &&
    coversObjects(objectsOf(earlier), objectsOf(later));
}

function coversSubjects(earlier: readonly string[], later: readonly string[]): boolean {
  return earlier.includes("*") || later.every((subject) => earlier.includes(subject));
}

/** Whether every name or glob of `later` is certainly matched by some glob of `earlier`. */
function coversNames(earlier: readonly string[], later: readonly string[]): boolean {
  return later.every((name) =>
    earlier.some((pattern) =>
      pattern === "*" || pattern === name ||
      (isGlob(pattern) && !isGlob(name) && globToRegExp(pattern).test(name))
    )
  );
}

interface Objects {
  /** Neither tools, prompts, resources nor read_only: everything in the rule's backends. */
  readonly wholeBackend: boolean;
  readonly tools: readonly string[] | undefined;
  readonly readOnly: boolean;
  readonly prompts: readonly string[] | undefined;
  readonly resources: readonly string[] | undefined;
}

/** What a rule covers within a backend, as the policy reads it (read_only alone means every such tool). */
function objectsOf(rule: PolicyRule): Objects {
  const tools = rule.tools ?? (rule.readOnly ? ["*"] : undefined);
  return {
    wholeBackend: !tools && !rule.prompts && !rule.resources,
    tools,
    readOnly: rule.readOnly,
    prompts: rule.prompts,
    resources: rule.resources,
  };
}

function coversObjects(earlier: Objects, later: Objects): boolean {
  if (earlier.wholeBackend) return true;
  // A whole-backend rule also decides whether the backend is listed at all; no object list stands for that.
  if (later.wholeBackend) return false;
  const coversKind = (mine: readonly string[] | undefined, theirs: readonly string[] | undefined) =>
    theirs === undefined || (mine !== undefined && coversNames(mine, theirs));
  // An earlier read_only rule covers only tools annotated readOnlyHint: a later rule must be as narrow.
  const coversTools = later.tools === undefined ||
    (coversKind(earlier.tools, later.tools) && (!earlier.readOnly || later.readOnly));
  return coversTools && coversKind(earlier.prompts, later.prompts) &&
    coversKind(earlier.resources, later.resources);
}
