// Users' tokens for services and OAuth-protected backends as the store keeps them: sealed by the vault
// (user and service as additional data), with the refresh token kept across refreshes that send none.
import type * as oauth from "oauth4webapi";
import { deleteServiceToken, findServiceToken, saveServiceToken } from "../store/service_tokens.ts";
import type { Store } from "../store/store.ts";
import type { Vault } from "./vault.ts";

/** What a sealed row holds. */
export interface StoredToken {
  access_token: string;
  refresh_token?: string;
}

export class SealedTokens {
  readonly #store: Store;
  readonly #vault: Vault;
  readonly #now: () => number;

  constructor(store: Store, vault: Vault, now: () => number) {
    this.#store = store;
    this.#vault = vault;
    this.#now = now;
  }

  /** The row of a user's token, without opening it. */
  find(userId: string, service: string) {
    return findServiceToken(this.#store, userId, service);
  }

  /** Opens a row's sealed tokens. */
  async open(row: { readonly sealed: string }, userId: string, service: string): Promise<StoredToken> {
    return JSON.parse(await this.#vault.open(row.sealed, userId, service)) as StoredToken;
  }

  /** Keeps a token response, with the previous refresh token when the response brings none. */
  async save(
    userId: string,
    service: string,
    result: oauth.TokenEndpointResponse,
    previousRefreshToken: string | undefined,
  ): Promise<void> {
    const refreshToken = result.refresh_token ?? previousRefreshToken;
    const stored: StoredToken = {
      access_token: result.access_token,
      ...(refreshToken ? { refresh_token: refreshToken } : {}),
    };
    saveServiceToken(this.#store, {
      userId,
      service,
      sealed: await this.#vault.seal(JSON.stringify(stored), userId, service),
      scope: result.scope ?? "",
      expiresAt: typeof result.expires_in === "number" ? this.#now() + result.expires_in * 1000 : undefined,
      updatedAt: this.#now(),
    });
  }

  delete(userId: string, service: string): void {
    deleteServiceToken(this.#store, userId, service);
  }
}
