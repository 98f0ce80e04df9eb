/**
 * `gatehouse explain`: says which policy rule decides a user's access to a backend, tool, prompt or resource.
 */
import { join } from "node:path";
import { ConfigError, formatLocation } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import { closestName } from "../config/references.ts";
import type { Registry } from "../config/types.ts";
import { explain, type Explanation, registryKnowsUser, userIdsNamed } from "../policy/explain.ts";
import type { PolicyObject } from "../policy/policy.ts";
import { findLocalUser } from "../store/local_users.ts";
import { findProviderAccountId } from "../store/provider_accounts.ts";
import { openConfiguredStore } from "../store/open.ts";
import { redactedUrl } from "../store/postgres/store.ts";
import { DATABASE_FILE } from "../store/store.ts";
import { type Command, parseCommandArgs, UsageError } from "./args.ts";

/** `allow: rule ID (file:line:col)`, `deny: rule ID (...)` or the default deny: the first word is the answer. */
export function formatExplanation({ allowed, rule }: Explanation): string {
  const answer = allowed ? "allow" : "deny";
  if (!rule) return `${answer}: no rule allows it (nothing allowed means denied)`;
  return `${answer}: rule ${rule.id} (${formatLocation(rule.source)})`;
}

/** A question about something the registry does not have: exit 1, without pointing at --help. */
class ExplainError extends Error {
  override readonly name = "ExplainError";
}

/** The one object asked about, if any; at most one of --tool, --prompt and --resource. */
function objectOf(values: {
  tool?: string;
  "read-only"?: boolean;
  prompt?: string;
  resource?: string;
}): PolicyObject | undefined {
  const given = (["tool", "prompt", "resource"] as const).filter((kind) => values[kind] !== undefined);
  if (given.length > 1) throw new UsageError(`Give only one of --tool, --prompt and --resource`);
  if (values["read-only"] && values.tool === undefined) throw new UsageError("--read-only needs --tool");
  for (const kind of given) {
    if (values[kind] === "") throw new UsageError(`--${kind} must not be empty`);
  }
  if (values.tool !== undefined) {
    return { kind: "tool", name: values.tool, readOnly: values["read-only"] ?? false };
  }
  if (values.prompt !== undefined) return { kind: "prompt", name: values.prompt };
  if (values.resource !== undefined) return { kind: "resource", uri: values.resource };
  return undefined;
}

/**
 * The provider a user signed in with: users of a provider have ids `provider:login`, so the id names it.
 * Throws when the id, --provider and the registry disagree.
 */
function providerOf(registry: Registry, user: string, given: string | undefined): string | undefined {
  const providers = registry.login.providers;
  const known = (name: string) => Object.hasOwn(providers, name);
  const separator = user.indexOf(":");
  const fromId = separator > 0 ? user.slice(0, separator) : undefined;
  if (given !== undefined && !known(given)) {
    throw new ExplainError(
      `unknown provider "${given}": the registry defines ${listOf(Object.keys(providers))}`,
    );
  }
  if (fromId !== undefined && !known(fromId)) {
    throw new ExplainError(
      `user "${user}" would sign in with provider "${fromId}", which the registry does not define`,
    );
  }
  if (given !== undefined && fromId !== given) {
    throw new ExplainError(
      `user "${user}" cannot have signed in with provider "${given}": its users' ids look like "${given}:LOGIN"`,
    );
  }
  return fromId;
}

/**
 * Whether the store in `dataDir` has an account with this id (the first-start admin, or a provider account
 * that signed in), or why it cannot tell. A store that does not exist has no accounts; none is created.
 */
async function storeAccount(
  gateway: Registry["gateway"],
  user: string,
): Promise<"found" | "absent" | "no store" | { unread: string }> {
  if (gateway.store === undefined) {
    try {
      Deno.statSync(join(gateway.dataDir, DATABASE_FILE));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return "no store";
      return { unread: error instanceof Error ? error.message : String(error) };
    }
  }
  try {
    const store = await openConfiguredStore(gateway);
    try {
      const found = findLocalUser(store, user) ?? findProviderAccountId(store, user);
      return found === undefined ? "absent" : "found";
    } finally {
      store.close();
    }
  } catch (error) {
    return { unread: error instanceof Error ? error.message : String(error) };
  }
}

