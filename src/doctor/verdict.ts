/** What a `gatehouse doctor` check finds, and the table row it becomes. */

/** `ok`, something to look at (`warn`), or something that will not work (`FAIL`). */
export type CheckResult = "ok" | "warn" | "FAIL";

/** The outcome of one check, before it is given a name and a target. */
export interface Verdict {
  readonly result: CheckResult;
  /** What was found; never a secret (no header values, no URL query strings). */
  readonly detail: string;
}

/** One line of `gatehouse doctor`'s table. */
export interface CheckRow extends Verdict {
  /** What kind of check: `public_url`, `backend`, `command`, `service`, `login_provider`, `data_dir`, ... */
  readonly check: string;
  /** What it looked at: a backend, service or provider name, a URL or a path. */
  readonly target: string;
}
