/** The `gatehouse` executable: hands the command line to the CLI. */
import { runCli } from "./src/cli/main.ts";

if (import.meta.main) Deno.exit(await runCli(Deno.args));
