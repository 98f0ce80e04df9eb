/** Separates a backend's prefix from a tool or prompt name in the aggregate endpoint (`github__search`). */
export const SEPARATOR = "__";
/** Longest name some clients accept for tools and prompts. */
export const MAX_NAME_LENGTH = 64;

/** An 8-hex-digit FNV-1a hash: short, stable across runs and machines. */
function shortHash(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}

/**
 * `{prefix}__{name}`, kept within 64 characters: a longer one keeps its start and ends in `_` and a
 * hash of the full name, so it is deterministic and distinct.
 */
export function prefixedName(prefix: string, name: string): string {
  const full = `${prefix}${SEPARATOR}${name}`;
  if (full.length <= MAX_NAME_LENGTH) return full;
  const hash = shortHash(full);
  return `${full.slice(0, MAX_NAME_LENGTH - hash.length - 1)}_${hash}`;
}

/** Maps aggregate names back to backends and original names; built from what each list returned. */
export class NameTable {
  readonly #byExposed = new Map<string, { backend: string; name: string }>();
  /** Names that had to be shortened, for the status page. */
  readonly shortened = new Map<string, string>();

  add(prefix: string, backend: string, name: string): string {
    const exposed = prefixedName(prefix, name);
    this.#byExposed.set(exposed, { backend, name });
    if (exposed !== `${prefix}${SEPARATOR}${name}`) {
      this.shortened.set(`${prefix}${SEPARATOR}${name}`, exposed);
    }
    return exposed;
  }

  resolve(exposed: string): { backend: string; name: string } | undefined {
    return this.#byExposed.get(exposed);
  }
}

/** Parses `{prefix}__{name}` without a table (for names that were not shortened). */
export function splitPrefixed(exposed: string): { prefix: string; name: string } | undefined {
  const index = exposed.indexOf(SEPARATOR);
  if (index <= 0) return undefined;
  return { prefix: exposed.slice(0, index), name: exposed.slice(index + SEPARATOR.length) };
}
