/** One problem found in a registry or policy file, positioned for `file:line:col: message` output. */
export interface ConfigProblem {
  readonly file: string;
  /** 1-based line; 0 when the problem concerns the file as a whole. */
  readonly line: number;
  /** 1-based column; 0 when the problem concerns the file as a whole. */
  readonly col: number;
  readonly message: string;
}

/** `file:line:col`: where something is written in the registry or a policy file. */
export function formatLocation(where: { file: string; line: number; col: number }): string {
  return `${where.file}:${where.line}:${where.col}`;
}

/** Formats a problem the way compilers do, so editors and CI logs can jump to it. */
export function formatProblem(problem: ConfigProblem): string {
  return problem.line > 0
    ? `${formatLocation(problem)}: ${problem.message}`
    : `${problem.file}: ${problem.message}`;
}

/** Formats a warning: a problem that does not stop the registry from loading. */
export function formatWarning(warning: ConfigProblem): string {
  return formatProblem({ ...warning, message: `warning: ${warning.message}` });
}

/** Orders problems by file, then position, so output is stable. */
export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) =>
    a.file === b.file ? a.line - b.line || a.col - b.col : a.file < b.file ? -1 : 1
  );
}

/** A registry that cannot be used; carries every problem found, never a secret value. */
export class ConfigError extends Error {
  readonly code = "ERR_CONFIG";
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const sorted = sortProblems(problems);
    super(sorted.map(formatProblem).join("\n"));
    this.name = "ConfigError";
    this.problems = Object.freeze(sorted);
  }
}
