/**
 * What the administration commands (`clients`, `tokens`, `connections`) share: the registry and the store
 * of a stopped or running gateway, their errors, and how they print.
 */
import { join } from "node:path";
import { AuditLog } from "../audit/audit.ts";
import { ConfigError } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import type { Registry } from "../config/types.ts";
import { openConfiguredStore } from "../store/open.ts";
import { DATABASE_FILE, type Store } from "../store/store.ts";
import { type CliIo, UsageError } from "./args.ts";

/** Something the store or registry does not have (an unknown id, no database): exit 1, no pointer to --help. */
export class AdminError extends Error {
  override readonly name = "AdminError";
}

/** The options every administration command takes. */
export const STORE_OPTIONS = {
  registry: { type: "string" },
  data: { type: "string" },
} as const;

export const STORE_OPTIONS_HELP = `  --registry PATH   the registry file (default: ./registry.yaml)
  --data DIR        the data directory (default: gateway.data_dir of the registry), as for serve`;

/** The registry and the opened store of a gateway, and its audit log. */
export interface AdminContext {
  readonly registry: Registry;
  readonly store: Store;
  readonly audit: AuditLog;
}

/**
 * Loads the registry (a `ConfigError` on problems) and opens the store of its data directory, which must
 * exist: an administration command never creates a store. SQLite's WAL mode lets it read and write while
 * the gateway runs.
 */
async function openAdminContext(values: { registry?: string; data?: string }): Promise<AdminContext> {
  const result = await loadRegistry(values.registry ?? "registry.yaml", { dataDir: values.data });
  if (!result.ok) throw new ConfigError(result.problems);
  const { registry } = result;
  if (registry.gateway.store === undefined) {
    const database = join(registry.gateway.dataDir, DATABASE_FILE);
    try {
      if (!Deno.statSync(database).isFile) throw new Deno.errors.NotFound();
    } catch (error) {
      if (!(error instanceof Deno.errors.NotFound)) throw error;
      throw new AdminError(
        `Cannot open the store: "${database}" does not exist (has the gateway started with this data directory? --data DIR names another)`,
      );
    }
  }
  // On PostgreSQL, what the command changes is announced to the replicas (revocations, for one).
  const store = await openConfiguredStore(registry.gateway);
  return { registry, store, audit: new AuditLog(store) };
}

/**
 * Runs `work` with the gateway's registry and store, closing the store afterwards; an `AdminError` is
 * printed as `gatehouse COMMAND: message` and exits 1.
 */
export async function withStore(
  command: string,
  values: { registry?: string; data?: string },
  io: CliIo,
  work: (context: AdminContext) => Promise<number> | number,
): Promise<number> {
  let context: AdminContext | undefined;
  try {
    context = await openAdminContext(values);
    return await work(context);
  } catch (error) {
    if (!(error instanceof AdminError)) throw error;
    io.stderr(`gatehouse ${command}: ${error.message}\n`);
    return 1;
  } finally {
    context?.store.close();
  }
}

/** Splits `SUBCOMMAND ARGS...`; a missing or unknown subcommand is a usage error. */
export function subcommandOf<T extends string>(
  args: string[],
  names: readonly T[],
): { subcommand: T; rest: string[] } {
  const [first, ...rest] = args;
  const list = names.map((name) => `"${name}"`).join(", ");
  if (first === undefined || first.startsWith("-")) throw new UsageError(`Give a subcommand: ${list}`);
  if (!(names as readonly string[]).includes(first)) {
    throw new UsageError(`Unknown subcommand "${printable(first)}": expected ${list}`);
  }
  return { subcommand: first as T, rest };
}

/** A required option's value, not empty. */
export function required(values: Record<string, unknown>, option: string): string {
  const value = values[option];
  if (value === undefined) throw new UsageError(`--${option} is required`);
  if (value === "") throw new UsageError(`--${option} must not be empty`);
  return String(value);
}

/**
 * Text from the store made safe for a terminal: control and format characters (escape sequences, bidi
 * overrides) are shown as `\u{...}`. Client names and redirect URIs come from anyone who can register.
 */
export function printable(text: string): string {
  return text.replace(
    /[\p{Cc}\p{Cf}]/gu,
    (char) => `\\u{${char.codePointAt(0)!.toString(16)}}`,
  );
}

/** An epoch-milliseconds time as UTC ISO 8601 to the second, or "-". */
export function formatTime(ms: number | undefined): string {
  return ms === undefined ? "-" : new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** The same time for JSON output: ISO 8601, or null when unknown. */
export function isoTime(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}

/** Rows under a header, in columns two spaces apart; the last column is not padded. */
export function formatTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const cells = [header, ...rows].map((row) => row.map((cell) => printable(cell)));
  const widths = header.map((_, column) => Math.max(...cells.map((row) => [...(row[column] ?? "")].length)));
  return cells.map((row) =>
    row.map((cell, column) =>
      column === row.length - 1 ? cell : cell + " ".repeat(widths[column]! - [...cell].length)
    ).join("  ").trimEnd() + "\n"
  ).join("");
}

/** `1 grant`, `2 grants`. */
export function count(amount: number, noun: string, plural = `${noun}s`): string {
  return `${amount} ${amount === 1 ? noun : plural}`;
}

/** JSON output: indented, one trailing newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}
