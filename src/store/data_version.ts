// Whether another connection changed the store: SQLite's `PRAGMA data_version` moves when another
// connection (another process, such as the `gatehouse` CLI) commits, never for this connection's writes.
import { preparedStatements } from "./_statements.ts";
import type { Store } from "./store.ts";

const statements = preparedStatements({ dataVersion: "PRAGMA data_version" });

/**
 * The store's data version: compare two readings from the same store; they differ when another connection
 * committed in between. @see https://sqlite.org/pragma.html#pragma_data_version
 */
export function dataVersion(store: Store): number {
  const row = statements(store).dataVersion.get() as { data_version: number } | undefined;
  return row?.data_version ?? 0;
}
