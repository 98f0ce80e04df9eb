/** A parsed YAML file that can point at the line and column of any path in it. */
import { isMap, isPair, isScalar, isSeq, LineCounter, type Node, parseDocument } from "yaml";
import type { ConfigProblem } from "./errors.ts";

export type ConfigPath = readonly (string | number)[];

/** A parsed YAML file that can say where any path in it is written. */
export interface SourceFile {
  readonly file: string;
  readonly value: unknown;
  /** Position of the value at `path` (or of its key when `key` is true), else of its nearest parent. */
  problemAt(path: ConfigPath, message: string, options?: { key?: boolean }): ConfigProblem;
}

/** Parses YAML text, collecting syntax errors (with positions) instead of throwing. */
export function parseSource(file: string, text: string): { source?: SourceFile; problems: ConfigProblem[] } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true, merge: false });
  const at = (offset: number) => lineCounter.linePos(offset);
  const problems = [...doc.errors, ...doc.warnings].map((error) => {
    const { line, col } = at(error.pos[0]);
    return { file, line, col, message: firstLine(error.message) };
  });
  if (doc.errors.length > 0) return { problems };

  const problemAt = (path: ConfigPath, message: string, options: { key?: boolean } = {}): ConfigProblem => {
    let node: unknown = doc.contents;
    let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
    for (const [index, segment] of path.entries()) {
      const isLast = index === path.length - 1;
      if (isMap(node)) {
        const pair = node.items.find((item) => isPair(item) && keyOf(item.key) === String(segment));
        if (!pair) break;
        const keyNode = pair.key as Node | null;
        const valueNode = pair.value as Node | null;
        offset =
          (isLast && options.key ? keyNode?.range?.[0] : valueNode?.range?.[0] ?? keyNode?.range?.[0]) ??
            offset;
        node = pair.value;
      } else if (isSeq(node) && typeof segment === "number") {
        const item = node.items[segment] as Node | undefined;
        if (!item) break;
        offset = item.range?.[0] ?? offset;
        node = item;
      } else {
        break;
      }
    }
    const { line, col } = at(offset);
    return { file, line, col, message };
  };

  return { source: { file, value: doc.toJS({ maxAliasCount: 100 }) ?? {}, problemAt }, problems };
}

function keyOf(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
