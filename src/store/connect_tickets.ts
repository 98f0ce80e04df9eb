// The `connect_tickets` table: single-use consent links for connecting a service, by the hash of their
// ticket; and `pending_connects`: connections waiting for the service's callback, by the hash of their
// state. Times are epoch ms.
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
  insertPending: `INSERT INTO pending_connects (state_hash, user_id, service, code_verifier, elicitation_id,
    expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
  findPending: `SELECT user_id, service, code_verifier, elicitation_id, expires_at FROM pending_connects
    WHERE state_hash = ?`,
  consumePending: "DELETE FROM pending_connects WHERE state_hash = ?",
  deleteExpiredPending: "DELETE FROM pending_connects WHERE expires_at <= ?",
});

/** A connection waiting for the service's callback. */
export interface PendingConnect {
  readonly userId: string;
  readonly service: string;
  readonly codeVerifier: string;
  readonly elicitationId: string | undefined;
  readonly expiresAt: number;
}

export function insertPendingConnect(store: Store, stateHash: string, pending: PendingConnect): void {
  statements(store).insertPending.run(
    stateHash,
    pending.userId,
    pending.service,
    pending.codeVerifier,
    pending.elicitationId ?? null,
    pending.expiresAt,
  );
}

export function findPendingConnect(store: Store, stateHash: string): PendingConnect | undefined {
  const row = statements(store).findPending.get(stateHash) as {
    user_id: string;
    service: string;
    code_verifier: string;
    elicitation_id: string | null;
    expires_at: number;
  } | undefined;
  return row && {
    userId: row.user_id,
    service: row.service,
    codeVerifier: row.code_verifier,
    elicitationId: row.elicitation_id ?? undefined,
    expiresAt: row.expires_at,
  };
}

/** Uses up a pending connection; false when another request (on any replica) used it first. */
export function consumePendingConnect(store: Store, stateHash: string): boolean {
  return changes(statements(store).consumePending.run(stateHash)) === 1;
}

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
export function deletePendingConnectsExpiredBy(store: Store, cutoffMs: number): void {
  statements(store).deleteExpiredPending.run(cutoffMs);
}

export function deleteConnectTicketsExpiredBy(store: Store, cutoffMs: number): void {
  statements(store).deleteExpired.run(cutoffMs);
}
