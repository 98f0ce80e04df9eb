/**
 * The MCP SDK packages stay off the gateway's start path (some 15 MB resident together): src/ imports
 * only their types, and src/mcp/sdk.ts alone loads them (a moment after start).
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { ROOT, sourceFiles, SRC } from "./_sources.ts";

const SDK_LOADER = join(SRC, "mcp", "sdk.ts");

/** The imports and re-exports of `text` that bring an SDK package's code, not only its types. */
function sdkValueImports(text: string): string[] {
  const found: string[] = [];
  const statements = /\b(import|export)\s+(type\s+)?([^;]*?)\s*from\s*"(@modelcontextprotocol\/[^"]+)"/g;
  for (const [statement, , typeOnly, clause, specifier] of text.matchAll(statements)) {
    if (typeOnly) continue;
    const names = /^\{([^}]*)\}$/s.exec(clause!.trim())?.[1];
    const valueNames = names?.split(",").map((name) => name.trim()).filter((name) =>
      name && !name.startsWith("type ")
    );
    if (valueNames?.length === 0) continue;
    found.push(`${specifier}: ${statement.replace(/\s+/g, " ")}`);
  }
  for (
    const [, specifier] of text.matchAll(/(?<!typeof )\bimport\s*(?:\(\s*)?"(@modelcontextprotocol\/[^"]+)"/g)
  ) {
    found.push(`${specifier}: loaded directly`);
  }
  return found;
}

Deno.test("sdkValueImports() tells value imports from type imports", () => {
  assert.deepEqual(sdkValueImports('import type { Client } from "@modelcontextprotocol/client";'), []);
  assert.deepEqual(sdkValueImports('import { type A, type B } from "@modelcontextprotocol/server";'), []);
  assert.equal(sdkValueImports('import { type A, B } from "@modelcontextprotocol/server";').length, 1);
  assert.equal(sdkValueImports('export { Client } from "@modelcontextprotocol/client";').length, 1);
  assert.equal(sdkValueImports('import * as sdk from "@modelcontextprotocol/client";').length, 1);
  assert.equal(sdkValueImports('const sdk = await import("@modelcontextprotocol/server");').length, 1);
  assert.deepEqual(sdkValueImports('type Sdk = typeof import("@modelcontextprotocol/server");'), []);
});

Deno.test("lazy imports: only src/mcp/sdk.ts loads an MCP SDK package", async () => {
  const loading: string[] = [];
  for (const file of await sourceFiles(SRC)) {
    if (file === SDK_LOADER) continue;
    const found = sdkValueImports(await Deno.readTextFile(file));
    loading.push(...found.map((line) => `${relative(ROOT, file)}: ${line}`));
  }
  assert.deepEqual(loading, []);
  assert.equal(sdkValueImports(await Deno.readTextFile(SDK_LOADER)).length, 2);
});
