import assert from "node:assert/strict";
import { ROOT } from "../helpers/gatehouse_process.ts";
import { RawClient } from "./_connections.ts";
import { within } from "../helpers/mcp_clients.ts";

/** Starts the guarded echo server under `ulimit -n <files>` and returns its port and log lines. */
async function startUnderFileLimit(files: number, headerTimeoutMs: number) {
  const child = new Deno.Command("bash", {
    args: [
      "-c",
      `ulimit -n ${files} && exec "$0" run -A "$1" "$2"`,
      Deno.execPath(),
      `${ROOT}tests/fixtures/guarded_echo_server.ts`,
      String(headerTimeoutMs),
    ],
    stdout: "piped",
    stdin: "null",
    // Deno warns on stderr when its certificate store cannot be read for want of descriptors.
    stderr: "null",
    env: { NO_COLOR: "1" },
  }).spawn();
  const lines: string[] = [];
  const port = Promise.withResolvers<number>();
  (async () => {
    let buffered = "";
    for await (const chunk of child.stdout.pipeThrough(new TextDecoderStream())) {
      buffered += chunk;
      const parts = buffered.split("\n");
      buffered = parts.pop()!;
      for (const line of parts) {
        lines.push(line);
        const match = /^port (\d+)$/.exec(line);
        if (match) port.resolve(Number(match[1]));
      }
    }
    port.reject(new Error("the server exited before listening"));
  })();
  return { child, lines, port: await within(20_000, port.promise, "server start") };
}

Deno.test({
  name: "guard: running out of file descriptors in accept() is logged once, backed off, and survived",
  sanitizeResources: false,
  sanitizeOps: false,
  fn: async () => {
    const { child, lines, port } = await startUnderFileLimit(128, 1500);
    const clients: RawClient[] = [];
    try {
      // Far more idle connections than the process has descriptors for.
      for (let index = 0; index < 300; index++) {
        clients.push(
          await RawClient.connect(port, `127.0.${Math.floor(index / 250) + 10}.${(index % 250) + 1}`),
        );
      }
      await new Promise((resolve) => setTimeout(resolve, 500));
      const acceptFailures = lines.filter((line) => line.includes("accepting a connection failed"));
      assert.equal(acceptFailures.length, 1, `one log line for the burst:\n${lines.join("\n")}`);
      assert.match(acceptFailures[0]!, /Too many open files/);
      // The idle ones are cut at the header timeout; then a new client is served.
      let answered = "";
      for (let attempt = 0; attempt < 40 && answered !== "ok"; attempt++) {
        await new Promise((resolve) => setTimeout(resolve, 250));
        answered = await fetch(`http://127.0.0.1:${port}/`).then((response) => response.text(), () => "");
      }
      assert.equal(answered, "ok");
      assert.equal(
        await Promise.race([child.status.then(() => "exited"), Promise.resolve("running")]),
        "running",
      );
    } finally {
      for (const client of clients) client.close();
      try {
        child.kill("SIGKILL");
      } catch {
        // it exited by itself: the assertions above say so
      }
      await child.status;
    }
  },
});
