// The `connect_tickets` table: single-use consent links for connecting a service, by the hash of their
// ticket. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A consent link's ticket as stored. */
export interface StoredConnectTicket {
  readonly userId: string;
  readonly service: string;
  readonly elicitationId: string | undefined;
  readonly expiresAt: number;
  readonly usedAt: number | undefined;
}

const statements = preparedStatements({
  insert: `INSERT INTO connect_tickets (ticket_hash, user_id, service, elicitation_id, expires_at)
    VALUES (?, ?, ?, ?, ?)`,
  find:
    "SELECT user_id, service, elicitation_id, expires_at, used_at FROM connect_tickets WHERE ticket_hash = ?",
  markUsed: "UPDATE connect_tickets SET used_at = ? WHERE ticket_hash = ? AND used_at IS NULL",
  deleteExpired: "DELETE FROM connect_tickets WHERE expires_at <= ?",
});

export function insertConnectTicket(
  store: Store,
  ticket: { ticketHash: string; userId: string; service: string; elicitationId: string; expiresAt: number },
): void {
  statements(store).insert.run(
    ticket.ticketHash,
    ticket.userId,
    ticket.service,
    ticket.elicitationId,
    ticket.expiresAt,
  );
}

export function findConnectTicket(store: Store, ticketHash: string): StoredConnectTicket | undefined {
  const row = statements(store).find.get(ticketHash) as
    | {
      user_id: string;
      service: string;
      elicitation_id: string | null;
      expires_at: number;
      used_at: number | null;
    }
    | undefined;
  return row
    ? {
      userId: row.user_id,
      service: row.service,
      elicitationId: row.elicitation_id ?? undefined,
      expiresAt: row.expires_at,
      usedAt: row.used_at ?? undefined,
    }
    : undefined;
}

/** Marks a ticket used at `usedAt`; false when it was used already (single use). */
export function markConnectTicketUsed(store: Store, ticketHash: string, usedAt: number): boolean {
  return changes(statements(store).markUsed.run(usedAt, ticketHash)) === 1;
}

/** Deletes the tickets that expired by `cutoffMs`. */
export function deleteConnectTicketsExpiredBy(store: Store, cutoffMs: number): void {
  statements(store).deleteExpired.run(cutoffMs);
}
