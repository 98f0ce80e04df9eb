// The `consents` table: which users approved which clients, and when. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

const statements = preparedStatements({
  exists: "SELECT 1 FROM consents WHERE user_id = ? AND client_id = ?",
  save: `INSERT INTO consents (user_id, client_id, scope, granted_at) VALUES (?, ?, ?, ?)
    ON CONFLICT (user_id, client_id) DO UPDATE SET scope = excluded.scope, granted_at = excluded.granted_at`,
  ofClient: "SELECT user_id, granted_at FROM consents WHERE client_id = ? ORDER BY user_id",
  deleteOfClient: "DELETE FROM consents WHERE client_id = ?",
});

export function hasConsent(store: Store, userId: string, clientId: string): boolean {
  return statements(store).exists.get(userId, clientId) !== undefined;
}

/** Records (or renews) a user's approval of a client for `scope`. */
export function saveConsent(
  store: Store,
  consent: { userId: string; clientId: string; scope: string; grantedAt: number },
): void {
  statements(store).save.run(consent.userId, consent.clientId, consent.scope, consent.grantedAt);
}

/** The users who approved a client, with when, by user id. */
export function consentsOfClient(store: Store, clientId: string): { userId: string; grantedAt: number }[] {
  return (statements(store).ofClient.all(clientId) as { user_id: string; granted_at: number }[])
    .map((row) => ({ userId: row.user_id, grantedAt: row.granted_at }));
}

/** Deletes the consents given to a client; returns how many. */
export function deleteConsentsOfClient(store: Store, clientId: string): number {
  return changes(statements(store).deleteOfClient.run(clientId));
}
