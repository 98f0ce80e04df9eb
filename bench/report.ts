/**
 * What a benchmark section hands back, and how it is shown: plain-text tables, then one line per target
 * saying whether it is met.
 */

export interface Table {
  readonly title: string;
  readonly columns: readonly string[];
  readonly rows: readonly (readonly string[])[];
}

/** One target of product section 9 as measured; `met` is null when it could not be measured. */
export interface TargetCheck {
  readonly name: string;
  readonly measured: string;
  readonly target: string;
  readonly met: boolean | null;
}

export interface SectionResult {
  /** The key of the section in the JSON results. */
  readonly key: string;
  readonly title: string;
  readonly tables: Table[];
  readonly notes: string[];
  readonly targets: TargetCheck[];
  /** The numbers, as written to the JSON file. */
  readonly data: Record<string, unknown>;
  /** Set when the section could not run to its end. */
  error?: string;
}

export function newSection(key: string, title: string): SectionResult {
  return { key, title, tables: [], notes: [], targets: [], data: {} };
}

/** Milliseconds with two decimals. */
export function ms(value: number): string {
  return Number.isFinite(value) ? value.toFixed(2) : "-";
}

/** A signed difference in milliseconds: `+0.41`. */
export function signedMs(value: number): string {
  if (!Number.isFinite(value)) return "-";
  return `${value >= 0 ? "+" : "-"}${Math.abs(value).toFixed(2)}`;
}

export function perSecond(value: number): string {
  return Number.isFinite(value) ? value.toFixed(0) : "-";
}

export function percent(ratio: number): string {
  return Number.isFinite(ratio) ? `${(ratio * 100).toFixed(0)}%` : "-";
}

export function megabytes(bytes: number): string {
  return Number.isFinite(bytes) ? (bytes / (1024 * 1024)).toFixed(1) : "-";
}

/** A table as aligned text: numbers right, words left. */
export function renderTable(table: Table): string {
  const widths = table.columns.map((column, index) =>
    Math.max(column.length, ...table.rows.map((row) => (row[index] ?? "").length))
  );
  const numeric = table.columns.map((_, index) =>
    table.rows.length > 0 && table.rows.every((row) => /^[-+]?[\d.]+%?$|^-?$/.test(row[index] ?? ""))
  );
  const line = (cells: readonly string[]) =>
    cells.map((cell, index) => numeric[index] ? cell.padStart(widths[index]!) : cell.padEnd(widths[index]!))
      .join("  ").trimEnd();
  return [
    table.title,
    line(table.columns),
    widths.map((width) => "-".repeat(width)).join("  "),
    ...table.rows.map(line),
  ].join("\n");
}

export function verdict(met: boolean | null): string {
  return met === null ? "not measured" : met ? "met" : "NOT MET";
}

/** `overhead p50 (c=1, /mcp/{backend}) +0.41 ms (target ≤ 1 ms): met` */
export function renderTarget(check: TargetCheck): string {
  return `${check.name} ${check.measured} (target ${check.target}): ${verdict(check.met)}`;
}

export function renderSection(section: SectionResult): string {
  const parts = [`== ${section.title} ==`];
  for (const table of section.tables) parts.push(renderTable(table));
  for (const note of section.notes) parts.push(`note: ${note}`);
  if (section.error) parts.push(`error: ${section.error}`);
  return parts.join("\n\n");
}

export function renderSummary(sections: readonly SectionResult[]): string {
  const lines = ["== Summary =="];
  for (const section of sections) {
    if (section.error) lines.push(`${section.title}: did not complete: ${section.error.split("\n")[0]}`);
    for (const check of section.targets) lines.push(renderTarget(check));
  }
  return lines.join("\n");
}

const encoder = new TextEncoder();

/** Writes a line to stdout at once (for progress printed while a section runs). */
export function printLine(text: string): void {
  let bytes = encoder.encode(`${text}\n`);
  while (bytes.length > 0) bytes = bytes.subarray(Deno.stdout.writeSync(bytes));
}
