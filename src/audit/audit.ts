import type { Store } from "../store/store.ts";

/** What an audit row records. */
export type AuditKind =
  | "sign_in"
  | "sign_in_failed"
  | "sign_in_throttled"
  | "token_grant"
  | "refresh_reuse"
  | "refresh_retry"
  | "code_replay"
  | "consent"
  | "connection"
  | "disconnection"
  | "denial"
  | "rate_limit"
  | "reload"
  | "reload_rejected"
  | "admin_revoke"
  | "registration_throttled";

export interface AuditRow {
  readonly id: number;
  readonly at: number;
  readonly kind: AuditKind;
  readonly subject: string | undefined;
  readonly detail: Record<string, unknown>;
}

/**
 * The audit table: who did what, when. `detail` is JSON and never holds a secret (no tokens, passwords,
 * codes or tickets).
 */
export class AuditLog {
  readonly #store: Store;
  readonly #now: () => number;

  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  record(kind: AuditKind, subject: string | undefined, detail: Record<string, unknown> = {}): void {
    this.#store.db.prepare("INSERT INTO audit (at, kind, subject, detail) VALUES (?, ?, ?, ?)")
      .run(this.#now(), kind, subject ?? null, JSON.stringify(detail));
  }

  /** The newest rows first, optionally of some kinds only. */
  recent(limit: number, kinds?: readonly AuditKind[]): AuditRow[] {
    const rows = (kinds && kinds.length > 0
      ? this.#store.db.prepare(
        `SELECT id, at, kind, subject, detail FROM audit WHERE kind IN (${
          kinds.map(() => "?").join(", ")
        }) ORDER BY id DESC LIMIT ?`,
      ).all(...kinds, limit)
      : this.#store.db.prepare("SELECT id, at, kind, subject, detail FROM audit ORDER BY id DESC LIMIT ?")
        .all(limit)) as { id: number; at: number; kind: AuditKind; subject: string | null; detail: string }[];
    return rows.map((row) => ({
      id: row.id,
      at: row.at,
      kind: row.kind,
      subject: row.subject ?? undefined,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
    }));
  }

  /** When each client last got a token: the time of its newest `token_grant` row still kept. */
  lastTokenGrants(): Map<string, number> {
    const rows = this.#store.db.prepare(
      "SELECT json_extract(detail, '$.client_id') AS client_id, MAX(at) AS at FROM audit WHERE kind = 'token_grant' GROUP BY 1",
    ).all() as { client_id: unknown; at: number }[];
    return new Map(
      rows.filter((row) => typeof row.client_id === "string").map((row) => [row.client_id as string, row.at]),
    );
  }

  /** Deletes rows older than `retentionMs`; returns how many. */
  prune(retentionMs: number): number {
    const result = this.#store.db.prepare("DELETE FROM audit WHERE at < ?").run(this.#now() - retentionMs);
    return Number(result.changes);
  }
}
