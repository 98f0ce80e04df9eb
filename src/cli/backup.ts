/** `gatehouse backup`: a consistent copy of the SQLite store, taken while the gateway serves. */
import { join, resolve } from "node:path";
import { ConfigError } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import { backupDatabase } from "../store/backup.ts";
import { redactedUrl } from "../store/postgres/store.ts";
import { DATABASE_FILE } from "../store/store.ts";
import { type Command, parseCommandArgs, UsageError } from "./args.ts";

export const backupCommand: Command = {
  help: `Usage: gatehouse backup FILE [--data DIR] [--registry PATH]

Copies the SQLite store (gatehouse.db in the data directory) to FILE with SQLite's online backup: one
consistent snapshot, taken beside a running gateway without stopping it. FILE is created with mode 0600
and never overwritten: if it exists, nothing is written and the exit code is 1. The copy is a single
file that passed integrity_check; to restore it, stop the gateway and put it in place of gatehouse.db
(removing gatehouse.db-wal and gatehouse.db-shm).

When the registry names a PostgreSQL store (gateway.store), this command copies nothing and says so:
back that database up with PostgreSQL's own tools, while the replicas serve, for example
  pg_dump --format=custom --file=FILE "$DATABASE_URL"
and restore it with pg_restore into an empty database, all replicas stopped. (The signing key is in that
database, sealed with gateway.vault_key: keep the vault key with the backup, apart from it.)

The store holds clients, grants, refresh tokens, sessions, consents, the audit log and users' third-party
tokens (encrypted). The keys are files beside it (signing-key.json, vault.key unless gateway.vault_key is
set, secrets/): back those up too; they do not change once made.

Options:
  --data DIR        the data directory (default: gateway.data_dir of the registry)
  --registry PATH   the registry, read for its data_dir when --data is not given (default: ./registry.yaml)
  -h, --help        show this help`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(
      args,
      { data: { type: "string" }, registry: { type: "string" } },
      { max: 1 },
    );
    const target = positionals[0];
    if (target === undefined) throw new UsageError("Missing FILE: where to write the copy");
    let dataDir: string;
    if (values.data !== undefined) {
      dataDir = resolve(values.data);
    } else {
      const loaded = await loadRegistry(values.registry ?? "registry.yaml");
      if (!loaded.ok) throw new ConfigError(loaded.problems);
      if (loaded.registry.gateway.store !== undefined) {
        io.stderr(
          `gatehouse backup: the store is PostgreSQL (${redactedUrl(loaded.registry.gateway.store)}); ` +
            `back it up with pg_dump, e.g. pg_dump --format=custom --file=${target} "$DATABASE_URL" ` +
            `(see gatehouse backup --help)\n`,
        );
        return 1;
      }
      dataDir = loaded.registry.gateway.dataDir;
    }
    let written;
    try {
      written = await backupDatabase(join(dataDir, DATABASE_FILE), resolve(target));
    } catch (error) {
      if (error instanceof Deno.errors.AlreadyExists || error instanceof Deno.errors.NotFound) {
        io.stderr(`gatehouse backup: ${error.message}\n`);
        return 1;
      }
      throw error;
    }
    io.stdout(
      `${target}: ${written.sizeBytes} bytes, schema version ${written.schemaVersion}, ` +
        `a consistent copy of ${join(dataDir, DATABASE_FILE)}\n`,
    );
    return 0;
  },
};
