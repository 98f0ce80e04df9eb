/** preparedStatements(): once per store, on first use, and the SQL of the store's own dialect. */
import assert from "node:assert/strict";
import { preparedStatements } from "../../src/store/_statements.ts";
import { forEachDatabase, forEachStore } from "../helpers/stores.ts";

forEachDatabase(
  "preparedStatements() prepares each statement once per store, on first use",
  async (database) => {
    const statements = preparedStatements({
      insert: "INSERT INTO meta (key, value) VALUES (?, ?)",
      find: "SELECT value FROM meta WHERE key = ?",
    });
    const first = await database.open();
    const second = await database.open();
    const prepare = first.db.prepare;
    let prepared = 0;
    first.db.prepare = ((...args: Parameters<typeof prepare>) => {
      prepared++;
      return prepare.apply(first.db, args);
    }) as typeof prepare;
    statements(first).insert.run("k", "v");
    statements(first).insert.run("l", "w");
    assert.equal(statements(first).find.get("k")?.value, "v");
    assert.equal(prepared, 2, "one prepare per statement used");
    assert.strictEqual(statements(first).find, statements(first).find);
    assert.notStrictEqual(statements(first).find, statements(second).find, "each store has its own");
    assert.equal(statements(second).find.get("k")?.value, "v", "another connection to the same data");
    assert.equal(statements(second).find.get("m"), undefined);
  },
);

forEachStore("preparedStatements() runs the SQL written for the store's dialect", (store) => {
  const statements = preparedStatements({
    which: { sqlite: "SELECT 'sqlite' AS which", postgres: "SELECT 'postgres' AS which" },
    named: "SELECT :a AS a, :b AS b, :a AS again",
  });
  assert.equal(statements(store).which.get()?.which, store.dialect);
  assert.deepEqual({ ...statements(store).named.get({ a: "x", b: "y" }) }, { a: "x", b: "y", again: "x" });
});
