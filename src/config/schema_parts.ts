/** Value types the registry's schema shares: durations, sizes, URLs, names, lists and templates. */
import { z } from "zod";
import { parseDurationSeconds, parseSizeBytes } from "../core/units.ts";
import { Template } from "./template.ts";

export const durationSeconds = z.union([z.string(), z.number()], {
  error: "expected a duration such as 30s, 10m, 1h or 30d",
})
  .refine(
    (value) => parseDurationSeconds(value) !== undefined,
    "expected a duration such as 30s, 10m, 1h or 30d",
  )
  .transform((value) => parseDurationSeconds(value)!)
  .refine((seconds) => seconds > 0, "must be longer than zero");

export const sizeBytes = z.union([z.string(), z.number()], {
  error: "expected a size such as 4MiB, 512KiB or a byte count",
})
  .refine(
    (value) => parseSizeBytes(value) !== undefined,
    "expected a size such as 4MiB, 512KiB or a byte count",
  )
  .transform((value) => parseSizeBytes(value)!);

function isHttpUrl(value: string): boolean {
  try {
    const url = new URL(value);
    return url.protocol === "https:" || url.protocol === "http:";
  } catch {
    return false;
  }
}

export const httpUrl = z.string().refine(isHttpUrl, "expected an absolute http:// or https:// URL");
export const name = z.string().regex(
  /^[A-Za-z0-9][A-Za-z0-9_.-]*$/,
  "names use letters, digits, '_', '-' and '.'",
);
export const nonEmpty = z.string().min(1, "must not be empty");
export const stringList = z.array(nonEmpty);
export const template = z.instanceof(Template, { message: "expected a string" });
