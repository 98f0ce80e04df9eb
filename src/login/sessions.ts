import type { Store } from "../store/store.ts";
import type { TokenIdentity } from "../oauth/access_token.ts";
import { hashSecret, randomToken } from "../core/secrets.ts";

/** A browser signed in at the gateway. */
export interface BrowserSession {
  readonly identity: TokenIdentity;
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

  /** The cookie name: `__Host-` over https, where the browser enforces Secure and no Domain. */
  static cookieName(secure: boolean): string {
    return secure ? "__Host-gatehouse" : "gatehouse";
  }

  async create(identity: TokenIdentity): Promise<{ token: string; session: BrowserSession }> {
    const token = randomToken(32);
    const session = { identity, csrf: randomToken(16), expiresAt: this.#now() + SESSION_TTL_MS };
    this.#store.db.prepare(
      "INSERT INTO browser_sessions (token_hash, user_id, identity, csrf, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
    ).run(
      await hashSecret(token),
      identity.userId,
      JSON.stringify(identity),
      session.csrf,
      this.#now(),
      session.expiresAt,
    );
    return { token, session };
  }

  async find(token: string | undefined): Promise<BrowserSession | undefined> {
    if (!token) return undefined;
    const row = this.#store.db.prepare(
      "SELECT identity, csrf, expires_at FROM browser_sessions WHERE token_hash = ? AND expires_at > ?",
    ).get(await hashSecret(token), this.#now()) as
      | { identity: string; csrf: string; expires_at: number }
      | undefined;
    return row
      ? { identity: JSON.parse(row.identity), csrf: row.csrf, expiresAt: row.expires_at }
      : undefined;
  }

  async end(token: string | undefined): Promise<void> {
    if (!token) return;
    this.#store.db.prepare("DELETE FROM browser_sessions WHERE token_hash = ?").run(await hashSecret(token));
  }

  /** Ends every browser session of a user (signed in anywhere); returns how many were live. */
  endAllOf(userId: string): number {
    const ended = this.#store.db.prepare("DELETE FROM browser_sessions WHERE user_id = ? AND expires_at > ?")
      .run(userId, this.#now());
    this.#store.db.prepare("DELETE FROM browser_sessions WHERE user_id = ?").run(userId);
    return Number(ended.changes);
  }

  purgeExpired(): void {
    this.#store.db.prepare("DELETE FROM browser_sessions WHERE expires_at <= ?").run(this.#now());
  }
}
