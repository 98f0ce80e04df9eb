/** Who is making a request: the identity the authentication step established. */
export interface Caller {
  /** Stable id (the token's `sub`); "anonymous" when `gateway.auth: none`. */
  readonly id: string;
  readonly name: string;
  readonly email?: string;
  readonly groups: readonly string[];
  /** The OAuth client the request came through, when there is one. */
  readonly clientId?: string;
  /** The upstream identity provider the user signed in with, when there is one. */
  readonly provider?: string;
}

/**
 * A signed-in user, apart from the client they came through: what access tokens, authorization codes,
 * refresh tokens and browser sessions carry (stored as JSON of this shape).
 */
export type Identity = Omit<Caller, "clientId">;

/** The one caller of a gateway running with `gateway.auth: none`. */
export const ANONYMOUS: Caller = Object.freeze({
  id: "anonymous",
  name: "anonymous",
  email: undefined,
  groups: Object.freeze([]) as readonly string[],
  clientId: undefined,
  provider: undefined,
});

/** Members of this group are administrators: they see everything on the status page. */
export const ADMIN_GROUP = "admin";
