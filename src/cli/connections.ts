/** `gatehouse connections`: lists and revokes users' third-party service connections. */
import { remoteOAuthBackendOf } from "../config/types.ts";
import { join } from "node:path";
import { createLogger } from "../log/logger.ts";
import { listConnections, ServiceConnections } from "../services/connections.ts";
import { openVault, type Vault, VAULT_KEY_FILE } from "../services/vault.ts";
import { type CliIo, type Command, parseCommandArgs } from "./args.ts";
import {
  type AdminContext,
  AdminError,
  formatJson,
  formatTable,
  formatTime,
  isoTime,
  printable,
  required,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  subcommandOf,
  withStore,
} from "./_admin.ts";

function list({ store }: AdminContext, userId: string | undefined, json: boolean): string {
  const connections = listConnections(store, userId);
  if (json) {
    return formatJson(connections.map((connection) => ({
      user: connection.userId,
      service: connection.service,
      scope: connection.scope,
      expires_at: isoTime(connection.expiresAt),
      updated_at: isoTime(connection.updatedAt),
    })));
  }
  return formatTable(
    ["USER", "SERVICE", "SCOPE", "EXPIRES", "UPDATED"],
    connections.map((connection) => [
      connection.userId,
      connection.service,
      connection.scope || "-",
      formatTime(connection.expiresAt),
      formatTime(connection.updatedAt),
    ]),
  );
}

/**
 * The gateway's vault, when its key is at hand (configured, or generated into the data directory). Never
 * generates one: without a key, stored tokens cannot be opened, so they cannot be revoked at the service.
 */
async function vaultOf({ registry }: AdminContext): Promise<Vault | undefined> {
  const { dataDir, vaultKey } = registry.gateway;
  if (vaultKey === undefined) {
    try {
      Deno.statSync(join(dataDir, VAULT_KEY_FILE));
    } catch (error) {
      if (error instanceof Deno.errors.NotFound) return undefined;
      throw error;
    }
  }
  return await openVault(dataDir, vaultKey);
}

const NO_VAULT: Vault = {
  seal: () => Promise.reject(new Error("Cannot seal: no vault key")),
  open: () => Promise.reject(new Error("Cannot open the stored token: no vault key in the data directory")),
};

async function revoke(context: AdminContext, userId: string, service: string, io: CliIo): Promise<string> {
  const { store, registry, audit } = context;
  if (!listConnections(store, userId).some((connection) => connection.service === service)) {
    throw new AdminError(
      `user "${printable(userId)}" has no stored token for service "${
        printable(service)
      }" (see "gatehouse connections list --user ${printable(userId)}")`,
    );
  }
  const vault = await vaultOf(context);
  // Warnings (a revocation the service refused) go to stderr; the logger redacts secrets by construction.
  const log = createLogger({
    level: "warn",
    write: (line) => {
      const entry = JSON.parse(line) as { msg: string; error?: { message?: string } };
      io.stderr(
        `gatehouse connections: warning: ${entry.msg}${
          entry.error?.message ? `: ${entry.error.message}` : ""
        }\n`,
      );
    },
  });
  // The gateway's own disconnect (the Disconnect button of /connections), without a server: it deletes
  // the token, then revokes it at the service (RFC 7009) when the service has a revocation endpoint.
  const connections = new ServiceConnections({
    store,
    registry: () => registry,
    vault: vault ?? NO_VAULT,
    log,
    baseUrl: () => registry.gateway.publicUrl ?? "",
  });
  const outcome = await connections.disconnect(userId, service);
  audit.record("admin_revoke", userId, { by: "cli", target: "connection", service, outcome });
  const deleted = `Deleted the token of user ${printable(userId)} for service ${printable(service)}`;
  switch (outcome) {
    case "revoked":
      return `${deleted} and revoked it at the service.\n`;
    case "revocation_not_offered":
      return Object.hasOwn(registry.services, service) || remoteOAuthBackendOf(service) !== undefined
        ? `${deleted}. The service offers no token revocation: it stays valid there until it expires or the user revokes it.\n`
        : `${deleted}. The registry no longer defines the service, so it was not revoked there.\n`;
    case "revocation_failed":
      return `${deleted}, but revoking it at the service failed${
        vault ? "" : " (no vault key to open it with)"
      }: it may stay valid there until it expires.\n`;
    case "not_connected":
      // Deleted meanwhile, by the user or a refresh the service refused.
      return `${deleted} (it was already gone).\n`;
  }
}

export const connectionsCommand: Command = {
  help: `Usage: gatehouse connections list [--user ID] [--json] [--registry PATH] [--data DIR]
       gatehouse connections revoke --user ID --service S [--registry PATH] [--data DIR]

Users' connections to third-party services (services: in the registry): the tokens they granted through a
consent link, kept encrypted in the store of the data directory. Works on a stopped or a running gateway.

  list          every stored token's user, service, scope, expiry and last update (never the token);
                --user ID lists one user's
  revoke        deletes one user's token for a service: the next call that needs it asks for consent again.
                When the service has a revocation endpoint (RFC 7009), the token is revoked there too

Options:
  --user ID         the user id (alice, github:octocat)
  --service S       the service, by its name under services:
  --json            list: print JSON instead of a table
${STORE_OPTIONS_HELP}
  -h, --help        show this help

Exit codes: 0 done; 1 a mistake in the arguments, no such token, no store in the data directory or a
registry with problems; 2 an internal error.`,
  async run(args, io) {
    const { subcommand, rest } = subcommandOf(args, ["list", "revoke"] as const);
    if (subcommand === "list") {
      const { values } = parseCommandArgs(rest, {
        ...STORE_OPTIONS,
        user: { type: "string" },
        json: { type: "boolean" },
      });
      if (values.user === "") required(values, "user");
      return await withStore("connections", values, io, (context) => {
        io.stdout(list(context, values.user, values.json ?? false));
        return 0;
      });
    }
    const { values } = parseCommandArgs(rest, {
      ...STORE_OPTIONS,
      user: { type: "string" },
      service: { type: "string" },
    });
    const userId = required(values, "user");
    const service = required(values, "service");
    return await withStore("connections", values, io, async (context) => {
      io.stdout(await revoke(context, userId, service, io));
      return 0;
    });
  },
};
