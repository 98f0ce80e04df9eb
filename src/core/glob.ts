/**
 * Globs of policies, limits and tool filters: `*` any run of characters (including none), `?` one
 * character, `[abc]` / `[a-z]` / `[!abc]` one character of (or not of) a set. Everything else is literal.
 * Compiled once per registry generation, never per request.
 */
export function isGlob(pattern: string): boolean {
  return /[*?[]/.test(pattern);
}

export function globToRegExp(glob: string): RegExp {
  let source = "";
  for (let index = 0; index < glob.length; index++) {
    const char = glob[index]!;
    if (char === "*") source += "[\\s\\S]*";
    else if (char === "?") source += "[\\s\\S]";
    else if (char === "[") {
      // A `]` just after `[` or `[!` is a member of the set, not its end (as in POSIX fnmatch).
      const first = glob[index + 1] === "!" ? index + 2 : index + 1;
      const end = glob.indexOf("]", first + 1);
      if (end === -1) {
        source += "\\[";
        continue;
      }
      let set = glob.slice(index + 1, end);
      const negated = set.startsWith("!");
      if (negated) set = set.slice(1);
      source += `[${negated ? "^" : ""}${set.replace(/[\\\]^]/g, "\\$&")}]`;
      index = end;
    } else source += char.replace(/[.+^${}()|\\\/\]]/g, "\\$&");
  }
  return new RegExp(`^${source}$`);
}

/** A set of globs compiled into one test; an empty set matches nothing. */
export class GlobSet {
  readonly patterns: readonly string[];
  readonly #literals: ReadonlySet<string>;
  readonly #expression: RegExp | undefined;
  readonly any: boolean;

  constructor(patterns: readonly string[]) {
    this.patterns = patterns;
    this.#literals = new Set(patterns.filter((pattern) => !isGlob(pattern)));
    const globs = patterns.filter(isGlob);
    this.any = globs.includes("*");
    this.#expression = globs.length > 0
      ? new RegExp(globs.map((glob) => globToRegExp(glob).source).join("|"))
      : undefined;
  }

  test(value: string): boolean {
    return this.any || this.#literals.has(value) || (this.#expression?.test(value) ?? false);
  }
}