/** A warning when the user exists nowhere: not in the registry, and no account in the store. */
async function unknownUserWarning(registry: Registry, user: string): Promise<string | undefined> {
  if (registryKnowsUser(registry, user)) return undefined;
  const account = await storeAccount(registry.gateway, user);
  if (account === "found") return undefined;
  const store = registry.gateway.store === undefined
    ? join(registry.gateway.dataDir, DATABASE_FILE)
    : redactedUrl(registry.gateway.store);
  const inStore = account === "absent"
    ? `no account in the store (${store})`
    : account === "no store"
    ? `no store yet (${store})`
    : `the store could not be read (${account.unread})`;
  const closest = closestName(user, userIdsNamed(registry));
  return `warning: user "${user}" is unknown: not in login.users, named by no user: subject or client, and ` +
    `${inStore}; ${closest === undefined ? "check the spelling" : `did you mean "${closest}"?`}`;
}

const listOf = (names: readonly string[]) =>
  names.length === 0 ? "none" : names.map((name) => `"${name}"`).join(", ");

export const explainCommand: Command = {
  help: `Usage: gatehouse explain [--registry PATH] --user ID [--group G ...] [--client ID] [--provider NAME]
                         --backend B [--tool T [--read-only] | --prompt P | --resource URI]

Says whether the rules of PATH (default: ./registry.yaml) and of its policies directory let a user use
a tool, prompt or resource of a backend, and which rule decides. The first word is the answer:

  allow: rule everyone-everything (registry.yaml:19:5)
  deny: rule no-admin-tools (policies/example.yaml:5:5)
  deny: no rule allows it (nothing allowed means denied)

Without --tool, --prompt or --resource, it says whether the user may use the backend at all (it is then
listed to them): the allow rule that grants it, or the deny rule for the whole backend that refuses it.

Options:
  --registry PATH   the registry file (default: ./registry.yaml)
  --data DIR        where \${secret:NAME} files are looked up (DIR/secrets/NAME), as for serve
  --user ID         the user id: a local user's name (their groups in login.users count too),
                    PROVIDER:LOGIN for a user of a login provider (github:octocat; PROVIDER:SUB for OIDC),
                    the user a client_credentials client acts as, or anonymous under auth: none
  --group G         a group of the user, besides those of login.users (repeat for more)
  --client ID       the OAuth client the user comes through
  --provider NAME   the login provider the user signed in with (default: PROVIDER of PROVIDER:LOGIN)
  --backend B       the backend, by its name under backends:
  --tool T          a tool, by the backend's own name for it (without the prefix)
  --read-only       the tool is annotated readOnlyHint (rules with read_only: true cover only those)
  --prompt P        a prompt, by the backend's own name for it
  --resource URI    a resource, by its URI
  -h, --help        show this help

Exit codes: 0 when it printed an answer, allow or deny; 1 for a mistake in the arguments or the registry.`,
  async run(args, io) {
    const { values } = parseCommandArgs(args, {
      registry: { type: "string" },
      data: { type: "string" },
      user: { type: "string" },
      group: { type: "string", multiple: true },
      client: { type: "string" },
      provider: { type: "string" },
      backend: { type: "string" },
      tool: { type: "string" },
      "read-only": { type: "boolean" },
      prompt: { type: "string" },
      resource: { type: "string" },
    });
    for (const option of ["user", "backend"] as const) {
      if (values[option] === undefined) throw new UsageError(`--${option} is required`);
    }
    for (const option of ["user", "backend", "client", "provider"] as const) {
      if (values[option] === "") throw new UsageError(`--${option} must not be empty`);
    }
    if (values.group?.includes("")) throw new UsageError("--group must not be empty");
    const object = objectOf(values);
    const user = values.user!;
    const backend = values.backend!;

    const result = await loadRegistry(values.registry ?? "registry.yaml", { dataDir: values.data });
    if (!result.ok) throw new ConfigError(result.problems);
    const { registry } = result;
    try {
      if (!Object.hasOwn(registry.backends, backend)) {
        throw new ExplainError(
          `unknown backend "${backend}": the registry defines ${listOf(Object.keys(registry.backends))}`,
        );
      }
      const explanation = explain(registry, {
        user,
        groups: values.group ?? [],
        clientId: values.client,
        provider: providerOf(registry, user, values.provider),
        backend,
        object,
      });
      const warning = await unknownUserWarning(registry, user);
      if (warning) io.stderr(`gatehouse explain: ${warning}\n`);
      io.stdout(`${formatExplanation(explanation)}\n`);
      return 0;
    } catch (error) {
      if (!(error instanceof ExplainError)) throw error;
      io.stderr(`gatehouse explain: ${error.message}\n`);
      return 1;
    }
  },
};
