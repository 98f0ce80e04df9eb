// Password sign-in: `login.users` from the registry, and the first-start admin kept in the store.
import type { AuditLog } from "../audit/audit.ts";
import type { Registry } from "../config/types.ts";
import { addressNetwork } from "../core/addresses.ts";
import type { Logger } from "../log/logger.ts";
import type { Identity } from "../core/caller.ts";
import { randomToken } from "../core/secrets.ts";
import { findLocalUser, hasLocalUsers, insertLocalUser } from "../store/local_users.ts";
import type { Store } from "../store/store.ts";
import type { PasswordVerifier } from "./password.ts";
import type { SignInThrottle } from "./throttle.ts";

/** The longest user name an audit row or a throttle key keeps (the form field has no limit of its own). */
const MAX_RECORDED_NAME_LENGTH = 128;

/** The outcome of a password sign-in at the login form. */
export type PasswordSignIn =
  | { readonly outcome: "signed_in"; readonly identity: Identity }
  | { readonly outcome: "refused" }
  | { readonly outcome: "throttled"; readonly retryAfterSeconds: number };

/** Local accounts: `login.users` from the registry, and the first-start admin kept in the store. */
export class LocalAccounts {
  readonly #store: Store;
  readonly #registry: () => Registry;
  readonly #verifier: PasswordVerifier;
  readonly #audit: AuditLog | undefined;
  readonly #throttle: SignInThrottle | undefined;
  /** A hash to check when the user does not exist, so both cases take the same time. */
  #decoy: Promise<string> | undefined;

  constructor(
    store: Store,
    registry: () => Registry,
    verifier: PasswordVerifier,
    options: { audit?: AuditLog; throttle?: SignInThrottle } = {},
  ) {
    this.#store = store;
    this.#registry = registry;
    this.#verifier = verifier;
    this.#audit = options.audit;
    this.#throttle = options.throttle;
  }

  /**
   * A local user's identity as the registry has it now (groups and email may have changed), or
   * undefined when the account is gone: earlier sign-ins and tokens end with it.
   */
  current(identity: Identity): Identity | undefined {
    const registered = this.#registry().login.users;
    if (Object.hasOwn(registered, identity.id)) {
      const user = registered[identity.id]!;
      return { id: user.name, name: user.name, email: user.email, groups: [...user.groups] };
    }
    if (!this.#firstStartAdminActive()) return undefined;
    const stored = findLocalUser(this.#store, identity.id);
    return stored ? { id: identity.id, name: identity.id, groups: JSON.parse(stored.groups) } : undefined;
  }

  /** True when anyone can sign in with a password (registry users or the first-start admin). */
  any(): boolean {
    return Object.keys(this.#registry().login.users).length > 0 ||
      (this.#firstStartAdminActive() && hasLocalUsers(this.#store));
  }

  /**
   * The first-start admin stands in only while the registry names no users and no providers: once it
   * does, that account signs in no more, and its sessions and tokens end as a removed user's do.
   */
  #firstStartAdminActive(): boolean {
    const { users, providers } = this.#registry().login;
    return Object.keys(users).length === 0 && Object.keys(providers).length === 0;
  }

  /**
   * A password sign-in from `address` (the client's, undefined when unknown): the identity for a correct
   * user name and password, never saying which was wrong; refused unchecked while the account or the address
   * is throttled. Every outcome is written to the audit log, with the name that was tried, never the password.
   */
  async signIn(name: string, password: string, address: string | undefined): Promise<PasswordSignIn> {
    const account = name.slice(0, MAX_RECORDED_NAME_LENGTH);
    const network = address === undefined ? "unknown" : addressNetwork(address);
    const where = address === undefined ? {} : { address };
    const admission = this.#throttle?.admit(account, network);
    if (admission && "retryAfterSeconds" in admission) {
      if (admission.report) {
        this.#audit?.record("sign_in_throttled", account, {
          method: "password",
          ...where,
          scope: admission.scope,
          retry_after_seconds: admission.retryAfterSeconds,
          ...(admission.unreported > 0 ? { unrecorded_refusals: admission.unreported } : {}),
        });
      }
      return { outcome: "throttled", retryAfterSeconds: admission.retryAfterSeconds };
    }
    const checked = await this.#check(name, password);
    if ("identity" in checked) {
      admission?.succeeded();
      this.#audit?.record("sign_in", checked.identity.id, { method: "password", ...where });
      return { outcome: "signed_in", identity: checked.identity };
    }
    this.#audit?.record("sign_in_failed", account, { method: "password", ...where, reason: checked.reason });
    return { outcome: "refused" };
  }

  async #check(
    name: string,
    password: string,
  ): Promise<{ identity: Identity } | { reason: "unknown_user" | "wrong_password" }> {
    const registered = this.#registry().login.users;
    const user = Object.hasOwn(registered, name) ? registered[name] : undefined;
    const stored = user || !this.#firstStartAdminActive() ? undefined : findLocalUser(this.#store, name);
    const hash = user?.passwordHash ?? stored?.passwordHash;
    this.#decoy ??= this.#verifier.hash(randomToken(16)).catch((error) => {
      this.#decoy = undefined; // the next sign-in tries again
      throw error;
    });
    const ok = await this.#verifier.verify(hash ?? await this.#decoy, password);
    if (hash === undefined) return { reason: "unknown_user" };
    if (!ok) return { reason: "wrong_password" };
    return {
      identity: {
        id: name,
        name,
        email: user?.email,
        groups: user ? [...user.groups] : JSON.parse(stored!.groups),
      },
    };
  }

  /**
   * First start with no `login.users` and no providers: creates user `admin` with a random password,
   * keeps only its hash, and returns the password once, to be printed to the log.
   */
  async bootstrapAdmin(log: Logger): Promise<void> {
    const { users, providers } = this.#registry().login;
    if (Object.keys(users).length > 0 || Object.keys(providers).length > 0) return;
    if (hasLocalUsers(this.#store)) return;
    const password = randomToken(18);
    const created = insertLocalUser(this.#store, {
      name: "admin",
      passwordHash: await this.#verifier.hash(password),
      groups: JSON.stringify(["admin"]),
      createdAt: Date.now(),
    });
    // Replicas starting together on one store: the first one's admin stands; its log has the password.
    if (!created) return;
    // The one secret the log ever carries, once, by design: there is no other way to hand it over.
    log.warn(`first start: created user "admin" with password ${password} (only its hash is kept)`);
  }
}
