/** `backupDatabase()`: a consistent copy of the store by SQLite's online backup, checked, mode 0600. */
import { backup, DatabaseSync } from "node:sqlite";

/** What `backupDatabase()` wrote. */
export interface BackupResult {
  readonly path: string;
  readonly sizeBytes: number;
  readonly schemaVersion: number;
}

/**
 * Writes a consistent copy of the database at `databasePath` to `targetPath`, also while a gateway writes
 * to it. SQLite's online backup copies every page in one step, so within one read transaction: one
 * snapshot, and in WAL mode the writer is not held up. (`VACUUM INTO` would do too, but Deno allows it,
 * like any ATTACH, only with every permission granted, and the gateway runs with fewer.)
 *
 * The target is created first, exclusively and owner-only (0600): an existing file is never overwritten
 * (`Deno.errors.AlreadyExists`) and the copy is never readable by others, even for a moment. The copy is
 * then switched to a rollback journal, so it is one self-contained file, and checked with
 * `integrity_check`. A missing source or target directory throws `Deno.errors.NotFound`.
 * @see https://sqlite.org/backup.html
 */
export async function backupDatabase(databasePath: string, targetPath: string): Promise<BackupResult> {
  // Before creating the target: a missing store must not leave an empty file behind.
  try {
    Deno.statSync(databasePath);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
    throw new Deno.errors.NotFound(`Cannot back up: there is no store at ${databasePath}`);
  }
  const source = new DatabaseSync(databasePath, { readOnly: true });
  try {
    source.exec("PRAGMA busy_timeout = 5000");
    createOwnerOnly(targetPath);
    try {
      // The umask can only have removed bits; set them exactly anyway.
      Deno.chmodSync(targetPath, 0o600);
      // A negative rate copies every page in one step (sqlite3_backup_step(-1)).
      await backup(source, targetPath, { rate: -1 });
      return finishCopy(targetPath);
    } catch (error) {
      removeCopy(targetPath);
      throw error;
    }
  } finally {
    source.close();
  }
}

/** Makes the copy one file (no -wal beside it), checks it and flushes it to disk. */
function finishCopy(path: string): BackupResult {
  const copy = new DatabaseSync(path);
  let schemaVersion: number;
  try {
    copy.exec("PRAGMA journal_mode = DELETE");
    const check = copy.prepare("PRAGMA integrity_check").get() as { integrity_check: string } | undefined;
    if (check?.integrity_check !== "ok") {
      throw new Error(`Cannot back up: the copy fails integrity_check (${check?.integrity_check})`);
    }
    const version = copy.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
    schemaVersion = version?.user_version ?? 0;
  } finally {
    copy.close();
  }
  const file = Deno.openSync(path, { read: true });
  try {
    file.syncSync();
  } finally {
    file.close();
  }
  return { path, sizeBytes: Deno.statSync(path).size, schemaVersion };
}

function removeCopy(path: string): void {
  for (const name of [path, `${path}-journal`, `${path}-wal`, `${path}-shm`]) {
    try {
      Deno.removeSync(name);
    } catch {
      // Not there.
    }
  }
}

/** Creates an empty file readable by its owner only, refusing one that exists. */
function createOwnerOnly(path: string): void {
  try {
    Deno.openSync(path, { createNew: true, write: true, mode: 0o600 }).close();
  } catch (error) {
    if (error instanceof Deno.errors.AlreadyExists) {
      throw new Deno.errors.AlreadyExists(
        `Cannot write ${path}: it already exists, and a backup never overwrites`,
      );
    }
    if (error instanceof Deno.errors.NotFound) {
      throw new Deno.errors.NotFound(`Cannot write ${path}: its directory does not exist`);
    }
    throw error;
  }
}
