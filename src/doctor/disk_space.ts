// Free space on the data directory's file system: a full disk makes every write answer 503, so warn early.
import { statfs } from "node:fs/promises";
import type { Verdict } from "./verdict.ts";

/** Below either bound, the free space is reported as low. */
export interface SpaceThresholds {
  readonly minFreeBytes: number;
  readonly minFreePercent: number;
}

const MIB = 1024 * 1024;
export const LOW_SPACE: SpaceThresholds = Object.freeze({ minFreeBytes: 100 * MIB, minFreePercent: 5 });

/** What is free (to an unprivileged user) on a file system, and its size. */
export interface SpaceFigures {
  readonly freeBytes: number;
  readonly totalBytes: number;
}

/**
 * The free space on the file system holding `path`: statfs (blocks available to non-root users), or, where
 * Deno does not grant that (it needs --allow-sys, which the gateway does not get), POSIX `df -Pk`.
 */
export async function spaceOf(path: string): Promise<SpaceFigures> {
  try {
    const stats = await statfs(path);
    return { freeBytes: stats.bavail * stats.bsize, totalBytes: stats.blocks * stats.bsize };
  } catch (error) {
    if (!(error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied)) {
      throw error;
    }
    return await spaceFromDf(path);
  }
}

async function spaceFromDf(path: string): Promise<SpaceFigures> {
  const output = await new Deno.Command("df", { args: ["-Pk", "--", path], stdout: "piped", stderr: "piped" })
    .output();
  const text = new TextDecoder().decode(output.stdout);
  // POSIX format: a header, then "filesystem 1024-blocks used available capacity mounted-on".
  const fields = text.trim().split("\n")[1]?.trim().split(/\s+/) ?? [];
  const totalKiB = Number(fields[1]);
  const availableKiB = Number(fields[3]);
  if (!output.success || !Number.isFinite(totalKiB) || !Number.isFinite(availableKiB)) {
    throw new Error(`df -Pk failed: ${new TextDecoder().decode(output.stderr).trim() || text.trim()}`);
  }
  return { freeBytes: availableKiB * 1024, totalBytes: totalKiB * 1024 };
}

/** `1.5 MiB`, `79 GiB`: two significant figures below 10, whole numbers above. */
export function formatBytes(bytes: number): string {
  const units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  const shown = unit === 0 || value >= 10 ? Math.round(value).toString() : value.toFixed(1);
  return `${shown} ${units[unit]}`;
}

/**
 * `ok` with the figures; `warn` when free space is below `minFreeBytes` or `minFreePercent` of the file
 * system; `FAIL` when none is left (every write is refused until some is freed).
 */
export function judgeSpace(space: SpaceFigures, thresholds: SpaceThresholds = LOW_SPACE): Verdict {
  const percent = space.totalBytes > 0 ? (space.freeBytes / space.totalBytes) * 100 : 0;
  const figures = `${formatBytes(space.freeBytes)} free of ${formatBytes(space.totalBytes)} ` +
    `(${percent < 1 && percent > 0 ? percent.toFixed(1) : Math.round(percent)}%)`;
  if (space.freeBytes <= 0) {
    return {
      result: "FAIL",
      detail: `no space left on its file system (${figures}): every write answers 503 until space is freed`,
    };
  }
  const low: string[] = [];
  if (space.freeBytes < thresholds.minFreeBytes) low.push(`below ${formatBytes(thresholds.minFreeBytes)}`);
  if (percent < thresholds.minFreePercent) low.push(`below ${thresholds.minFreePercent}%`);
  if (low.length > 0) {
    return {
      result: "warn",
      detail: `low space: ${figures}, ${low.join(" and ")}; writes answer 503 once it runs out`,
    };
  }
  return { result: "ok", detail: figures };
}
