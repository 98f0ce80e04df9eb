/**
 * The command table: dispatches `gatehouse <command>` and maps failures to exit codes. A command's module
 * is imported only when that command runs (or shows its help), so `serve` never loads the others.
 */
import { ConfigError, formatProblem } from "../config/errors.ts";
import { StoreOpenError } from "../store/write_health.ts";
import { type CliIo, type Command, UsageError } from "./args.ts";

/** A row of the command table: what `--help` lists, and how to load the command. */
export interface CommandEntry {
  readonly name: string;
  readonly summary: string;
  /** Imports the command's module; a literal specifier, so `deno compile` still bundles it. */
  load(): Promise<Command>;
}

export const COMMANDS: readonly CommandEntry[] = [
  {
    name: "serve",
    summary: "Run the gateway (the default command)",
    load: async () => (await import("./serve.ts")).serveCommand,
  },
  {
    name: "check",
    summary: "Validate a registry and its policies without starting",
    load: async () => (await import("./check.ts")).checkCommand,
  },
  {
    name: "explain",
    summary: "Say whether a user may use a backend, tool, prompt or resource, and which rule decides",
    load: async () => (await import("./explain.ts")).explainCommand,
  },
  {
    name: "doctor",
    summary: "Check a deployment: public URL, backends, services, data directory",
    load: async () => (await import("./doctor.ts")).doctorCommand,
  },
  {
    name: "backup",
    summary: "Copy the store consistently, also while the gateway serves",
    load: async () => (await import("./backup.ts")).backupCommand,
  },
  {
    name: "clients",
    summary: "List, show or revoke the OAuth clients of the store and the registry",
    load: async () => (await import("./clients.ts")).clientsCommand,
  },
  {
    name: "tokens",
    summary: "Revoke every token of a user or of a client",
    load: async () => (await import("./tokens.ts")).tokensCommand,
  },
  {
    name: "keys",
    summary: "List or rotate the signing keys of replicas on PostgreSQL",
    load: async () => (await import("./keys.ts")).keysCommand,
  },
  {
    name: "connections",
    summary: "List or revoke users' third-party service tokens",
    load: async () => (await import("./connections.ts")).connectionsCommand,
  },
  {
    name: "hash-password",
    summary: "Read a password from stdin and print its argon2id hash",
    load: async () => (await import("./hash_password.ts")).hashPasswordCommand,
  },
  {
    name: "systemd-unit",
    summary: "Print a hardened systemd unit",
    load: async () => (await import("./systemd_unit.ts")).systemdUnitCommand,
  },
  {
    name: "version",
    summary: "Print the version",
    load: async () => (await import("./version.ts")).versionCommand,
  },
];

/** The command run when the command line names none (or starts with an option). */
const DEFAULT_COMMAND = "serve";

export const EXIT = Object.freeze({ ok: 0, user: 1, internal: 2 });

function usage(): string {
  const width = Math.max(...COMMANDS.map((command) => command.name.length));
  return `Usage: gatehouse <command> [options]

Gatehouse puts OAuth in front of MCP servers.

Commands:
${COMMANDS.map((command) => `  ${command.name.padEnd(width)}  ${command.summary}`).join("\n")}

Run "gatehouse <command> --help" for a command's options. Without a command, gatehouse serves.`;
}

const defaultIo: CliIo = {
  stdout: (text) => Deno.stdout.writeSync(new TextEncoder().encode(text)),
  stderr: (text) => Deno.stderr.writeSync(new TextEncoder().encode(text)),
};

/** Runs the command line; returns the exit code: 0 ok, 1 user error, 2 internal error. */
export async function runCli(args: string[], io: CliIo = defaultIo): Promise<number> {
  const [first, ...rest] = args;
  if (first === "--help" || first === "-h" || first === "help") {
    io.stdout(`${usage()}\n`);
    return EXIT.ok;
  }
  if (first === "--version") return await runCli(["version"], io);
  const named = first !== undefined && !first.startsWith("-");
  const wanted = named ? first : DEFAULT_COMMAND;
  const entry = COMMANDS.find((candidate) => candidate.name === wanted);
  if (!entry) {
    io.stderr(`gatehouse: unknown command '${first}'\n\n${usage()}\n`);
    return EXIT.user;
  }
  const command = await entry.load();
  const commandArgs = named ? rest : args;
  if (commandArgs.includes("--help") || commandArgs.includes("-h")) {
    io.stdout(`${command.help}\n`);
    return EXIT.ok;
  }
  try {
    return await command.run(commandArgs, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr(
        `gatehouse ${entry.name}: ${error.message}\nRun "gatehouse ${entry.name} --help" for usage.\n`,
      );
      return EXIT.user;
    }
    if (error instanceof ConfigError) {
      for (const problem of error.problems) io.stderr(`${formatProblem(problem)}\n`);
      return EXIT.user;
    }
    // A data directory that is read-only, full or not this user's: the operator's to fix.
    if (
      error instanceof Deno.errors.AddrInUse || error instanceof Deno.errors.PermissionDenied ||
      error instanceof StoreOpenError
    ) {
      io.stderr(`gatehouse ${entry.name}: ${error.message}\n`);
      return EXIT.user;
    }
    io.stderr(
      `gatehouse ${entry.name}: internal error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return EXIT.internal;
  }
}
