/** Explains an access decision: the rule that decides it, or that none does. */
import type { PolicyRule, Registry } from "../config/types.ts";
import { ANONYMOUS } from "../core/caller.ts";
import { type Decision, Policy, type PolicyObject, policyOf, type PolicySubject } from "./policy.ts";

/** A question for `gatehouse explain`: may this user use this backend, or this object of it? */
export interface ExplainQuestion {
  /** The user id: a local user's name, or `provider:login` for users of an upstream provider. */
  readonly user: string;
  /** Groups given on the command line; a local user's groups in `login.users` are added to them. */
  readonly groups: readonly string[];
  readonly clientId: string | undefined;
  readonly provider: string | undefined;
  readonly backend: string;
  /** Undefined: whether the user may use the backend at all (it is then listed to them). */
  readonly object: PolicyObject | undefined;
}

export interface Explanation extends Decision {
  /** Whom the rules were matched against. */
  readonly subject: PolicySubject;
}

/** The subject the policy sees for a question: a local user's configured groups count too. */
export function subjectOf(registry: Registry, question: ExplainQuestion): PolicySubject {
  const users = registry.login.users;
  const local = Object.hasOwn(users, question.user) ? users[question.user] : undefined;
  return {
    id: question.user,
    groups: [...new Set([...(local?.groups ?? []), ...question.groups])],
    clientId: question.clientId,
    provider: question.provider,
  };
}

/**
 * The user ids the registry itself names: local users, `user:` subjects of rules and limits, the users
 * `client_credentials` clients act as, and `anonymous` under `auth: none`.
 */
export function userIdsNamed(registry: Registry): Set<string> {
  const ids = new Set(Object.keys(registry.login.users));
  for (const { subjects } of [...registry.policies, ...registry.limits]) {
    for (const subject of subjects) if (subject.startsWith("user:")) ids.add(subject.slice("user:".length));
  }
  for (const client of Object.values(registry.clients)) ids.add(client.user);
  if (registry.gateway.auth === "none") ids.add(ANONYMOUS.id);
  return ids;
}

/**
 * Whether the registry knows `user`: it names it (`userIdsNamed()`), or it is `PROVIDER:LOGIN` (or
 * `PROVIDER:SUB`) of a login provider whose `allow.users` lists it. Accounts that signed in are in the
 * store, which the registry cannot tell.
 */
export function registryKnowsUser(registry: Registry, user: string): boolean {
  if (userIdsNamed(registry).has(user)) return true;
  const separator = user.indexOf(":");
  if (separator <= 0) return false;
  const providers = registry.login.providers;
  const name = user.slice(0, separator);
  const provider = Object.hasOwn(providers, name) ? providers[name] : undefined;
  const login = user.slice(separator + 1).toLowerCase();
  return provider?.allow.users.some((entry) => entry.toLowerCase() === login) ?? false;
}

/** Answers a question with the registry's compiled policy, and names the rule that decided. */
export function explain(registry: Registry, question: ExplainQuestion): Explanation {
  const policy = policyOf(registry);
  const subject = subjectOf(registry, question);
  const decision = question.object
    ? policy.decide(subject, question.backend, question.object)
    : backendDecision(registry.policies, policy, subject, question.backend);
  return { allowed: decision.allowed, rule: decision.rule, subject };
}

/** Stands beside a deny rule to tell whether that rule alone refuses a backend. */
const ALLOW_EVERYTHING: PolicyRule = Object.freeze({
  id: "",
  description: undefined,
  effect: "allow",
  subjects: ["*"],
  backends: ["*"],
  tools: undefined,
  prompts: undefined,
  resources: undefined,
  readOnly: false,
  source: { file: "", line: 0, col: 0 },
});

/**
 * `Policy.usesBackend()` answers yes or no; the rule behind the answer is found by asking the policy the
 * same question of single rules, so it always agrees with the engine: the first allow rule that grants
 * use on its own, or the first deny rule that refuses it even beside an allow of everything.
 */
function backendDecision(
  rules: readonly PolicyRule[],
  policy: Policy,
  subject: PolicySubject,
  backend: string,
): Decision {
  if (policy.usesBackend(subject, backend)) {
    const rule = rules.find((rule) =>
      rule.effect === "allow" && new Policy([rule]).usesBackend(subject, backend)
    );
    return { allowed: true, rule };
  }
  const rule = rules.find((rule) =>
    rule.effect === "deny" && !new Policy([rule, ALLOW_EVERYTHING]).usesBackend(subject, backend)
  );
  return { allowed: false, rule };
}
