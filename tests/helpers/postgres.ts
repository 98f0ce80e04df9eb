/**
 * A real PostgreSQL server for the tests (Debian's `postgresql` package): one per test module's worker,
 * started on first use in a fresh temporary directory, listening on 127.0.0.1 on a free port, and stopped
 * (its directory removed) when the worker ends. `freshDatabase()` gives each test an empty database of its
 * own, owned by a role with a password, as a `postgres://` URL like a real deployment's.
 */
import { join } from "node:path";

/** Where Debian installs each major version's server programs: /usr/lib/postgresql/<major>/bin. */
const DEBIAN_POSTGRESQL = "/usr/lib/postgresql";
const INSTALL_HINT = "install it with `apt-get install -y postgresql` (the tests start their own server)";
/** How many times a start is tried on a new port when the one picked was taken meanwhile. */
const START_ATTEMPTS = 3;

interface Server {
  readonly bin: string;
  readonly dir: string;
  readonly dataDir: string;
  readonly port: number;
  /** The command prefix that runs a server program as the owner of `dir` (`runuser` when we are root). */
  readonly asOwner: readonly string[];
}

let server: Promise<Server> | undefined;
/** Databases are created one at a time (CREATE DATABASE copies template1, which must be idle). */
let creating: Promise<unknown> = Promise.resolve();
let databases = 0;

/**
 * Creates an empty database owned by a new role with a password, on this worker's server (started on the
 * first call), and returns its URL: `postgres://role:password@127.0.0.1:port/database`.
 */
export function freshDatabase(): Promise<string> {
  const created = creating.then(async () => {
    const running = await (server ??= startServer());
    const name = `gatehouse_test_${++databases}`;
    const password = randomHex(16);
    await psql(running, [
      `CREATE ROLE ${name} LOGIN PASSWORD '${password}'`,
      `CREATE DATABASE ${name} OWNER ${name}`,
    ]);
    return `postgres://${name}:${password}@127.0.0.1:${running.port}/${name}`;
  });
  creating = created.catch(() => {});
  return created;
}

/** Runs SQL statements as the server's superuser in `database` (each one on its own, outside a transaction). */
export async function adminSql(statements: readonly string[], database = "postgres"): Promise<string> {
  const running = await (server ??= startServer());
  return await psql(running, statements, database);
}

