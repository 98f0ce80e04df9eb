/** Command-line parsing shared by every subcommand: flags, usage errors, and the output streams. */
import { parseArgs, type ParseArgsConfig } from "node:util";

/** A mistake in how a command was called; exits 1 with the message and a pointer to --help. */
export class UsageError extends Error {
  readonly code = "ERR_USAGE";
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

type Options = NonNullable<ParseArgsConfig["options"]>;

/** Parses a command's arguments strictly; `--help` is always accepted. */
export function parseCommandArgs<T extends Options>(
  args: string[],
  options: T,
  positionals: { max: number } = { max: 0 },
) {
  let parsed;
  try {
    parsed = parseArgs({
      args,
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: positionals.max > 0,
      strict: true,
    });
  } catch (error) {
    throw new UsageError(
      error instanceof Error ? error.message.replace(/\. To specify a positional.*$/s, "") : String(error),
    );
  }
  if (parsed.positionals.length > positionals.max) {
    throw new UsageError(`Unexpected argument '${parsed.positionals[positionals.max]}'`);
  }
  return parsed;
}

/** A command of the `gatehouse` CLI, as its module exports it (its name and summary are in the command table). */
export interface Command {
  readonly help: string;
  run(args: string[], io: CliIo): Promise<number>;
}

/** Where a command reads and writes; replaced in tests. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
}
