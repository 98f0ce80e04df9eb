/**
 * The scopes this authorization server knows and grants. Unknown ones are dropped rather than refused
 * (RFC 6749 §3.3 lets the server grant less), so that clients asking for `openid profile` still get in.
 */

/** Every scope the server issues, in the order a granted scope lists them. */
export const SUPPORTED_SCOPES = ["mcp", "offline_access"] as const;

/** What each scope lets the client do, in words for the consent page. */
export const SCOPE_DESCRIPTIONS: Readonly<Record<(typeof SUPPORTED_SCOPES)[number], string>> = {
  mcp: "use the MCP servers you may use through this gateway, as you",
  offline_access: "stay connected after this sign-in ends (refresh tokens)",
};

/** The known scopes of a space-separated list, in canonical order (unknown ones dropped). */
export function knownScopes(requested: string): string {
  const asked = new Set(requested.split(" ").filter((scope) => scope !== ""));
  return SUPPORTED_SCOPES.filter((scope) => asked.has(scope)).join(" ");
}

/** The scope to grant for a request: always `mcp`, plus whichever other known scopes were asked for. */
export function grantedScope(requested: string | null | undefined): string {
  return knownScopes(`mcp ${requested ?? ""}`);
}
