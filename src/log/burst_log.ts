/** A log line for problems that come in bursts, written at most once a minute with a count of the rest. */

/** Problems that come in bursts (accept failures, refused connections) are logged at most this often. */
const LOG_INTERVAL_MS = 60_000;

/** Rate-limits a repeated log line: the first of a burst is written, with the count since the last. */
export class BurstLog {
  #last = 0;
  #suppressed = 0;
  constructor(private readonly write: (suppressed: number) => void) {}
  hit(): void {
    const now = Date.now();
    if (now - this.#last < LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#last = now;
    this.write(this.#suppressed);
    this.#suppressed = 0;
  }
}
