// How a page shows a moment: relative to now, and in the gateway's local time, inside a `<time>` element
// that carries the exact instant (no script: the pages' CSP allows none).
import { escapeHtml } from "./layout.ts";

const RELATIVE = new Intl.RelativeTimeFormat("en", { numeric: "auto" });

/** "in 1 hour", "3 minutes ago", "in 2 days": the unit that reads best, rounded. */
export function relativeTime(atMs: number, nowMs: number): string {
  const seconds = Math.round((atMs - nowMs) / 1000);
  if (Math.abs(seconds) < 60) return RELATIVE.format(seconds, "second");
  const minutes = Math.round(seconds / 60);
  if (Math.abs(minutes) < 60) return RELATIVE.format(minutes, "minute");
  const hours = Math.round(seconds / 3600);
  if (Math.abs(hours) < 48) return RELATIVE.format(hours, "hour");
  return RELATIVE.format(Math.round(seconds / 86_400), "day");
}

/**
 * "1 Jun 2025, 14:03 CEST": the date and time in `timeZone` (by default the gateway's own, from `TZ`),
 * with the zone named, so that it reads right even where the gateway runs in UTC.
 */
export function localTime(atMs: number, timeZone?: string): string {
  return new Intl.DateTimeFormat("en-GB", {
    day: "numeric",
    month: "short",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    timeZoneName: "short",
    ...(timeZone ? { timeZone } : {}),
  }).format(atMs);
}

/** `<time datetime="ISO" title="ISO">in 1 hour</time> (1 Jun 2025, 14:03 CEST)` */
export function timeHtml(atMs: number, options: { now: number; timeZone?: string }): string {
  const iso = escapeHtml(new Date(atMs).toISOString());
  return `<time datetime="${iso}" title="${iso}">${escapeHtml(relativeTime(atMs, options.now))}</time> (${
    escapeHtml(localTime(atMs, options.timeZone))
  })`;
}
