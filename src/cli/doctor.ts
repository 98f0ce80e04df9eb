/** `gatehouse doctor`: runs the doctor's checks and prints them as a table with a summary. */
import { resolve } from "node:path";
import { formatProblem } from "../config/errors.ts";
import { loadRegistry } from "../config/load.ts";
import { DEFAULT_CHECK_TIMEOUT_MS, runDoctorChecks } from "../doctor/checks.ts";
import type { CheckRow } from "../doctor/verdict.ts";
import { checkDataDir } from "../doctor/data_dir.ts";
import { type Command, parseCommandArgs } from "./args.ts";

const COLUMNS = ["check", "target", "result", "detail"] as const;
const TIMEOUT_SECONDS = DEFAULT_CHECK_TIMEOUT_MS / 1000;

/** The rows as aligned columns under a header line. */
export function formatCheckTable(rows: readonly CheckRow[]): string {
  const widths = COLUMNS.slice(0, -1).map((column) =>
    Math.max(column.length, ...rows.map((row) => row[column].length))
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, index) => index < widths.length ? cell.padEnd(widths[index]!) : cell).join("  ")
      .trimEnd();
  return [line(COLUMNS), ...rows.map((row) => line(COLUMNS.map((column) => row[column])))]
    .map((text) => `${text}\n`).join("");
}

/** `9 checks: 7 ok, 1 warn, 1 FAIL`. */
export function summarizeChecks(rows: readonly CheckRow[]): string {
  const count = (result: CheckRow["result"]) => rows.filter((row) => row.result === result).length;
  return `${rows.length} check${rows.length === 1 ? "" : "s"}: ${count("ok")} ok, ${count("warn")} warn, ` +
    `${count("FAIL")} FAIL`;
}

export const doctorCommand: Command = {
  help: `Usage: gatehouse doctor [--registry PATH] [--listen HOST:PORT] [--data DIR]

Loads the registry as check does, then checks what the file alone cannot show, printing one row per
check (ok, warn or FAIL) and a summary:

  public_url      https, unless its host is this machine; set when others reach an oauth gateway
  backend         each http and sse backend answers (any HTTP status counts)
  command         each stdio backend's command exists and is executable (it is not run)
  service         each service's metadata is found (RFC 8414, then OpenID), or its token endpoint answers
  login_provider  each OpenID provider's discovery works; GitHub's token endpoint answers
  data_dir        exists (warn if not: the first start makes it), mode 0700, writable; warns when its
                  file system has less than 100 MiB or 5% free
  database        gatehouse.db, if present: mode 0600, owned and writable by the data directory's
                  owner (the serving user), opens, passes quick_check

Network checks run at once, each given ${TIMEOUT_SECONDS} s. Headers that differ per user are not sent,
and no header value is printed. Exits 1 when any check FAILs (a registry that does not load is one), else 0.

Options:
  --registry PATH     the registry file (default: ./registry.yaml)
  --listen HOST:PORT  overrides gateway.listen, as for serve (give what the gateway is started with)
  --data DIR          overrides gateway.data_dir, as for serve
  -h, --help          show this help`,
  async run(args, io) {
    const { values } = parseCommandArgs(args, {
      registry: { type: "string" },
      listen: { type: "string" },
      data: { type: "string" },
    });
    const path = values.registry ?? "registry.yaml";
    const loaded = await loadRegistry(path, { dataDir: values.data, listen: values.listen });
    let rows: CheckRow[];
    if (loaded.ok) {
      const { registry } = loaded;
      const backends = Object.keys(registry.backends).length;
      rows = [
        {
          check: "registry",
          target: path,
          result: "ok",
          detail: `loads (${backends} backend${backends === 1 ? "" : "s"})`,
        },
        ...await runDoctorChecks(registry),
      ];
    } else {
      for (const problem of loaded.problems) io.stderr(`${formatProblem(problem)}\n`);
      const problems = loaded.problems.length;
      rows = [{
        check: "registry",
        target: path,
        result: "FAIL",
        detail: `${problems} problem${
          problems === 1 ? "" : "s"
        } (on standard error, as gatehouse check prints them)`,
      }];
      if (values.data !== undefined) rows.push(...await checkDataDir(resolve(values.data)));
    }
    io.stdout(formatCheckTable(rows));
    io.stdout(`${summarizeChecks(rows)}\n`);
    return rows.some((row) => row.result === "FAIL") ? 1 : 0;
  },
};
