/**
 * A child process for `exit_test.ts`: logs numbered lines through the default logger (the process's
 * buffered stdout), then ends as the first argument says.
 *
 *     deno run _log_then_exit.ts <exit|uncaught|end> <lines>
 */
import { createLogger } from "../../src/log/logger.ts";
import { exitOnUncaughtErrors } from "../../src/log/uncaught_errors.ts";

const [how = "exit", count = "1000"] = Deno.args;
const lines = Number(count);
const log = createLogger();
const tick = () => new Promise((resolve) => setTimeout(resolve, 0));

if (how === "exit") {
  // Every line is still in the buffer at the exit: no task has ended since the first.
  for (let seq = 0; seq < lines; seq++) log.info("line", { seq });
  Deno.exit(0);
} else if (how === "uncaught") {
  exitOnUncaughtErrors(log, { exit: Deno.exit });
  // Half the lines go out first, so that a write is in flight when the error comes.
  for (let seq = 0; seq < lines / 2; seq++) log.info("line", { seq });
  await tick();
  for (let seq = lines / 2; seq < lines; seq++) log.info("line", { seq });
  setTimeout(() => {
    throw new Error("boom");
  }, 0);
} else {
  // A normal end, the lines spread over many tasks, with writes in flight meanwhile.
  for (let seq = 0; seq < lines; seq++) {
    log.info("line", { seq });
    if (seq % 100 === 99) await tick();
  }
}
