/** `gatehouse tokens`: lists and revokes refresh-token families and browser sign-in sessions. */
import { BrowserSessions } from "../login/sessions.ts";
import { ClientDirectory } from "../oauth/clients.ts";
import { activeGrants, revokeGrants } from "../oauth/grants.ts";
import { type Command, parseCommandArgs, UsageError } from "./args.ts";
import {
  type AdminContext,
  AdminError,
  count,
  printable,
  STORE_OPTIONS,
  STORE_OPTIONS_HELP,
  subcommandOf,
  withStore,
} from "./_admin.ts";

/** Revokes every grant of a user and ends their browser sessions. */
function revokeUser({ store, audit }: AdminContext, userId: string): string {
  const now = Date.now();
  const { revoked, sessions } = store.transaction(() => ({
    revoked: revokeGrants(store, { userId }, now),
    sessions: new BrowserSessions(store, () => now).endAllOf(userId),
  }));
  audit.record("admin_revoke", userId, {
    by: "cli",
    target: "user",
    grants: revoked.grants,
    refresh_tokens: revoked.refreshTokens,
    access_tokens: revoked.accessTokens,
    pending_codes: revoked.pendingCodes,
    browser_sessions: sessions,
  });
  return `Revoked ${count(revoked.grants, "active grant")} of user ${printable(userId)} (${
    count(revoked.refreshTokens, "refresh token")
  }, ${count(revoked.accessTokens, "access token")}), ${count(revoked.pendingCodes, "pending code")}; ended ${
    count(sessions, "browser session")
  }.\n`;
}

/** Revokes every grant of a client; its remembered consents stay (`clients revoke` forgets them). */
function revokeClient({ store, registry, audit }: AdminContext, clientId: string): string {
  const now = Date.now();
  const client = new ClientDirectory(store, () => registry).known().find((known) =>
    known.clientId === clientId
  );
  if (!client && activeGrants(store, now, { clientId }).length === 0) {
    throw new AdminError(
      `unknown client "${
        printable(clientId)
      }": neither the registry's clients: nor the store has it (see "gatehouse clients list")`,
    );
  }
  const revoked = revokeGrants(store, { clientId }, now);
  audit.record("admin_revoke", clientId, {
    by: "cli",
    target: "client_tokens",
    grants: revoked.grants,
    refresh_tokens: revoked.refreshTokens,
    access_tokens: revoked.accessTokens,
    pending_codes: revoked.pendingCodes,
  });
  const lines = [
    `Revoked ${count(revoked.grants, "active grant")} of client ${printable(clientId)} (${
      count(revoked.refreshTokens, "refresh token")
    }, ${count(revoked.accessTokens, "access token")}), ${count(revoked.pendingCodes, "pending code")}.`,
  ];
  return lines.map((line) => `${line}\n`).join("");
}

export const tokensCommand: Command = {
  help: `Usage: gatehouse tokens revoke --user ID [--registry PATH] [--data DIR]
       gatehouse tokens revoke --client ID [--registry PATH] [--data DIR]

Revokes, in the store of the data directory, every grant of a user or of an OAuth client: their refresh
tokens and access tokens, and codes not exchanged yet. Works on a stopped or a running gateway: a running
one refuses them from its next request (/token answers invalid_grant, /mcp 401). Prints how many were
revoked. Remembered consents stay: the user is not asked again when they next sign in.

  --user ID     the user id, as in the audit log and policies (alice, github:octocat); also ends their
                browser sessions, so that the next authorization asks them to sign in
  --client ID   the client id (see "gatehouse clients list"); "gatehouse clients revoke" also deletes it

Options:
${STORE_OPTIONS_HELP}
  -h, --help        show this help

Exit codes: 0 done (also when there was nothing to revoke); 1 a mistake in the arguments, an unknown
client, no store in the data directory or a registry with problems; 2 an internal error.`,
  async run(args, io) {
    subcommandOf(args, ["revoke"] as const);
    const { values } = parseCommandArgs(args.slice(1), {
      ...STORE_OPTIONS,
      user: { type: "string" },
      client: { type: "string" },
    });
    if ((values.user === undefined) === (values.client === undefined)) {
      throw new UsageError("Give one of --user ID and --client ID");
    }
    if (values.user === "" || values.client === "") {
      throw new UsageError(`--${values.user === "" ? "user" : "client"} must not be empty`);
    }
    return await withStore("tokens", values, io, (context) => {
      io.stdout(
        values.user !== undefined ? revokeUser(context, values.user) : revokeClient(context, values.client!),
      );
      return 0;
    });
  },
};