/** The directory of the newest PostgreSQL server programs installed, or a failure saying how to get them. */
function findBinDir(): string {
  const versions: number[] = [];
  try {
    for (const entry of Deno.readDirSync(DEBIAN_POSTGRESQL)) {
      if (entry.isDirectory && /^\d+$/.test(entry.name)) versions.push(Number(entry.name));
    }
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
  for (const version of versions.sort((a, b) => b - a)) {
    const bin = join(DEBIAN_POSTGRESQL, String(version), "bin");
    if (["initdb", "pg_ctl", "postgres", "psql"].every((program) => isFile(join(bin, program)))) return bin;
  }
  throw new Error(
    `Cannot start PostgreSQL for the tests: no server in ${DEBIAN_POSTGRESQL}; ${INSTALL_HINT}`,
  );
}

function isFile(path: string): boolean {
  try {
    return Deno.statSync(path).isFile;
  } catch {
    return false;
  }
}

/** initdb refuses root: as root, the server's files belong to the `postgres` user and it runs as that user. */
function serverOwner(dir: string): readonly string[] {
  if (Deno.uid() !== 0) return [];
  const id = (flag: string) => {
    const output = new Deno.Command("id", { args: [flag, "postgres"], stdout: "piped", stderr: "piped" })
      .outputSync();
    if (!output.success) {
      throw new Error(
        `Cannot start PostgreSQL for the tests as root: no "postgres" user to run it as; ${INSTALL_HINT}`,
      );
    }
    return Number(new TextDecoder().decode(output.stdout).trim());
  };
  Deno.chownSync(dir, id("-u"), id("-g"));
  return ["runuser", "-u", "postgres", "--"];
}

async function startServer(): Promise<Server> {
  const bin = findBinDir();
  // As root the server runs as `postgres`, who must reach the directory: /tmp, whatever TMPDIR says.
  const dir = Deno.makeTempDirSync({ prefix: "gatehouse-pg-", dir: Deno.uid() === 0 ? "/tmp" : undefined });
  let started: Server | undefined;
  globalThis.addEventListener("unload", () => stopServer(started, dir));
  const asOwner = serverOwner(dir);
  const dataDir = join(dir, "data");
  // Local (socket) connections are the superuser's, for freshDatabase(); TCP ones need a password.
  await run(asOwner, join(bin, "initdb"), [
    "--pgdata",
    dataDir,
    "--username",
    "postgres",
    "--auth-local",
    "trust",
    "--auth-host",
    "scram-sha-256",
    "--encoding",
    "UTF8",
    "--locale",
    "C",
    "--no-sync",
  ]);
  let failure = "";
  for (let attempt = 1; attempt <= START_ATTEMPTS; attempt++) {
    const port = freePort();
    const options = [
      "-c listen_addresses=127.0.0.1",
      `-p ${port}`,
      `-k '${dir}'`, // the Unix socket stays in the temporary directory
      "-c fsync=off",
      "-c synchronous_commit=off",
      "-c full_page_writes=off",
      "-c max_connections=300",
    ].join(" ");
    const log = join(dir, `server-${attempt}.log`);
    // `-w` returns once the server accepts connections; the server is then no child of this process.
    const output = await new Deno.Command(asOwner[0] ?? join(bin, "pg_ctl"), {
      args: [...asOwner.slice(1), ...(asOwner.length > 0 ? [join(bin, "pg_ctl")] : []), "start", "-w"]
        .concat(["-D", dataDir, "-l", log, "-o", options]),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    if (output.success) {
      started = { bin, dir, dataDir, port, asOwner };
      await watchOver(started);
      return started;
    }
    failure = `${decode(output.stderr)}${readTail(log)}`;
  }
  throw new Error(`Cannot start PostgreSQL for the tests (${START_ATTEMPTS} tries): ${failure}`);
}

/** Stops the server at once (the data is thrown away) and removes its directory; runs at unload. */
function stopServer(started: Server | undefined, dir: string): void {
  if (started !== undefined) {
    const [program, ...prefix] = [...started.asOwner, join(started.bin, "pg_ctl")];
    new Deno.Command(program!, {
      args: [...prefix, "stop", "-m", "immediate", "-D", started.dataDir],
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).outputSync();
  }
  try {
    Deno.removeSync(dir, { recursive: true });
  } catch {
    // Gone already.
  }
}

/**
 * Starts a watchdog, detached from this process, that stops the server and removes its directory once this
 * process is gone: a test run ended by a signal (Ctrl-C, a CI timeout) never runs its unload handlers.
 */
async function watchOver(running: Server): Promise<void> {
  const quote = (word: string) => `'${word.replaceAll("'", `'\\''`)}'`;
  const stop = [
    ...running.asOwner,
    join(running.bin, "pg_ctl"),
    "stop",
    "-m",
    "immediate",
    "-D",
    running.dataDir,
  ]
    .map(quote).join(" ");
  const watchdog = `while kill -0 ${Deno.pid} 2>/dev/null; do sleep 1; done; ` +
    `if [ -d ${quote(running.dataDir)} ]; then ${stop}; rm -rf ${quote(running.dir)}; fi`;
  // In a session of its own (setsid), so that a signal to this process's group (Ctrl-C, a timeout)
  // does not end the watchdog too; `-f` returns at once, leaving it running with no tie to this process.
  const output = await new Deno.Command("setsid", {
    args: ["-f", "sh", "-c", watchdog],
    stdin: "null",
    // Not piped: the watchdog would hold the pipe open, and this call would wait for it.
    stdout: "null",
    stderr: "null",
  }).output();
  if (!output.success) throw new Error(`Cannot start the watchdog of the tests' PostgreSQL (setsid)`);
}

/** Runs `program` (as the server's owner) and fails with its output when it fails. */
async function run(asOwner: readonly string[], program: string, args: string[]): Promise<string> {
  const [command, ...prefix] = [...asOwner, program];
  const output = await new Deno.Command(command!, {
    args: [...prefix, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!output.success) {
    throw new Error(`Cannot run ${program} for the tests' PostgreSQL: ${decode(output.stderr)}`);
  }
  return decode(output.stdout);
}

/** psql as the superuser over the server's Unix socket, one `-c` per statement, stopping at an error. */
function psql(running: Server, statements: readonly string[], database = "postgres"): Promise<string> {
  const args = [
    "-X",
    "-q",
    "-A",
    "-t",
    "-v",
    "ON_ERROR_STOP=1",
    "-h",
    running.dir,
    "-p",
    String(running.port),
  ]
    .concat(["-U", "postgres", "-d", database]);
  for (const statement of statements) args.push("-c", statement);
  return run(running.asOwner, join(running.bin, "psql"), args);
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

function readTail(path: string): string {
  try {
    return Deno.readTextFileSync(path).split("\n").slice(-20).join("\n");
  } catch {
    return "";
  }
}

function randomHex(bytes: number): string {
  return Array.from(
    crypto.getRandomValues(new Uint8Array(bytes)),
    (byte) => byte.toString(16).padStart(2, "0"),
  )
    .join("");
}

function decode(bytes: Uint8Array): string {
  return new TextDecoder().decode(bytes);
}
