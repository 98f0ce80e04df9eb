/** The command table: dispatches `gatehouse <command>` and maps failures to exit codes. */
import { ConfigError, formatProblem } from "../config/errors.ts";
import { StoreOpenError } from "../store/write_health.ts";
import { type CliIo, type Command, UsageError } from "./args.ts";
import { backupCommand } from "./backup.ts";
import { checkCommand } from "./check.ts";
import { clientsCommand } from "./clients.ts";
import { connectionsCommand } from "./connections.ts";
import { explainCommand } from "./explain.ts";
import { doctorCommand } from "./doctor.ts";
import { hashPasswordCommand } from "./hash_password.ts";
import { serveCommand } from "./serve.ts";
import { systemdUnitCommand } from "./systemd_unit.ts";
import { tokensCommand } from "./tokens.ts";
import { versionCommand } from "./version.ts";

export const COMMANDS: readonly Command[] = [
  serveCommand,
  checkCommand,
  explainCommand,
  doctorCommand,
  backupCommand,
  clientsCommand,
  tokensCommand,
  connectionsCommand,
  hashPasswordCommand,
  systemdUnitCommand,
  versionCommand,
];

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
  if (first === "--version") return await versionCommand.run([], io);
  const named = first !== undefined && !first.startsWith("-");
  const command = named ? COMMANDS.find((candidate) => candidate.name === first) : serveCommand;
  if (!command) {
    io.stderr(`gatehouse: unknown command '${first}'\n\n${usage()}\n`);
    return EXIT.user;
  }
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
        `gatehouse ${command.name}: ${error.message}\nRun "gatehouse ${command.name} --help" for usage.\n`,
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
      io.stderr(`gatehouse ${command.name}: ${error.message}\n`);
      return EXIT.user;
    }
    io.stderr(
      `gatehouse ${command.name}: internal error: ${
        error instanceof Error ? error.message : String(error)
      }\n`,
    );
    return EXIT.internal;
  }
}
