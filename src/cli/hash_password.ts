/** `gatehouse hash-password`: reads a password and prints its Argon2id hash for `login.users`. */
import { hashPassword } from "../login/password.ts";
import { type Command, parseCommandArgs, UsageError } from "./args.ts";

const decoder = new TextDecoder();

/** Reads a line from the terminal without echoing it. */
async function readHidden(prompt: string, io: { stderr(text: string): void }): Promise<string> {
  io.stderr(prompt);
  Deno.stdin.setRaw(true);
  let password = "";
  const buffer = new Uint8Array(64);
  try {
    while (true) {
      const read = await Deno.stdin.read(buffer);
      if (read === null) break;
      for (const char of decoder.decode(buffer.subarray(0, read))) {
        if (char === "\r" || char === "\n") return password;
        if (char === "\u0003") throw new UsageError("Cancelled");
        if (char === "\u007f" || char === "\b") password = password.slice(0, -1);
        else password += char;
      }
    }
    return password;
  } finally {
    Deno.stdin.setRaw(false);
    io.stderr("\n");
  }
}

/** Reads all of stdin and drops one trailing newline (as `echo` or a file adds). */
async function readPiped(): Promise<string> {
  const text = await new Response(Deno.stdin.readable).text();
  return text.replace(/\r?\n$/, "");
}

export const hashPasswordCommand: Command = {
  help: `Usage: gatehouse hash-password

Reads a password from standard input (without echo on a terminal, asking twice) and prints its
argon2id hash for login.users.NAME.password_hash in registry.yaml:

  gatehouse hash-password
  printf '%s' "$PASSWORD" | gatehouse hash-password

Options:
  -h, --help   show this help`,
  async run(args, io) {
    parseCommandArgs(args, {});
    let password: string;
    if (Deno.stdin.isTerminal()) {
      password = await readHidden("Password: ", io);
      if (password !== await readHidden("Repeat: ", io)) throw new UsageError("The passwords do not match");
    } else {
      password = await readPiped();
    }
    if (password.length === 0) throw new UsageError("Cannot hash password: it is empty");
    io.stdout(`${await hashPassword(password)}\n`);
    return 0;
  },
};
