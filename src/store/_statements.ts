// Prepared statements cached per store: each table family prepares a statement once per connection, on its
// first use, through `store.db.prepare` (which routes every run through the store's write-health check).
import type { SqlDialect, SqlStatement, Store } from "./store.ts";

/** A table family's statements, by name, for one store. */
export type Statements<K extends string> = Readonly<Record<K, SqlStatement>>;

/** A statement's SQL: one text for both databases, or one per dialect where they differ. */
export type PortableSql = string | Readonly<Record<SqlDialect, string>>;

/**
 * Returns a function giving `store`'s prepared copy of each statement in `sql`, prepared on first use and
 * kept as long as the store object lives.
 */
export function preparedStatements<K extends string>(
  sql: Readonly<Record<K, PortableSql>>,
): (store: Store) => Statements<K> {
  const byStore = new WeakMap<Store, Statements<K>>();
  return (store) => {
    let statements = byStore.get(store);
    if (statements === undefined) {
      statements = lazyStatements(store, sql);
      byStore.set(store, statements);
    }
    return statements;
  };
}

function lazyStatements<K extends string>(
  store: Store,
  sql: Readonly<Record<K, PortableSql>>,
): Statements<K> {
  const prepared = new Map<K, SqlStatement>();
  const statements = {} as Record<K, SqlStatement>;
  for (const name of Object.keys(sql) as K[]) {
    Object.defineProperty(statements, name, {
      enumerable: true,
      get: () => {
        let statement = prepared.get(name);
        if (statement === undefined) {
          const text = sql[name];
          statement = store.db.prepare(typeof text === "string" ? text : text[store.dialect]);
          prepared.set(name, statement);
        }
        return statement;
      },
    });
  }
  return Object.freeze(statements);
}

/** Rows changed by a write, as a plain number. */
export function changes(result: { changes: number | bigint }): number {
  return Number(result.changes);
}
