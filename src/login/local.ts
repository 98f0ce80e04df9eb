import type { Registry } from "../config/types.ts";
import type { Logger } from "../log/logger.ts";
import type { TokenIdentity } from "../oauth/access_token.ts";
import { randomToken } from "../oauth/secrets.ts";
import type { Store } from "../store/store.ts";
import { hashPassword, type PasswordVerifier } from "./password.ts";

/** Local accounts: `login.users` from the registry, and the first-start admin kept in the store. */
export class LocalAccounts {
  readonly #store: Store;
  readonly #registry: () => Registry;
  readonly #verifier: PasswordVerifier;
  /** A hash to check when the user does not exist, so both cases take the same time. */
  #decoy: Promise<string> | undefined;

  constructor(store: Store, registry: () => Registry, verifier: PasswordVerifier) {
    this.#store = store;
    this.#registry = registry;
    this.#verifier = verifier;
  }

  /**
   * A local user's identity as the registry has it now (groups and email may have changed), or
   * undefined when the account is gone: earlier sign-ins and tokens end with it.
   */
  current(identity: TokenIdentity): TokenIdentity | undefined {
    const registered = this.#registry().login.users;
    if (Object.hasOwn(registered, identity.userId)) {
      const user = registered[identity.userId]!;
      return { userId: user.name, name: user.name, email: user.email, groups: [...user.groups] };
    }
    const stored = this.#store.db.prepare("SELECT groups FROM local_users WHERE name = ?").get(
      identity.userId,
    ) as
      | { groups: string }
      | undefined;
    return stored
      ? { userId: identity.userId, name: identity.userId, groups: JSON.parse(stored.groups) }
      : undefined;
  }

  /** True when anyone can sign in with a password (registry users or the first-start admin). */
  any(): boolean {
    return Object.keys(this.#registry().login.users).length > 0 ||
      this.#store.db.prepare("SELECT 1 FROM local_users LIMIT 1").get() !== undefined;
  }

  /** The identity for a correct user name and password, else undefined (never says which was wrong). */
  async signIn(name: string, password: string): Promise<TokenIdentity | undefined> {
    const registered = this.#registry().login.users;
    const user = Object.hasOwn(registered, name) ? registered[name] : undefined;
    const stored = user ? undefined : this.#store.db.prepare(
      "SELECT password_hash, groups FROM local_users WHERE name = ?",
    ).get(name) as { password_hash: string; groups: string } | undefined;
    const hash = user?.passwordHash ?? stored?.password_hash;
    this.#decoy ??= hashPassword(randomToken(16));
    const ok = await this.#verifier.verify(hash ?? await this.#decoy, password);
    if (!ok || hash === undefined) return undefined;
    return {
      userId: name,
      name,
      email: user?.email,
      groups: user ? [...user.groups] : JSON.parse(stored!.groups),
    };
  }

  /**
   * First start with no `login.users` and no providers: creates user `admin` with a random password,
   * keeps only its hash, and returns the password once, to be printed to the log.
   */
  async bootstrapAdmin(log: Logger): Promise<void> {
    const { users, providers } = this.#registry().login;
    if (Object.keys(users).length > 0 || Object.keys(providers).length > 0) return;
    const existing = this.#store.db.prepare("SELECT 1 FROM local_users LIMIT 1").get();
    if (existing) return;
    const password = randomToken(18);
    this.#store.db.prepare(
      "INSERT INTO local_users (name, password_hash, groups, created_at) VALUES (?, ?, ?, ?)",
    )
      .run("admin", await hashPassword(password), JSON.stringify(["admin"]), Date.now());
    // The one secret the log ever carries, once, by design: there is no other way to hand it over.
    log.warn(`first start: created user "admin" with password ${password} (only its hash is kept)`);
  }
}
