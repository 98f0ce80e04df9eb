/** `gatehouse keys`: lists the token signing keys of replicas on PostgreSQL, and rotates them. */
import { rotateSharedSigningKey, SharedSigningKeys } from "../oauth/shared_keys.ts";
import { openVault } from "../services/vault.ts";
import { allSigningKeys } from "../store/signing_keys.ts";
import { type Command, parseCommandArgs } from "./args.ts";
import {
  type AdminContext,
  AdminError,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  subcommandOf,
  withStore,
} from "./_admin.ts";

function requireShared({ store }: AdminContext): void {
  if (!store.shared) {
    throw new AdminError(
      "Signing keys are rotated on a shared store (gateway.store, PostgreSQL); with SQLite the key is " +
        "signing-key.json in the data directory",
    );
  }
}

function list(context: AdminContext): string {
  requireShared(context);
  const keys = allSigningKeys(context.store);
  if (keys.length === 0) return "No signing key yet: the first replica to start makes one\n";
  const rows = keys.map((key) =>
    `${key.kid}  made ${new Date(key.createdAt).toISOString()}  ${
      key.retiredAt === undefined ? "signs" : `retired ${new Date(key.retiredAt).toISOString()}`
    }`
  );
  return rows.join("\n") + "\n";
}

async function rotate(context: AdminContext): Promise<string> {
  requireShared(context);
  const { registry, store, audit } = context;
  const vault = await openVault(registry.gateway.dataDir, registry.gateway.vaultKey);
  // Opening the set first checks that this vault key opens the keys already there.
  await SharedSigningKeys.open(store, vault, { retainMs: () => 0 });
  const kid = await rotateSharedSigningKey(store, vault);
  audit.record("signing_key_rotated", undefined, { by: "cli", kid });
  return `New signing key ${kid}: every replica signs with it from now on; the previous key verifies ` +
    `the tokens it signed until they expire (gateway.access_token_ttl)\n`;
}

export const keysCommand: Command = {
  help: `Usage: gatehouse keys list [--registry PATH] [--data DIR]
       gatehouse keys rotate [--registry PATH] [--data DIR]

The token signing keys of replicas on one PostgreSQL store (gateway.store), kept there sealed with
gateway.vault_key. "list" shows each key's id (kid), when it was made and whether it signs or was retired.
"rotate" makes a new key the one that signs: the replicas hear of it at once through the database and
sign with it; the previous key stays in /jwks.json and verifies the tokens it signed until they expire,
so nobody is signed out. Run it on any machine with the registry (it needs the store URL and the vault key).

Options:
${STORE_OPTIONS_HELP}
  -h, --help        show this help

Exit codes: 0 done; 1 a mistake in the arguments, a SQLite store, or a registry with problems; 2 an
internal error.`,
  async run(args, io) {
    const { subcommand, rest } = subcommandOf(args, ["list", "rotate"] as const);
    const { values } = parseCommandArgs(rest, STORE_OPTIONS);
    return await withStore("keys", values, io, async (context) => {
      io.stdout(subcommand === "list" ? list(context) : await rotate(context));
      return 0;
    });
  },
};
