/** Levels in increasing severity. */
export type LogLevel = "debug" | "info" | "warn" | "error";
const SEVERITY: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export type LogFields = Record<string, unknown>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
  /** A logger that adds these fields to every line. */
  child(fields: LogFields): Logger;
}

/** Keys whose values are never written, at any depth. */
const SECRET_KEY =
  /pass(word)?|secret|token|authori[sz]ation|cookie|credential|ticket|verifier|^code$|api[-_]?key|private/i;
export const REDACTED = "[redacted]";

/** A copy of a value safe to log: secret-named keys redacted, errors reduced to name and message. */
export function redact(value: unknown, depth = 0): unknown {
  if (depth > 8) return "[deep]";
  if (value instanceof Error) {
    return { name: value.name, message: value.message, ...("code" in value ? { code: value.code } : {}) };
  }
  if (Array.isArray(value)) return value.map((item) => redact(item, depth + 1));
  if (value !== null && typeof value === "object") {
    if (typeof (value as { toJSON?: unknown }).toJSON === "function") return value;
    return Object.fromEntries(
      Object.entries(value).map((
        [key, item],
      ) => [key, SECRET_KEY.test(key) ? REDACTED : redact(item, depth + 1)]),
    );
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}

const encoder = new TextEncoder();

function writeStdout(line: string): void {
  let bytes = encoder.encode(line);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}

/** Writes one JSON object per line (journald-friendly) to stdout unless told otherwise. */
export function createLogger(
  options: { level?: LogLevel; write?: (line: string) => void; now?: () => Date; fields?: LogFields } = {},
): Logger {
  const minimum = SEVERITY[options.level ?? "info"];
  const write = options.write ?? writeStdout;
  const now = options.now ?? (() => new Date());
  const base = options.fields ?? {};

  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (SEVERITY[level] < minimum) return;
    const entry = redact({ ...base, ...fields }) as LogFields;
    write(JSON.stringify({ time: now().toISOString(), level, msg: message, ...entry }) + "\n");
  };
  return {
    debug: (message, fields) => log("debug", message, fields),
    info: (message, fields) => log("info", message, fields),
    warn: (message, fields) => log("warn", message, fields),
    error: (message, fields) => log("error", message, fields),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** Reads the level from GATEHOUSE_LOG_LEVEL, defaulting to info. */
export function levelFromEnv(value: string | undefined): LogLevel {
  return value === "debug" || value === "warn" || value === "error" ? value : "info";
}
