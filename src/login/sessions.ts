// Browser sign-ins at the gateway: the cookie and the session it names (kept in `store/login_sessions.ts`).
import type { Store } from "../store/store.ts";
import type { Identity } from "../core/caller.ts";
import { hashSecret, randomToken } from "../core/secrets.ts";
import {
  deleteExpiredLoginSessions,
  deleteLoginSession,
  deleteLoginSessionsOfUser,
  findLiveLoginSession,
  insertLoginSession,
} from "../store/login_sessions.ts";

/** A browser signed in at the gateway. */
export interface BrowserSession {
  readonly identity: Identity;
  /** CSRF token for forms posted while signed in. */
  readonly csrf: string;
  readonly expiresAt: number;
}

const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

/** Browser sign-ins: the cookie carries a random token; the store keeps only its hash. */
export class BrowserSessions {
  readonly #store: Store;
  readonly #now: () => number;

  constructor(store: Store, now: () => number = Date.now) {
    this.#store = store;
    this.#now = now;
  }

  async create(identity: Identity): Promise<{ token: string; session: BrowserSession }> {
    const token = randomToken(32);
    const session = { identity, csrf: randomToken(16), expiresAt: this.#now() + SESSION_TTL_MS };
    insertLoginSession(this.#store, {
      tokenHash: await hashSecret(token),
      userId: identity.id,
      identity: JSON.stringify(identity),
      csrf: session.csrf,
      createdAt: this.#now(),
      expiresAt: session.expiresAt,
    });
    return { token, session };
  }

  async find(token: string | undefined): Promise<BrowserSession | undefined> {
    if (!token) return undefined;
    const stored = findLiveLoginSession(this.#store, await hashSecret(token), this.#now());
    return stored
      ? { identity: JSON.parse(stored.identity), csrf: stored.csrf, expiresAt: stored.expiresAt }
      : undefined;
  }

  async end(token: string | undefined): Promise<void> {
    if (!token) return;
    deleteLoginSession(this.#store, await hashSecret(token));
  }

  /** Ends every browser session of a user (signed in anywhere); returns how many were live. */
  endAllOf(userId: string): number {
    return deleteLoginSessionsOfUser(this.#store, userId, this.#now());
  }

  purgeExpired(): void {
    deleteExpiredLoginSessions(this.#store, this.#now());
  }
}
