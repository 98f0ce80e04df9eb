/** Durations (`30s`, `1h`) and sizes (`4MiB`) as the registry writes them. */
const DURATION_SECONDS: Record<string, number> = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const SIZE_BYTES: Record<string, number> = {
  b: 1,
  kb: 1000,
  kib: 1024,
  mb: 1000 ** 2,
  mib: 1024 ** 2,
  gb: 1000 ** 3,
  gib: 1024 ** 3,
};

/**
 * Parses a duration such as `90s`, `10m`, `1h30m`, `30d`; a bare number means seconds.
 * Returns undefined when the text is not a duration.
 */
export function parseDurationSeconds(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isFinite(value) && value >= 0 ? value : undefined;
  const text = value.trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const parts = text.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g);
  let total = 0;
  let consumed = "";
  for (const [whole, amount, unit] of parts) {
    total += Number(amount) * (DURATION_SECONDS[unit!] ?? 0);
    consumed += whole;
  }
  return consumed.length > 0 && consumed === text ? total : undefined;
}

/** Parses a size such as `4MiB`, `512KB`, `1000`; a bare number means bytes. */
export function parseSizeBytes(value: string | number): number | undefined {
  if (typeof value === "number") return Number.isInteger(value) && value > 0 ? value : undefined;
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(value.trim());
  if (!match) return undefined;
  const factor = SIZE_BYTES[(match[2] || "b").toLowerCase()];
  if (factor === undefined) return undefined;
  const bytes = Math.floor(Number(match[1]) * factor);
  return bytes > 0 ? bytes : undefined;
}
