/** What the status page lists under "recent". */
export type RecentKind = "error" | "denial" | "consent";

export interface RecentEvent {
  readonly at: number;
  readonly kind: RecentKind;
  /** The user it concerns, when there is one (a user sees only their own events). */
  readonly user: string | undefined;
  readonly backend: string | undefined;
  /** The third-party service it concerns, if any: the status page names the backends that need it. */
  readonly service?: string;
  /** Plain text for people: never a secret (no tokens, links with tickets, or passwords). */
  readonly message: string;
}

/** The last events of each kind, in memory (the audit table keeps the history). */
export class RecentEvents {
  readonly #max: number;
  readonly #events = new Map<RecentKind, RecentEvent[]>();
  readonly #now: () => number;

  constructor(max = 50, now: () => number = Date.now) {
    this.#max = max;
    this.#now = now;
  }

  add(kind: RecentKind, event: Omit<RecentEvent, "at" | "kind">): void {
    let list = this.#events.get(kind);
    if (!list) {
      list = [];
      this.#events.set(kind, list);
    }
    list.push({ at: this.#now(), kind, ...event });
    if (list.length > this.#max) list.splice(0, list.length - this.#max);
  }

  /** The newest first. */
  list(kind: RecentKind): RecentEvent[] {
    return [...(this.#events.get(kind) ?? [])].reverse();
  }
}
