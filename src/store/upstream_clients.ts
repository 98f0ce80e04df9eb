// The `upstream_clients` table: Gatehouse's dynamic registrations (RFC 7591) at the authorization servers of
// OAuth-protected remote MCP servers, one per backend and issuer, shared by replicas. Secrets arrive sealed.
import { changes, preparedStatements } from "./_statements.ts";
import type { Store } from "./store.ts";

/** A registration as stored: the secret, when the server issued one, sealed by the vault. */
export interface UpstreamClient {
  readonly backend: string;
  readonly issuer: string;
  readonly clientId: string;
  readonly sealedSecret: string | undefined;
  /** Epoch ms; undefined when there is no secret or it does not expire. */
  readonly secretExpiresAt: number | undefined;
  /** RFC 7591 `token_endpoint_auth_method` as the server registered it. */
  readonly authMethod: string;
  readonly redirectUri: string;
  /** Epoch ms. */
  readonly registeredAt: number;
}

const COLUMNS =
  "backend, issuer, client_id, sealed_secret, secret_expires_at, auth_method, redirect_uri, registered_at";

const statements = preparedStatements({
  find: `SELECT ${COLUMNS} FROM upstream_clients WHERE backend = ? AND issuer = ?`,
  // A registration replaces the stored one only while that one is stale (another callback URL, or an
  // expired secret): of two replicas registering at once, the first one stored is the one both use.
  save: `INSERT INTO upstream_clients (${COLUMNS})
    VALUES (:backend, :issuer, :client_id, :sealed_secret, :secret_expires_at, :auth_method, :redirect_uri,
      :registered_at)
    ON CONFLICT (backend, issuer) DO UPDATE SET client_id = excluded.client_id,
      sealed_secret = excluded.sealed_secret, secret_expires_at = excluded.secret_expires_at,
      auth_method = excluded.auth_method, redirect_uri = excluded.redirect_uri,
      registered_at = excluded.registered_at
    WHERE upstream_clients.redirect_uri <> excluded.redirect_uri
      OR (upstream_clients.secret_expires_at IS NOT NULL AND upstream_clients.secret_expires_at <= :now)`,
  delete: "DELETE FROM upstream_clients WHERE backend = ? AND issuer = ? AND client_id = ?",
  list: `SELECT ${COLUMNS} FROM upstream_clients ORDER BY backend, issuer`,
});

interface UpstreamClientRow {
  backend: string;
  issuer: string;
  client_id: string;
  sealed_secret: string | null;
  secret_expires_at: number | null;
  auth_method: string;
  redirect_uri: string;
  registered_at: number;
}

/** The registration of `backend` at the authorization server `issuer`, if one is stored. */
export function findUpstreamClient(
  store: Store,
  backend: string,
  issuer: string,
): UpstreamClient | undefined {
  const row = statements(store).find.get(backend, issuer) as UpstreamClientRow | undefined;
  return row === undefined ? undefined : fromRow(row);
}

/**
 * Stores `client` unless a registration that is still good is stored for its backend and issuer (another
 * replica's, made meanwhile); returns the one stored in the end, which is the one to use.
 */
export function saveUpstreamClient(store: Store, client: UpstreamClient, nowMs: number): UpstreamClient {
  return store.transaction(() => {
    statements(store).save.run({
      backend: client.backend,
      issuer: client.issuer,
      client_id: client.clientId,
      sealed_secret: client.sealedSecret ?? null,
      secret_expires_at: client.secretExpiresAt ?? null,
      auth_method: client.authMethod,
      redirect_uri: client.redirectUri,
      registered_at: client.registeredAt,
      now: nowMs,
    });
    return findUpstreamClient(store, client.backend, client.issuer)!;
  });
}

/**
 * Forgets the registration of `backend` at `issuer` if it is still `clientId` (the server no longer knows
 * it); a newer registration stored meanwhile is kept. Returns whether a row was deleted.
 */
export function deleteUpstreamClient(
  store: Store,
  backend: string,
  issuer: string,
  clientId: string,
): boolean {
  return changes(statements(store).delete.run(backend, issuer, clientId)) > 0;
}

/** Every stored registration, by backend then issuer. */
export function listUpstreamClients(store: Store): UpstreamClient[] {
  return (statements(store).list.all() as unknown as UpstreamClientRow[]).map(fromRow);
}

function fromRow(row: UpstreamClientRow): UpstreamClient {
  return {
    backend: row.backend,
    issuer: row.issuer,
    clientId: row.client_id,
    sealedSecret: row.sealed_secret ?? undefined,
    secretExpiresAt: row.secret_expires_at ?? undefined,
    authMethod: row.auth_method,
    redirectUri: row.redirect_uri,
    registeredAt: row.registered_at,
  };
}
