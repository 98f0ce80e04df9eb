/** The `gatehouse` executable: hands the command line to the CLI. */
import { runCli } from "./src/cli/main.ts";
import { flushLogs } from "./src/log/buffered_stdout.ts";

if (import.meta.main) {
  const code = await runCli(Deno.args);
  // Whatever is still buffered goes out before the exit (the `unload` hook does too; this is explicit).
  flushLogs();
  Deno.exit(code);
}
