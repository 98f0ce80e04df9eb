import assert from "node:assert/strict";
import { preparedStatements } from "../../src/store/_statements.ts";
import { openStore } from "../../src/store/store.ts";

Deno.test("preparedStatements() prepares each statement once per store, on first use", () => {
  const statements = preparedStatements({
    insert: "INSERT INTO meta (key, value) VALUES (?, ?)",
    find: "SELECT value FROM meta WHERE key = ?",
  });
  const first = openStore(":memory:");
  const second = openStore(":memory:");
  try {
    const prepare = first.db.prepare;
    let prepared = 0;
    first.db.prepare = ((...args: Parameters<typeof prepare>) => {
      prepared++;
      return prepare(...args);
    }) as typeof prepare;
    statements(first).insert.run("k", "v");
    statements(first).insert.run("l", "w");
    assert.equal(statements(first).find.get("k")?.value, "v");
    assert.equal(prepared, 2, "one prepare per statement used");
    assert.strictEqual(statements(first).find, statements(first).find);
    assert.notStrictEqual(statements(first).find, statements(second).find, "each store has its own");
    assert.equal(statements(second).find.get("k"), undefined);
  } finally {
    first.close();
    second.close();
  }
});
