// A read-only look at a database file, for `gatehouse doctor`: does it open, is it intact, which schema
// version is it at. Never writes, never migrates.
import { DatabaseSync } from "node:sqlite";

/** What `inspectDatabaseFile()` found. */
export interface DatabaseFileReport {
  /** SQLite's `quick_check` answer: "ok" when the file is intact. */
  readonly quickCheck: string | undefined;
  /** The schema version (`user_version`), 0 for a file no migration ran on. */
  readonly schemaVersion: number;
}

/** Opens the file at `path` read-only and runs `quick_check`; throws when it cannot be opened or read. */
export function inspectDatabaseFile(path: string): DatabaseFileReport {
  const db = new DatabaseSync(path, { readOnly: true });
  try {
    db.exec("PRAGMA busy_timeout = 5000");
    const check = db.prepare("PRAGMA quick_check").get() as { quick_check: string } | undefined;
    const version = db.prepare("PRAGMA user_version").get() as { user_version: number } | undefined;
    return { quickCheck: check?.quick_check, schemaVersion: version?.user_version ?? 0 };
  } finally {
    db.close();
  }
}
