// The `oauth_clients` table: clients registered dynamically (RFC 7591) and cached client metadata
// documents. Times are epoch ms.
import type { Store } from "./store.ts";
import { changes, preparedStatements } from "./_statements.ts";

/** A client as stored; `metadata` is JSON with RFC 7591 field names. */
export interface StoredClient {
  readonly clientId: string;
  readonly kind: "dynamic" | "metadata_document";
  readonly metadata: string;
  readonly secretHash: string | undefined;
  readonly registrationTokenHash: string | undefined;
  readonly createdAt: number;
  /** When a cached metadata document must be fetched again. */
  readonly expiresAt: number | undefined;
}

/** Dynamic clients that never obtained a grant and were registered at or before `?`. */
const UNUSED = `SELECT client_id FROM oauth_clients
  WHERE kind = 'dynamic' AND first_grant_at IS NULL AND created_at <= ?`;

const statements = preparedStatements({
  find: "SELECT * FROM oauth_clients WHERE client_id = ?",
  list: "SELECT * FROM oauth_clients ORDER BY created_at, client_id",
  saveMetadataDocument: `INSERT INTO oauth_clients (client_id, kind, metadata, created_at, expires_at)
    VALUES (?, 'metadata_document', ?, ?, ?)
    ON CONFLICT (client_id) DO UPDATE SET metadata = excluded.metadata, expires_at = excluded.expires_at`,
  insertDynamic: `INSERT INTO oauth_clients
    (client_id, kind, metadata, secret_hash, registration_token_hash, created_at, registered_from)
    VALUES (?, 'dynamic', ?, ?, ?, ?, ?)`,
  registrationTimes: `SELECT created_at FROM oauth_clients WHERE registered_from = ? AND created_at > ?
    ORDER BY created_at DESC LIMIT ?`,
  markFirstGrant: `UPDATE oauth_clients SET first_grant_at = ?
    WHERE client_id = ? AND first_grant_at IS NULL AND kind = 'dynamic'`,
  deleteConsentsOfUnused: `DELETE FROM consents WHERE client_id IN (${UNUSED})`,
  deleteCodesOfUnused: `DELETE FROM authorization_codes WHERE client_id IN (${UNUSED})`,
  deleteUnused: `DELETE FROM oauth_clients
    WHERE kind = 'dynamic' AND first_grant_at IS NULL AND created_at <= ?`,
  updateMetadata: "UPDATE oauth_clients SET metadata = ? WHERE client_id = ?",
  delete: "DELETE FROM oauth_clients WHERE client_id = ?",
});

interface ClientRow {
  client_id: string;
  kind: string;
  metadata: string;
  secret_hash: string | null;
  registration_token_hash: string | null;
  created_at: number;
  expires_at: number | null;
}

function storedClient(row: ClientRow): StoredClient {
  return {
    clientId: row.client_id,
    kind: row.kind === "metadata_document" ? "metadata_document" : "dynamic",
    metadata: row.metadata,
    secretHash: row.secret_hash ?? undefined,
    registrationTokenHash: row.registration_token_hash ?? undefined,
    createdAt: row.created_at,
    expiresAt: row.expires_at ?? undefined,
  };
}

export function findClient(store: Store, clientId: string): StoredClient | undefined {
  // No stored id holds U+0000 (PostgreSQL text cannot), and PostgreSQL refuses it even as a parameter.
  if (clientId.includes("\0")) return undefined;
  const row = statements(store).find.get(clientId) as ClientRow | undefined;
  return row ? storedClient(row) : undefined;
}

/** Every stored client, oldest first. */
export function listClients(store: Store): StoredClient[] {
  return (statements(store).list.all() as unknown as ClientRow[]).map(storedClient);
}

/** Caches a fetched client metadata document until `expiresAt` (replacing an earlier copy). */
export function saveMetadataDocumentClient(
  store: Store,
  client: { clientId: string; metadata: string; fetchedAt: number; expiresAt: number },
): void {
  statements(store).saveMetadataDocument.run(
    client.clientId,
    client.metadata,
    client.fetchedAt,
    client.expiresAt,
  );
}

export function insertDynamicClient(
  store: Store,
  client: {
    clientId: string;
    metadata: string;
    secretHash: string | undefined;
    registrationTokenHash: string;
    createdAt: number;
    /** The client network that registered it. */
    registeredFrom: string | undefined;
  },
): void {
  statements(store).insertDynamic.run(
    client.clientId,
    client.metadata,
    client.secretHash ?? null,
    client.registrationTokenHash,
    client.createdAt,
    client.registeredFrom ?? null,
  );
}

/** When `network` registered clients after `sinceMs`, newest first, at most `limit` of them. */
export function registrationTimesOf(store: Store, network: string, sinceMs: number, limit: number): number[] {
  return (statements(store).registrationTimes.all(network, sinceMs, limit) as { created_at: number }[])
    .map((row) => row.created_at);
}

/** Notes a dynamic client's first grant at `atMs` (later grants change nothing). */
export function markClientFirstGrant(store: Store, clientId: string, atMs: number): void {
  statements(store).markFirstGrant.run(atMs, clientId);
}

/**
 * Deletes the dynamic clients registered at or before `cutoffMs` that never obtained a grant, with their
 * consents and codes; returns how many clients. Call it inside a transaction.
 */
export function deleteUnusedDynamicClients(store: Store, cutoffMs: number): number {
  const statement = statements(store);
  statement.deleteConsentsOfUnused.run(cutoffMs);
  statement.deleteCodesOfUnused.run(cutoffMs);
  return changes(statement.deleteUnused.run(cutoffMs));
}

export function updateClientMetadata(store: Store, clientId: string, metadata: string): void {
  statements(store).updateMetadata.run(metadata, clientId);
}

/** Deletes the client row only (its tokens and consents are the grant tables'). */
export function deleteClient(store: Store, clientId: string): void {
  statements(store).delete.run(clientId);
}
