/** Doctor check of a stdio backend's command: found on PATH and executable. */
import { join, resolve } from "node:path";
import type { Template } from "../config/template.ts";
import type { Verdict } from "./verdict.ts";

/** A stdio backend's `command`, `env` and `cwd`, as the registry resolved them. */
export interface StdioCommand {
  readonly command: string;
  readonly env: Readonly<Record<string, Template>>;
  readonly cwd: string | undefined;
}

/**
 * Whether a stdio backend's command can be started, without starting it: a path (with a `/`) is taken
 * relative to the backend's `cwd`, a bare name is looked up in the PATH the process will get (the
 * backend's own `env.PATH`, else the gateway's).
 */
export async function checkStdioCommand(
  stdio: StdioCommand,
  options: { env: (name: string) => string | undefined; cwd: string },
): Promise<Verdict> {
  const base = resolve(options.cwd, stdio.cwd ?? ".");
  if (stdio.command.includes("/")) {
    const path = resolve(base, stdio.command);
    const problem = await executableProblem(path);
    return problem
      ? { result: "FAIL", detail: `${path} ${problem}` }
      : { result: "ok", detail: `${path} is executable` };
  }
  const pathTemplate = Object.hasOwn(stdio.env, "PATH") ? stdio.env.PATH : undefined;
  const searchPath = pathTemplate && !pathTemplate.perUser ? pathTemplate.render() : options.env("PATH");
  const directories = (searchPath ?? "").split(":").filter((directory) => directory !== "");
  for (const directory of directories) {
    const candidate = join(resolve(base, directory), stdio.command);
    if ((await executableProblem(candidate)) === undefined) {
      return { result: "ok", detail: `"${stdio.command}" found at ${candidate}` };
    }
  }
  const where = pathTemplate ? "the backend's env.PATH" : "PATH";
  return {
    result: "FAIL",
    detail: directories.length === 0
      ? `"${stdio.command}" cannot be looked up: ${where} is empty`
      : `"${stdio.command}" is not an executable file in any directory of ${where}`,
  };
}

/** Why `path` cannot be executed, or undefined when it can (as far as its mode says). */
async function executableProblem(path: string): Promise<string | undefined> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return "does not exist";
    if (error instanceof Deno.errors.PermissionDenied) return "cannot be read (permission denied)";
    return `cannot be read: ${error instanceof Error ? error.message : String(error)}`;
  }
  if (!info.isFile) return "is not a file";
  if (info.mode !== null && (info.mode & 0o111) === 0) return "is not executable";
  return undefined;
}
