/** One step of the store's schema; applied once, in order, inside a transaction. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly sql: string;
}

/** Append only: never edit a migration that has shipped. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: "meta",
    sql: `
      CREATE TABLE meta (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      ) STRICT;
    `,
  },
  {
    version: 2,
    name: "audit",
    sql: `
      CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        at INTEGER NOT NULL,          -- epoch milliseconds
        kind TEXT NOT NULL,           -- sign_in, token_grant, consent, denial, reload, ...
        subject TEXT,                 -- the user or client it concerns, when there is one
        detail TEXT NOT NULL DEFAULT '{}'  -- JSON, never a secret
      ) STRICT;
      CREATE INDEX audit_at ON audit(at);
      CREATE INDEX audit_kind_at ON audit(kind, at);
    `,
  },
];
