import { DatabaseSync } from "node:sqlite";
import { join } from "node:path";
import { MIGRATIONS } from "../store/migrations.ts";
import { DATABASE_FILE } from "../store/store.ts";
import type { CheckRow } from "./checks.ts";

/** `0755`: the permission bits of a mode, as chmod takes them. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/**
 * The data directory holds the signing key, the vault key, secrets and the store: it must be a directory
 * only its owner can enter (0700) and that the gateway can write. A missing one is made on first start.
 */
export async function checkDataDir(dataDir: string): Promise<CheckRow[]> {
  const row = (result: CheckRow["result"], detail: string): CheckRow => ({
    check: "data_dir",
    target: dataDir,
    result,
    detail,
  });
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(dataDir);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return [row("warn", "does not exist yet; the first start creates it with mode 0700")];
    }
    return [row("FAIL", `cannot be read: ${errorText(error)}`)];
  }
  if (!info.isDirectory) return [row("FAIL", "is not a directory")];

  const problems: string[] = [];
  const facts: string[] = [];
  if (info.mode !== null) {
    const mode = formatMode(info.mode);
    if ((info.mode & 0o077) !== 0) {
      problems.push(`mode ${mode} lets other users in; it holds keys and secrets: chmod 700 ${dataDir}`);
    } else {
      facts.push(`mode ${mode}`);
    }
  }
  try {
    const probe = await Deno.makeTempFile({ dir: dataDir, prefix: ".gatehouse-doctor-" });
    await Deno.remove(probe);
    facts.push("writable");
  } catch (error) {
    problems.push(`not writable by this user: ${errorText(error)}`);
  }
  return [
    problems.length > 0 ? row("FAIL", problems.join("; ")) : row("ok", facts.join(", ")),
    checkDatabase(join(dataDir, DATABASE_FILE)),
  ];
}

/**
 * The store, when there is one: owner-only (0600), and a SQLite database this gatehouse can open. It is
 * opened read-only, so this works beside a running gateway.
 */
export function checkDatabase(path: string): CheckRow {
  const row = (result: CheckRow["result"], detail: string): CheckRow => ({
    check: "database",
    target: path,
    result,
    detail,
  });
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) {
      return row("ok", "not created yet; the first start creates it");
    }
    return row("FAIL", `cannot be read: ${errorText(error)}`);
  }
  if (!info.isFile) return row("FAIL", "is not a file");
  if (info.mode !== null && (info.mode & 0o077) !== 0) {
    return row("FAIL", `mode ${formatMode(info.mode)} lets other users read it: chmod 600 ${path}`);
  }
  let db: DatabaseSync | undefined;
  try {
    db = new DatabaseSync(path, { readOnly: true });
    db.exec("PRAGMA busy_timeout = 5000");
    const check = db.prepare("PRAGMA quick_check").get() as { quick_check: string } | undefined;
    const version = (db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined)
      ?.user_version ?? 0;
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    if (check?.quick_check !== "ok") return row("FAIL", `damaged: quick_check says ${check?.quick_check}`);
    if (version > latest) {
      return row("FAIL", `schema version ${version} is newer than this gatehouse knows (${latest}): upgrade`);
    }
    const mode = info.mode === null ? "" : `mode ${formatMode(info.mode)}, `;
    const migration = version < latest ? ` (the next start migrates it to ${latest})` : "";
    return row("ok", `${mode}opens, quick_check ok, schema version ${version}${migration}`);
  } catch (error) {
    return row("FAIL", `cannot be opened: ${errorText(error)}`);
  } finally {
    db?.close();
  }
}
