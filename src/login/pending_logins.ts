// Sign-ins started at an upstream provider and waiting for its callback, kept in the store
// (`store/pending_logins.ts`): bounded per browser, single use, bound to the browser that started them.
import { hashSecret } from "../core/secrets.ts";
import {
  deleteExpiredPendingLogins,
  insertPendingLogin,
  keepNewestPendingLoginsOfBrowser,
  type StoredPendingLogin,
  takePendingLogin,
} from "../store/pending_logins.ts";
import type { Store } from "../store/store.ts";

const PENDING_TTL_MS = 10 * 60_000;
/** Most sign-ins one browser may have waiting; beyond it, that browser's own oldest is dropped. */
const MAX_PENDING_PER_BROWSER = 10;

/** What a sign-in keeps until its callback. */
export type PendingLogin = StoredPendingLogin;

/** Pending sign-ins, keyed by the hash of their `state` and of the browser's binding secret. */
export class PendingLogins {
  readonly #store: Store;
  readonly #now: () => number;

  constructor(store: Store, now: () => number) {
    this.#store = store;
    this.#now = now;
  }

  /**
   * Keeps a sign-in started with `provider` until its callback; `network` is the client network that
   * started it. Expired sign-ins are deleted on the way.
   */
  async hold(
    login: PendingLogin & { state: string; provider: string; browserBinding: string; network: string },
  ): Promise<void> {
    const [stateHash, bindingHash] = await Promise.all([
      hashSecret(login.state),
      hashSecret(login.browserBinding),
    ]);
    const now = this.#now();
    this.#store.transaction(() => {
      deleteExpiredPendingLogins(this.#store, now);
      insertPendingLogin(this.#store, {
        stateHash,
        provider: login.provider,
        codeVerifier: login.codeVerifier,
        nonce: login.nonce,
        returnTo: login.returnTo,
        bindingHash,
        address: login.network,
        createdAt: now,
        expiresAt: now + PENDING_TTL_MS,
      });
      // One browser's many tabs push out only that browser's oldest sign-ins, never anyone else's.
      keepNewestPendingLoginsOfBrowser(this.#store, bindingHash, MAX_PENDING_PER_BROWSER);
    });
  }

  /**
   * Takes the pending sign-in `state` out of the store (single use) when `browserBinding` is the one that
   * started it with this provider and it has not expired; expired ones are deleted on the way.
   */
  async take(
    provider: string,
    state: string,
    browserBinding: string | undefined,
  ): Promise<PendingLogin | undefined> {
    // RFC 6749 §10.12, RFC 9700 §4.7: only the browser that started the sign-in may finish it.
    if (!state || !browserBinding) return undefined;
    const [stateHash, bindingHash] = await Promise.all([hashSecret(state), hashSecret(browserBinding)]);
    const now = this.#now();
    return this.#store.transaction(() => {
      deleteExpiredPendingLogins(this.#store, now);
      return takePendingLogin(this.#store, { stateHash, bindingHash, provider });
    });
  }
}
