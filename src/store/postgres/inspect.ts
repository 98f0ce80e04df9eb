// What `gatehouse doctor` reads of a PostgreSQL store, on a connection it opened: never writing anything.
import type { PostgresConnection } from "./connection.ts";

export interface PostgresFacts {
  readonly serverVersion: string;
  /** A hot standby takes no writes. */
  readonly standby: boolean;
  /** The store's schema version; 0 before the first replica started. */
  readonly schemaVersion: number;
}

export function inspectPostgres(connection: PostgresConnection): PostgresFacts {
  const server = connection.prepare("SELECT current_setting('server_version') AS version").get();
  const standby = connection.prepare("SELECT pg_is_in_recovery() AS standby").get()?.standby === true;
  const hasSchema =
    connection.prepare("SELECT to_regclass('gatehouse_schema') IS NOT NULL AS present").get()?.present ===
      true;
  const schemaVersion = hasSchema
    ? Number(connection.prepare("SELECT version FROM gatehouse_schema").get()?.version ?? 0)
    : 0;
  return { serverVersion: String(server?.version ?? "?"), standby, schemaVersion };
}
