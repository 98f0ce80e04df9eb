/**
 * The npm bridges people put in front of a stdio MCP server today, pinned, fetched and run with npx, each
 * set up to serve the stdio server over Streamable HTTP on 127.0.0.1.
 */
import { findDescendant, freePort, type RunningProcess, spawnProcess, waitForPort } from "./processes.ts";

export interface Bridge {
  /** How the report names it, with its version and the flags that matter. */
  readonly label: string;
  /** The package as npx fetches it. */
  readonly spec: string;
  /** The arguments after `npx -y SPEC`, for the stdio server `command` on `port`. */
  args(command: readonly string[], port: number): string[];
  /** Where its Streamable HTTP endpoint is. */
  readonly path: string;
  /** Matches the command line of the bridge's own process (below npx and its shell). */
  readonly processPattern: RegExp;
}

/** A word as a POSIX shell reads it back (supergateway runs its `--stdio` command through a shell). */
function shellQuote(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'"'"'`)}'`;
}

export const BRIDGES: readonly Bridge[] = [
  {
    // Stateful: one server process per session, the mode for servers that keep state. (Its stateless mode
    // starts a process and initializes it for every single request.) It listens on every interface and
    // has no option to bind to one; the benchmark reaches it on 127.0.0.1.
    label: "supergateway 4.0.0 (--stateful)",
    spec: "supergateway@4.0.0",
    args: (command, port) => [
      "--stdio",
      command.map(shellQuote).join(" "),
      "--outputTransport",
      "streamableHttp",
      "--stateful",
      "--port",
      String(port),
      "--logLevel",
      "none",
    ],
    path: "/mcp",
    processPattern: /^node .*supergateway/,
  },
  {
    // Defaults (stateful: one server process per session), only the address and the transport given.
    label: "mcp-proxy 6.7.19",
    spec: "mcp-proxy@6.7.19",
    args: (command, port) => [
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "--server",
      "stream",
      "--",
      ...command,
    ],
    path: "/mcp",
    processPattern: /^node .*mcp-proxy/,
  },
];

export interface RunningBridge {
  readonly url: string;
  readonly process: RunningProcess;
  /** The bridge's own process (npx starts it through a shell), when it could be found. */
  readonly bridgePid: number | undefined;
}

/** Fetches (first time) and starts `bridge` in front of `command`; waits until its port accepts. */
export async function startBridge(
  bridge: Bridge,
  command: readonly string[],
  timeoutMs: number,
): Promise<RunningBridge> {
  const port = freePort();
  const process = spawnProcess(bridge.label, "npx", ["-y", bridge.spec, ...bridge.args(command, port)], {
    env: { npm_config_update_notifier: "false", npm_config_fund: "false" },
  });
  try {
    await waitForPort(port, process, timeoutMs);
  } catch (error) {
    await process.stop();
    throw error;
  }
  const bridgePid = findDescendant(process.pid, bridge.processPattern);
  return { url: `http://127.0.0.1:${port}${bridge.path}`, process, bridgePid };
}
