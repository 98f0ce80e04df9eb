import { formatProblem } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import { type Command, parseCommandArgs } from "./args.ts";

export const checkCommand: Command = {
  name: "check",
  summary: "Validate a registry and its policies without starting",
  help: `Usage: gatehouse check [PATH] [--data DIR]

Validates PATH (default: ./registry.yaml) and every *.yaml in its policies directory, including
\${env:...} and \${secret:...} references, without starting anything or writing any file.
Prints every problem as file:line:col: message and exits 1 when there is any.

Options:
  --data DIR   where \${secret:NAME} files are looked up (DIR/secrets/NAME), as for serve
  -h, --help   show this help`,
  async run(args, io) {
    const { values, positionals } = parseCommandArgs(args, { data: { type: "string" } }, { max: 1 });
    const path = positionals[0] ?? "registry.yaml";
    const result = await loadRegistry(path, { dataDir: values.data });
    if (!result.ok) {
      for (const problem of result.problems) io.stderr(`${formatProblem(problem)}\n`);
      io.stderr(`${result.problems.length} problem${result.problems.length === 1 ? "" : "s"} found\n`);
      return 1;
    }
    const { registry } = result;
    const count = (amount: number, noun: string) => `${amount} ${noun}${amount === 1 ? "" : "s"}`;
    const counts = [
      count(Object.keys(registry.backends).length, "backend"),
      count(Object.keys(registry.services).length, "service"),
      count(registry.policies.length, "rule"),
      count(registry.limits.length, "limit"),
      count(registry.files.length - 1, "policy file"),
    ];
    io.stdout(`${path}: ok (${counts.join(", ")})\n`);
    return 0;
  },
};
