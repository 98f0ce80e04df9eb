/**
 * The one logger: JSON lines with secret-named fields redacted, written by default to the process's
 * buffered stdout (`buffered_stdout.ts`), so that logging a request never waits on a write.
 */
import { stdoutLines } from "./buffered_stdout.ts";

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

/** Whether each top-level field name seen so far is secret; the names come from code, so they are few. */
const secretKeys = new Map<string, boolean>();
const MAX_REMEMBERED_KEYS = 1024;

/** `SECRET_KEY.test(key)`, remembered for the first thousand names (a field name is tested per line). */
export function isSecretKey(key: string): boolean {
  let secret = secretKeys.get(key);
  if (secret === undefined) {
    secret = SECRET_KEY.test(key);
    if (secretKeys.size < MAX_REMEMBERED_KEYS) secretKeys.set(key, secret);
  }
  return secret;
}

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

/**
 * A field's value safe to log. The common case, a primitive under a name that is not secret, is taken as
 * it is; objects go through `redact()`; a secret name is redacted whatever its value.
 */
function safeField(key: string, value: unknown): unknown {
  if (isSecretKey(key)) return REDACTED;
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
    case "undefined":
      return value;
    case "bigint":
      return value.toString();
    default:
      return redact(value, 1);
  }
}

/** Copies fields onto a line's entry, safe; later keys win, in the place of the first (like a spread). */
function addSafeFields(entry: LogFields, fields: LogFields, alreadySafe: boolean): void {
  for (const key in fields) {
    if (!Object.hasOwn(fields, key)) continue;
    const value = alreadySafe ? fields[key] : safeField(key, fields[key]);
    // An own "__proto__" is data here, as it is in a spread; assigning it would set the prototype.
    if (key === "__proto__") {
      Object.defineProperty(entry, key, { value, enumerable: true, writable: true, configurable: true });
    } else entry[key] = value;
  }
}

/** The current time as ISO 8601, computed once per millisecond (a busy gateway logs many lines in one). */
let lastMillis = Number.NaN;
let lastIso = "";
function isoNow(): string {
  const millis = Date.now();
  if (millis !== lastMillis) {
    lastMillis = millis;
    lastIso = new Date(millis).toISOString();
  }
  return lastIso;
}

export interface LoggerOptions {
  level?: LogLevel;
  /** Takes each line, ending in "\n" (default: the process's buffered stdout). */
  write?: (line: string) => void;
  now?: () => Date;
  fields?: LogFields;
}

/** Writes one JSON object per line (journald-friendly) to stdout unless told otherwise. */
export function createLogger(options: LoggerOptions = {}): Logger {
  const minimum = SEVERITY[options.level ?? "info"];
  const write = options.write ?? stdoutLines().write;
  const injectedNow = options.now;
  const timestamp = injectedNow ? () => injectedNow().toISOString() : isoNow;
  const base = options.fields ?? {};
  // The base fields are the same on every line: made safe once.
  const safeBase: LogFields = {};
  addSafeFields(safeBase, base, false);

  const log = (level: LogLevel, message: string, fields?: LogFields) => {
    if (SEVERITY[level] < minimum) return;
    const entry: LogFields = { time: timestamp(), level, msg: message };
    addSafeFields(entry, safeBase, true);
    if (fields) addSafeFields(entry, fields, false);
    write(JSON.stringify(entry) + "\n");
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
