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
  // Duplicate keys are found below, not by the parser: they are a problem, but the rest of the file can
  // still be checked, so that one run reports everything.
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: false, merge: false });
  const at = (offset: number) => lineCounter.linePos(offset);
  const problems = [...doc.errors, ...doc.warnings].map((error) => {
    const { line, col } = at(error.pos[0]);
    return { file, line, col, message: firstLine(error.message) };
  });
  problems.push(
    ...duplicateKeys(doc.contents, []).map(({ offset, path, key, firstOffset }) => {
      const where = path.length > 0 ? `${formatPath(path)}: ` : "";
      return {
        file,
        ...at(offset),
        message: `${where}duplicate key "${key}" (first written at line ${at(firstOffset).line})`,
      };
    }),
  );
  if (doc.errors.length > 0) return { problems };

  const problemAt = (path: ConfigPath, message: string, options: { key?: boolean } = {}): ConfigProblem => {
    let node: unknown = doc.contents;
    let offset = (doc.contents as Node | null)?.range?.[0] ?? 0;
    for (const [index, segment] of path.entries()) {
      const isLast = index === path.length - 1;
      if (isMap(node)) {
        // The last of duplicate keys: the one the parsed value holds.
        const pair = node.items.findLast((item) => isPair(item) && keyOf(item.key) === String(segment));
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

/** `backends.api.stdio.args[2]`: how a path is named in messages. */
export function formatPath(path: ConfigPath): string {
  return path.map((segment, index) =>
    typeof segment === "number" ? `[${segment}]` : index === 0 ? segment : `.${segment}`
  ).join("");
}

/** Keys written twice in one mapping, at any depth: where the repeat is, and where the key was first. */
function duplicateKeys(
  node: unknown,
  path: ConfigPath,
): { offset: number; path: ConfigPath; key: string; firstOffset: number }[] {
  const found: { offset: number; path: ConfigPath; key: string; firstOffset: number }[] = [];
  if (isMap(node)) {
    const first = new Map<string, number>();
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const key = keyOf(item.key);
      const offset = (item.key as Node | null)?.range?.[0] ?? 0;
      const seen = first.get(key);
      if (seen === undefined) first.set(key, offset);
      else found.push({ offset, path, key, firstOffset: seen });
      found.push(...duplicateKeys(item.value, [...path, key]));
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, index) => found.push(...duplicateKeys(item, [...path, index])));
  }
  return found;
}

function keyOf(key: unknown): string {
  return isScalar(key) ? String(key.value) : String(key);
}

function firstLine(message: string): string {
  return message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "");
}
