// gatehouse doctor's data directory and store checks: private, writable by the serving user, space left.
import { join } from "node:path";
import { inspectDatabaseFile } from "../store/file_check.ts";
import { MIGRATIONS } from "../store/migrations.ts";
import { DATABASE_FILE } from "../store/store.ts";
import type { CheckRow } from "./verdict.ts";
import { judgeSpace, LOW_SPACE, spaceOf, type SpaceThresholds } from "./disk_space.ts";

/** `0755`: the permission bits of a mode, as chmod takes them. */
export function formatMode(mode: number): string {
  return `0${(mode & 0o777).toString(8).padStart(3, "0")}`;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** What `checkDataDir()` may be told; tests pass their own thresholds. */
export interface DataDirCheckOptions {
  /** Below these, free space on the data directory's file system is a warning (default 100 MiB, 5%). */
  lowSpace?: SpaceThresholds;
}

/**
 * The data directory holds the signing key, the vault key, secrets and the store: it must be a directory
 * only its owner can enter (0700) and that the gateway can write, on a file system with space left. The
 * gateway runs as the directory's owner, so when doctor runs as another user (root) the owner's rights are
 * checked from the modes and owners, and a read-only file system still shows in the write probe. A missing
 * directory is made on first start.
 */
export async function checkDataDir(dataDir: string, options: DataDirCheckOptions = {}): Promise<CheckRow[]> {
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
  const servingUid = info.uid;
  // Who doctor runs as, from the file it creates (Deno.uid() would need --allow-sys).
  let doctorUid: number | null = null;
  if (info.mode !== null) {
    const mode = formatMode(info.mode);
    if ((info.mode & 0o077) !== 0) {
      problems.push(`mode ${mode} lets other users in; it holds keys and secrets: chmod 700 ${dataDir}`);
    } else if ((info.mode & 0o300) !== 0o300) {
      problems.push(`mode ${mode} does not let its owner (who serves it) create files: chmod 700 ${dataDir}`);
    } else {
      facts.push(`mode ${mode}`);
    }
  }
  try {
    const probe = await Deno.makeTempFile({ dir: dataDir, prefix: ".gatehouse-doctor-" });
    try {
      doctorUid = (await Deno.stat(probe)).uid;
    } finally {
      await Deno.remove(probe);
    }
    facts.push("writable");
  } catch (error) {
    problems.push(
      (error as { code?: string }).code === "EROFS"
        ? "not writable: its file system is mounted read-only"
        : `not writable by this user: ${errorText(error)}`,
    );
  }
  if (servingUid !== null && doctorUid !== null && servingUid !== doctorUid) {
    facts.push(`owned by uid ${servingUid}, who should serve it (doctor runs as uid ${doctorUid})`);
  }

  let space: { result: CheckRow["result"]; detail: string };
  try {
    space = judgeSpace(await spaceOf(dataDir), options.lowSpace ?? LOW_SPACE);
  } catch (error) {
    space = { result: "warn", detail: `free space unknown: ${errorText(error)}` };
  }
  const dataDirRow = problems.length > 0
    ? row("FAIL", [...problems, space.detail].join("; "))
    : row(space.result, [...facts, space.detail].join(", "));
  return [dataDirRow, checkDatabase(join(dataDir, DATABASE_FILE), servingUid ?? undefined)];
}

/**
 * Why the gateway, running as `servingUid`, could not write the store file `path` (or its -wal or -shm
 * beside it), or undefined: each must belong to that user and be writable by its owner.
 */
function storeFileProblem(path: string, servingUid: number | undefined): string | undefined {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    return `${path} cannot be read: ${errorText(error)}`;
  }
  if (servingUid !== undefined && info.uid !== null && info.uid !== servingUid) {
    return `${path} belongs to uid ${info.uid}, not to uid ${servingUid} who owns the data directory and ` +
      `serves it: the gateway cannot write it (chown ${servingUid} ${path})`;
  }
  if (info.mode !== null && (info.mode & 0o200) === 0) {
    return `${path} is read-only (mode ${formatMode(info.mode)}): the gateway cannot write it (chmod 600)`;
  }
  return undefined;
}

/**
 * The store, when there is one: owner-only (0600), writable by the user who serves it (it, its -wal and
 * -shm belong to `servingUid`, the data directory's owner), and a SQLite database this gatehouse can open.
 * It is opened read-only, so this works beside a running gateway.
 */
export function checkDatabase(path: string, servingUid?: number): CheckRow {
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
  const unwritable = [path, `${path}-wal`, `${path}-shm`]
    .map((file) => storeFileProblem(file, servingUid))
    .filter((problem) => problem !== undefined);
  if (unwritable.length > 0) return row("FAIL", unwritable.join("; "));
  try {
    const { quickCheck, schemaVersion: version } = inspectDatabaseFile(path);
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    if (quickCheck !== "ok") return row("FAIL", `damaged: quick_check says ${quickCheck}`);
    if (version > latest) {
      return row("FAIL", `schema version ${version} is newer than this gatehouse knows (${latest}): upgrade`);
    }
    const mode = info.mode === null ? "" : `mode ${formatMode(info.mode)}, `;
    const migration = version < latest ? ` (the next start migrates it to ${latest})` : "";
    return row(
      "ok",
      `${mode}opens, quick_check ok, schema version ${version}${migration}, writable by its owner`,
    );
  } catch (error) {
    return row("FAIL", `cannot be opened: ${errorText(error)}`);
  }
}
