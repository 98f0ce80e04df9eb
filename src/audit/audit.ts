// The audit log: who did what, when, recorded in the store (`store/audit.ts`).
import type { Store } from "../store/store.ts";
import {
  deleteAuditEntriesBefore,
  insertAuditEntry,
  latestAuditTimePerClient,
  recentAuditEntries,
} from "../store/audit.ts";

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
  | "registration_throttled"
  | "signing_key_rotated";

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
    insertAuditEntry(this.#store, { at: this.#now(), kind, subject, detail: JSON.stringify(detail) });
  }

  /** The newest rows first, optionally of some kinds only. */
  recent(limit: number, kinds?: readonly AuditKind[]): AuditRow[] {
    return recentAuditEntries(this.#store, limit, kinds).map((row) => ({
      ...row,
      kind: row.kind as AuditKind,
      detail: JSON.parse(row.detail) as Record<string, unknown>,
    }));
  }

  /** When each client last got a token: the time of its newest `token_grant` row still kept. */
  lastTokenGrants(): Map<string, number> {
    return latestAuditTimePerClient(this.#store, "token_grant" satisfies AuditKind);
  }

  /** Deletes rows older than `retentionMs`; returns how many. */
  prune(retentionMs: number): number {
    return deleteAuditEntriesBefore(this.#store, this.#now() - retentionMs);
  }
}
