// The `provider_accounts` table: the provider's permanent account id behind each provider-qualified user id.
// Times are epoch ms.
import type { Store } from "./store.ts";
import { preparedStatements } from "./_statements.ts";

const statements = preparedStatements({
  find: "SELECT account_id FROM provider_accounts WHERE user_id = ?",
  insert: "INSERT INTO provider_accounts (user_id, account_id, first_seen) VALUES (?, ?, ?)",
});

/** The account id first seen behind `userId`, or undefined when the user id is new. */
export function findProviderAccountId(store: Store, userId: string): string | undefined {
  return (statements(store).find.get(userId) as { account_id: string } | undefined)?.account_id;
}

export function insertProviderAccount(
  store: Store,
  account: { userId: string; accountId: string; firstSeen: number },
): void {
  statements(store).insert.run(account.userId, account.accountId, account.firstSeen);
}
