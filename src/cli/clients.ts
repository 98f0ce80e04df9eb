/**
 * `gatehouse clients`: lists and removes the OAuth clients the store knows (registered, static, metadata documents).
 */
import type { Registry } from "../config/types.ts";
import { activeGrants, consentsOf, forgetConsents, revokeGrants } from "../oauth/grants.ts";
import { ClientDirectory, type KnownClient } from "../oauth/clients.ts";
import type { Store } from "../store/store.ts";
import { type Command, parseCommandArgs, UsageError } from "./args.ts";
import {
  type AdminContext,
  AdminError,
  count,
  formatJson,
  formatTable,
  formatTime,
  isoTime,
  printable,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  subcommandOf,
  withStore,
} from "./_admin.ts";

/** How a client came to be known: the registry's `clients:`, RFC 7591 registration, or its metadata document. */
export type ClientKind = "registry" | "dynamic" | "metadata_document";

const kindOf = (client: KnownClient): ClientKind => client.kind === "static" ? "registry" : client.kind;

/** Fields of stored metadata never shown, should one ever be stored (secrets are kept only as hashes). */
const HIDDEN_METADATA = /secret|hash|registration_access_token/i;

/** A client with what the store says of its use. */
interface ClientUse {
  readonly client: KnownClient;
  readonly lastUsedAt: number | undefined;
  readonly activeGrants: number;
}

/** The hosts of redirect URIs (a native app's URI has none: then the URI itself), without repeats. */
function redirectHosts(uris: readonly string[]): string {
  const hosts = uris.map((uri) => {
    try {
      return new URL(uri).host || uri;
    } catch {
      return uri;
    }
  });
  return [...new Set(hosts)].join(",") || "-";
}

function clientUses({ store, registry, audit }: AdminContext): ClientUse[] {
  const lastUsed = audit.lastTokenGrants();
  const grants = new Map<string, number>();
  for (const grant of activeGrants(store, Date.now())) {
    grants.set(grant.clientId, (grants.get(grant.clientId) ?? 0) + 1);
  }
  return new ClientDirectory(store, () => registry).known().map((client) => ({
    client,
    lastUsedAt: lastUsed.get(client.clientId),
    activeGrants: grants.get(client.clientId) ?? 0,
  }));
}

function list(context: AdminContext, json: boolean): string {
  const uses = clientUses(context);
  if (json) {
    return formatJson(uses.map(({ client, lastUsedAt, activeGrants }) => ({
      client_id: client.clientId,
      kind: kindOf(client),
      name: client.name,
      redirect_uris: client.redirectUris,
      created_at: isoTime(client.createdAt),
      last_used_at: isoTime(lastUsedAt),
      active_grants: activeGrants,
    })));
  }
  return formatTable(
    ["CLIENT ID", "KIND", "NAME", "REDIRECTS", "CREATED", "LAST USED", "GRANTS"],
    uses.map(({ client, lastUsedAt, activeGrants }) => [
      client.clientId,
      kindOf(client),
      client.name,
      redirectHosts(client.redirectUris),
      formatTime(client.createdAt),
      formatTime(lastUsedAt),
      String(activeGrants),
    ]),
  );
}

/** The client with this id, known to the registry or the store; else an `AdminError`. */
function knownClient(store: Store, registry: Registry, clientId: string): KnownClient {
  const client = new ClientDirectory(store, () => registry).known().find((known) =>
    known.clientId === clientId
  );
  if (!client) {
    throw new AdminError(
      `unknown client "${
        printable(clientId)
      }": neither the registry's clients: nor the store has it (see "gatehouse clients list")`,
    );
  }
  return client;
}

function show({ store, registry, audit }: AdminContext, clientId: string, json: boolean): string {
  const client = knownClient(store, registry, clientId);
  const now = Date.now();
  const grantsByUser = new Map<string, number>();
  for (const grant of activeGrants(store, now, { clientId })) {
    grantsByUser.set(grant.userId, (grantsByUser.get(grant.userId) ?? 0) + 1);
  }
  const consents = new Map(consentsOf(store, clientId).map((consent) => [consent.userId, consent.grantedAt]));
  const userIds = [...new Set([...grantsByUser.keys(), ...consents.keys()])].sort();
  const lastUsedAt = audit.lastTokenGrants().get(client.clientId);
  const metadata = Object.fromEntries(
    Object.entries(client.metadata ?? {}).filter(([field]) => !HIDDEN_METADATA.test(field)),
  );
  const details = {
    client_id: client.clientId,
    kind: kindOf(client),
    name: client.name,
    confidential: client.tokenEndpointAuthMethod !== "none",
    token_endpoint_auth_method: client.tokenEndpointAuthMethod,
    redirect_uris: client.redirectUris,
    grant_types: client.grantTypes,
    ...(client.kind === "static" ? { user: client.user, groups: client.groups } : { metadata }),
    created_at: isoTime(client.createdAt),
    last_used_at: isoTime(lastUsedAt),
    active_grants: [...grantsByUser.values()].reduce((sum, amount) => sum + amount, 0),
    users: userIds.map((user) => ({
      user,
      active_grants: grantsByUser.get(user) ?? 0,
      consented_at: isoTime(consents.get(user)),
    })),
  };
  if (json) return formatJson(details);
  const lines: [string, string][] = [
    ["client id", details.client_id],
    ["kind", details.kind],
    ["name", details.name],
    ["confidential", details.confidential ? "yes (it authenticates with a secret)" : "no (public, PKCE)"],
    ["token endpoint auth", details.token_endpoint_auth_method],
    ["redirect uris", details.redirect_uris.join(" ") || "-"],
    ["grant types", details.grant_types.join(" ")],
  ];
  if (client.kind === "static") {
    lines.push(["acts as user", client.user ?? "-"], ["groups", (client.groups ?? []).join(" ") || "-"]);
  } else {
    const shown = new Set([
      "client_id",
      "client_name",
      "redirect_uris",
      "grant_types",
      "token_endpoint_auth_method",
    ]);
    for (const [field, value] of Object.entries(metadata)) {
      if (shown.has(field)) continue;
      const text = typeof value === "string"
        ? value
        : Array.isArray(value)
        ? value.join(" ")
        : JSON.stringify(value);
      lines.push([field.replaceAll("_", " "), text]);
    }
  }
  lines.push(
    ["created", formatTime(client.createdAt)],
    ["last used", formatTime(lastUsedAt)],
    ["active grants", String(details.active_grants)],
  );
  const width = Math.max(...lines.map(([label]) => label.length));
  const field = ([label, value]: [string, string]) =>
    `${`${label}:`.padEnd(width + 1)}  ${printable(value)}\n`;
  const head = lines.map(field).join("");
  const table = userIds.length === 0
    ? "\nNo user has an active grant or a remembered consent.\n"
    : `\n${
      formatTable(
        ["USER", "GRANTS", "CONSENTED"],
        userIds.map((user) => [user, String(grantsByUser.get(user) ?? 0), formatTime(consents.get(user))]),
      )
    }`;
  return head + table;
}

