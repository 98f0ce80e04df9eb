// The `audit` table: appending rows, reading the newest, and pruning old ones. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** An audit row as stored; `detail` is JSON text. */
export interface StoredAuditEntry {
  readonly id: number;
  /** Epoch ms. */
  readonly at: number;
  readonly kind: string;
  readonly subject: string | undefined;
  readonly detail: string;
}

const statements = preparedStatements({
  insert: "INSERT INTO audit (at, kind, subject, detail) VALUES (?, ?, ?, ?)",
  recent: "SELECT id, at, kind, subject, detail FROM audit ORDER BY id DESC LIMIT ?",
  // The kinds come as one JSON array; each database reads it with its own JSON functions. (PostgreSQL: the
  // parameter is text, cast after: a parameter typed json would be sent JSON-encoded once more.)
  recentOfKinds: {
    sqlite: `SELECT id, at, kind, subject, detail FROM audit
      WHERE kind IN (SELECT value FROM json_each(?)) ORDER BY id DESC LIMIT ?`,
    postgres: `SELECT id, at, kind, subject, detail FROM audit
      WHERE kind IN (SELECT json_array_elements_text(CAST(CAST(? AS text) AS json))) ORDER BY id DESC LIMIT ?`,
  },
  // Only a string client_id counts (SQLite's json_extract keeps a number a number; ->> would make it text).
  latestPerClient: {
    sqlite: `SELECT json_extract(detail, '$.client_id') AS client_id, MAX(at) AS at FROM audit
      WHERE kind = ? GROUP BY 1`,
    postgres: `SELECT CASE WHEN json_typeof(CAST(detail AS json) -> 'client_id') = 'string'
        THEN CAST(detail AS json) ->> 'client_id' END AS client_id, MAX(at) AS at FROM audit
      WHERE kind = ? GROUP BY 1`,
  },
  deleteBefore: "DELETE FROM audit WHERE at < ?",
});

interface AuditRow {
  id: number;
  at: number;
  kind: string;
  subject: string | null;
  detail: string;
}

export function insertAuditEntry(
  store: Store,
  entry: { at: number; kind: string; subject: string | undefined; detail: string },
): void {
  // A subject can be what someone typed (a tried account name); PostgreSQL text holds no U+0000, so on
  // either database it is kept as U+FFFD, the replacement character.
  const subject = entry.subject?.replaceAll("\0", "\uFFFD") ?? null;
  statements(store).insert.run(entry.at, entry.kind, subject, entry.detail);
}

/** The newest `limit` rows first, of the given kinds only when some are given. */
export function recentAuditEntries(
  store: Store,
  limit: number,
  kinds?: readonly string[],
): StoredAuditEntry[] {
  const rows =
    (kinds && kinds.length > 0
      ? statements(store).recentOfKinds.all(JSON.stringify(kinds), limit)
      : statements(store).recent.all(limit)) as unknown as AuditRow[];
  return rows.map((row) => ({ ...row, subject: row.subject ?? undefined }));
}

/** For each `client_id` in the detail of rows of `kind`, the time of its newest row. */
export function latestAuditTimePerClient(store: Store, kind: string): Map<string, number> {
  const rows = statements(store).latestPerClient.all(kind) as { client_id: unknown; at: number }[];
  return new Map(
    rows.filter((row) => typeof row.client_id === "string").map((row) => [row.client_id as string, row.at]),
  );
}

/** Deletes rows older than `cutoffMs`; returns how many. */
export function deleteAuditEntriesBefore(store: Store, cutoffMs: number): number {
  return changes(statements(store).deleteBefore.run(cutoffMs));
}
