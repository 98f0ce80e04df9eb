/** `gatehouse check`: validates the registry and its policy files and prints every problem and warning. */
import { formatProblem, formatWarning, sortProblems } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import { type Command, parseCommandArgs } from "./args.ts";

export const checkCommand: Command = {
  help: `Usage: gatehouse check [PATH] [--data DIR] [--strict]

Validates PATH (default: ./registry.yaml) and every *.yaml in its policies directory, including
\${env:...} and \${secret:...} references, without starting anything or writing any file.
Prints every problem as file:line:col: message and exits 1 when there is any.
Warnings (file:line:col: warning: message) point at rules that cannot do what they seem to: a backend
name or glob matching no backend, a rule shadowed by an earlier deny. They do not change the exit code,
unless --strict is given (for CI).

Options:
  --data DIR   where \${secret:NAME} files are looked up (DIR/secrets/NAME), as for serve
  --strict     fail (exit 1) on warnings too
  -h, --help   show this help`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, {
      data: { type: "string" },
      strict: { type: "boolean" },
    }, { max: 1 });
    const path = positionals[0] ?? "registry.yaml";
    const result = await loadRegistry(path, { dataDir: values.data });
    const count = (amount: number, noun: string) => `${amount} ${noun}${amount === 1 ? "" : "s"}`;
    const problems = result.ok ? [] : result.problems;
    // Problems and warnings together, in file and position order, as a compiler prints them.
    const lines = sortProblems([...problems, ...result.warnings]).map((problem) =>
      result.warnings.includes(problem) ? formatWarning(problem) : formatProblem(problem)
    );
    for (const line of lines) io.stderr(`${line}\n`);
    const warnings = result.warnings.length > 0 ? count(result.warnings.length, "warning") : undefined;
    if (!result.ok) {
      io.stderr(`${count(problems.length, "problem")}${warnings ? ` and ${warnings}` : ""} found\n`);
      return 1;
    }
    if (values.strict && warnings) {
      io.stderr(`${warnings} found; --strict fails on warnings\n`);
      return 1;
    }
    const { registry } = result;
    const counts = [
      count(Object.keys(registry.backends).length, "backend"),
      count(Object.keys(registry.services).length, "service"),
      count(registry.policies.length, "rule"),
      count(registry.limits.length, "limit"),
      count(registry.files.length - 1, "policy file"),
      ...(warnings ? [warnings] : []),
    ];
    io.stdout(`${path}: ok (${counts.join(", ")})\n`);
    return 0;
  },
};
