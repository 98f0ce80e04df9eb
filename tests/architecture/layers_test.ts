/**
 * The structure ARCHITECTURE.md promises, held against the code: layers that import only downwards, no
 * import cycle between files, Hono only in the HTTP layer, SQL only in the store, no source file over 400
 * lines, and a header comment on every module.
 */
import assert from "node:assert/strict";
import { dirname, join, normalize, relative } from "node:path";
import { ROOT, sourceFiles, SRC } from "./_sources.ts";

/** The layers, bottom first: a folder (or top-level file) may import only its own layer and lower ones. */
const LAYERS: readonly (readonly string[])[] = [
  ["core", "version.ts", "log"],
  ["metrics", "store"],
  ["audit"],
  ["config"],
  ["policy"],
  ["oauth", "services"],
  ["login", "mcp"],
  ["status"],
  ["http"],
  ["gateway", "gateway.ts", "doctor"],
  ["cli"],
];

function layerOf(top: string): number {
  const index = LAYERS.findIndex((layer) => layer.includes(top));
  if (index < 0) throw new Error(`src/${top} belongs to no layer: add it to LAYERS and ARCHITECTURE.md`);
  return index;
}

const files = await sourceFiles(SRC);
const texts = new Map(
  await Promise.all(files.map(async (file) => [file, await Deno.readTextFile(file)] as const)),
);
/** Relative imports of each file, resolved to files. */
const imports = new Map(files.map((file) => {
  const specifiers = [...texts.get(file)!.matchAll(/(?:from|import)\s*\(?\s*"(\.{1,2}\/[^"]+)"/g)];
  return [file, specifiers.map((match) => normalize(join(dirname(file), match[1]!)))] as const;
}));
const topOf = (file: string) => relative(SRC, file).split("/")[0]!;

Deno.test("layers: every import of src/ goes to the same layer or a lower one", () => {
  const upward: string[] = [];
  for (const [file, targets] of imports) {
    for (const target of targets) {
      if (layerOf(topOf(target)) > layerOf(topOf(file))) {
        upward.push(`${relative(ROOT, file)} -> ${relative(ROOT, target)}`);
      }
    }
  }
  assert.deepEqual(upward, []);
});

Deno.test("layers: no import cycle between the files of src/", () => {
  const state = new Map<string, "open" | "done">();
  const cycles: string[] = [];
  const visit = (file: string, path: string[]) => {
    if (state.get(file) === "done") return;
    if (state.get(file) === "open") {
      cycles.push(
        [...path.slice(path.indexOf(file)), file].map((entry) => relative(ROOT, entry)).join(" -> "),
      );
      return;
    }
    state.set(file, "open");
    for (const target of imports.get(file) ?? []) visit(target, [...path, file]);
    state.set(file, "done");
  };
  for (const file of files) visit(file, []);
  assert.deepEqual(cycles, []);
});

Deno.test("layers: Hono only in src/http, SQL only in src/store", () => {
  const hono = files.filter((file) => /from "hono/.test(texts.get(file)!) && topOf(file) !== "http");
  assert.deepEqual(hono.map((file) => relative(ROOT, file)), []);
  const sql = files.filter((file) =>
    topOf(file) !== "store" &&
    /\.prepare\(\s*["`]|\b(SELECT [\w*]|INSERT INTO|UPDATE \w+ SET|DELETE FROM|CREATE TABLE)\b/.test(
      texts.get(file)!,
    )
  );
  assert.deepEqual(sql.map((file) => relative(ROOT, file)), []);
});

Deno.test("layers: every module of src/ is at most 400 lines and starts with a comment saying its job", () => {
  const long = files.filter((file) => texts.get(file)!.split("\n").length > 401);
  assert.deepEqual(long.map((file) => relative(ROOT, file)), []);
  const bare = files.filter((file) => !/^(\/\*\*|\/\/|\/\*)/.test(texts.get(file)!));
  assert.deepEqual(bare.map((file) => relative(ROOT, file)), []);
});
