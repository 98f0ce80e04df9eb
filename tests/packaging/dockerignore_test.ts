/**
 * The Docker build context holds what the Dockerfile copies and nothing else: .dockerignore keeps out the
 * data directory (the store, signing keys, secrets), store backups, build output, Git and test output.
 */
import assert from "node:assert/strict";
import { join, relative } from "node:path";
import { ROOT } from "../helpers/gatehouse_process.ts";

/** Paths that must never reach the build context, relative to the repository root. */
const KEPT_OUT = [
  "data/signing-key.json",
  "data/vault.key",
  "data/gatehouse.db",
  "data/secrets/github",
  "gatehouse-2026-01-31.db", // a backup copied out of the container, as docs/deployment.md shows
  "config/registry.yaml",
  "dist/gatehouse-x86_64-unknown-linux-gnu",
  ".git/config",
  "node_modules/hono/package.json",
  "scratch/notes.md",
  "test-artifacts/status-admin.png",
];

/** One line of .dockerignore: the paths it matches, and whether it lets them back in (`!`). */
interface IgnoreRule {
  readonly pattern: RegExp;
  readonly letsIn: boolean;
}

/**
 * .dockerignore's rules as Docker reads them: patterns are anchored at the context's root, `*` and `?` stay
 * within one path segment, `**` spans any number of them. Character classes and escapes are refused rather
 * than misread.
 */
function parseDockerignore(text: string): IgnoreRule[] {
  const rules: IgnoreRule[] = [];
  for (const line of text.split("\n").map((line) => line.trim())) {
    if (line === "" || line.startsWith("#")) continue;
    const letsIn = line.startsWith("!");
    const pattern = (letsIn ? line.slice(1).trim() : line).replace(/^\/+|\/+$/g, "");
    if (/[[\]\\]/.test(pattern)) {
      throw new TypeError(`Cannot read .dockerignore: pattern "${line}" uses syntax this test does not know`);
    }
    const source = pattern.split(/(\*\*\/?|\*|\?)/).map((part) => {
      if (part === "**/") return "(?:.*/)?";
      if (part === "**") return ".*";
      if (part === "*") return "[^/]*";
      if (part === "?") return "[^/]";
      return part.replace(/[.+^${}()|]/g, "\\$&");
    }).join("");
    rules.push({ pattern: new RegExp(`^${source}$`), letsIn });
  }
  return rules;
}

/** Whether Docker leaves `path` out: the last rule matching it or one of its parent directories decides. */
function isIgnored(rules: readonly IgnoreRule[], path: string): boolean {
  const segments = path.split("/");
  const candidates = segments.map((_, index) => segments.slice(0, index + 1).join("/"));
  let ignored = false;
  for (const rule of rules) {
    if (candidates.some((candidate) => rule.pattern.test(candidate))) ignored = !rule.letsIn;
  }
  return ignored;
}

/** The sources of the Dockerfile's `COPY` instructions that read the build context (not `--from` a stage). */
function copiedFromContext(dockerfile: string): string[] {
  const sources: string[] = [];
  for (const [, args] of dockerfile.matchAll(/^COPY\s+(.+)$/gm)) {
    const words = args!.trim().split(/\s+/);
    if (words.some((word) => word.startsWith("--from="))) continue;
    sources.push(...words.filter((word) => !word.startsWith("--")).slice(0, -1));
  }
  return sources;
}

async function filesUnder(path: string): Promise<string[]> {
  if (!(await Deno.stat(path)).isDirectory) return [path];
  const files: string[] = [];
  for await (const entry of Deno.readDir(path)) files.push(...await filesUnder(join(path, entry.name)));
  return files;
}

async function repositoryRules(): Promise<IgnoreRule[]> {
  return parseDockerignore(await Deno.readTextFile(join(ROOT, ".dockerignore")));
}

Deno.test(".dockerignore keeps the data directory, backups, build and test output out of the build context", async () => {
  const rules = await repositoryRules();
  const letThrough = KEPT_OUT.filter((path) => !isIgnored(rules, path));
  assert.deepEqual(letThrough, []);
});

Deno.test(".dockerignore lets in every file the Dockerfile copies", async () => {
  const rules = await repositoryRules();
  const sources = copiedFromContext(await Deno.readTextFile(join(ROOT, "Dockerfile")));
  assert.ok(sources.includes("main.ts") && sources.includes("src/"), `COPY sources: ${sources.join(", ")}`);
  const files = (await Promise.all(sources.map((source) => filesUnder(join(ROOT, source))))).flat();
  const keptOut = files.map((file) => relative(ROOT, file)).filter((path) => isIgnored(rules, path));
  assert.deepEqual(keptOut, []);
});

Deno.test("isIgnored() reads patterns as Docker does: anchored at the root, parents decide for their files", () => {
  const example = parseDockerignore("# comment\n*\n!src/\nsrc/**/*.db\n/dist\n");
  assert.equal(isIgnored(example, "data/vault.key"), true);
  assert.equal(isIgnored(example, "src/cli/main.ts"), false);
  assert.equal(isIgnored(example, "src/store/copy.db"), true);
  assert.equal(isIgnored(example, "dist"), true);
  assert.equal(isIgnored(parseDockerignore("*.db\n"), "data/gatehouse.db"), false);
  assert.throws(() => parseDockerignore("data[0-9]\n"), TypeError);
});