function revoke({ store, registry, audit }: AdminContext, clientId: string): string {
  const client = knownClient(store, registry, clientId);
  const now = Date.now();
  const kind = kindOf(client);
  const { revoked, consents } = store.transaction(() => {
    const revoked = revokeGrants(store, { clientId }, now);
    const consents = kind === "registry"
      ? forgetConsents(store, clientId)
      : consentsOf(store, clientId).length;
    // RFC 7592 §2.3, as DELETE /register/{client_id} does: the client, its tokens and consents go.
    if (kind !== "registry") new ClientDirectory(store, () => registry).delete(clientId);
    return { revoked, consents };
  });
  audit.record("admin_revoke", clientId, {
    by: "cli",
    target: "client",
    kind,
    deleted: kind !== "registry",
    grants: revoked.grants,
    refresh_tokens: revoked.refreshTokens,
    access_tokens: revoked.accessTokens,
    pending_codes: revoked.pendingCodes,
    consents,
  });
  const name = printable(clientId === client.name ? clientId : `${clientId} (${client.name})`);
  const what = `${count(revoked.grants, "active grant")} (${count(revoked.refreshTokens, "refresh token")}, ${
    count(revoked.accessTokens, "access token")
  }), ${count(revoked.pendingCodes, "pending code")} and ${count(consents, "remembered consent")}`;
  const lines = kind === "registry"
    ? [
      `Revoked ${what} of client ${name}.`,
      "It is a registry client: it stays while the registry lists it under clients: (remove it there to delete it).",
    ]
    : [`Deleted client ${name} with ${what}.`];
  if (kind === "metadata_document") {
    lines.push(
      "Its client id is a metadata document URL: if the client comes back, the document is fetched again and each user must consent again.",
    );
  }
  return lines.map((line) => `${line}\n`).join("");
}

export const clientsCommand: Command = {
  help: `Usage: gatehouse clients list [--json] [--registry PATH] [--data DIR]
       gatehouse clients show ID [--json] [--registry PATH] [--data DIR]
       gatehouse clients revoke ID [--registry PATH] [--data DIR]

The OAuth clients a gateway knows: those registered dynamically (RFC 7591) or by a client ID metadata
document, kept in the store of the data directory, and the registry's clients:. Works on a stopped or a
running gateway; revocations take effect on its next request.

  list          every client: its id, kind (registry, dynamic or metadata_document), name, the hosts of its
                redirect URIs, when it was registered and last got a token, and its active grants (sign-ins
                whose refresh token or access tokens still work)
  show ID       one client: its metadata (never a secret), and the users with an active grant or a
                remembered consent
  revoke ID     deletes a dynamic or metadata-document client and revokes everything issued to it: its
                refresh tokens and access tokens, codes not exchanged yet, and users' consents. A registry
                client cannot be deleted here (remove it from registry.yaml): it loses the same but stays

Options:
  --json            list and show: print JSON instead of a table
${STORE_OPTIONS_HELP}
  -h, --help        show this help

Exit codes: 0 done; 1 a mistake in the arguments, an unknown client, no store in the data directory or a
registry with problems; 2 an internal error.`,
  async run(args, io) {
    const { subcommand, rest } = subcommandOf(args, ["list", "show", "revoke"] as const);
    if (subcommand === "list") {
      const { values } = parseCommandArgs(rest, { ...STORE_OPTIONS, json: { type: "boolean" } });
      return await withStore("clients", values, io, (context) => {
        io.stdout(list(context, values.json ?? false));
        return 0;
      });
    }
    const { values, positionals } = parseCommandArgs(
      rest,
      subcommand === "show" ? { ...STORE_OPTIONS, json: { type: "boolean" } } : STORE_OPTIONS,
      { max: 1 },
    );
    const clientId = positionals[0];
    if (!clientId) throw new UsageError(`Give the client id: gatehouse clients ${subcommand} ID`);
    return await withStore("clients", values, io, (context) => {
      io.stdout(
        subcommand === "show"
          ? show(context, clientId, (values as { json?: boolean }).json ?? false)
          : revoke(context, clientId),
      );
      return 0;
    });
  },
};
