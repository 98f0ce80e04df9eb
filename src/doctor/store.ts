/** `gatehouse doctor`'s store row for replicas on PostgreSQL: reachable, writable, and its schema. */
import { MIGRATIONS } from "../store/migrations.ts";
import { PostgresConnection } from "../store/postgres/connection.ts";
import { inspectPostgres } from "../store/postgres/inspect.ts";
import { redactedUrl } from "../store/postgres/store.ts";
import type { CheckRow } from "./verdict.ts";

/**
 * Connects to the PostgreSQL store at `url` (never creating or migrating anything) and says what it found:
 * the server's version, whether it takes writes (a standby does not), and the store's schema version
 * against this gatehouse's.
 */
export async function checkPostgresStore(url: string, timeoutMs: number): Promise<CheckRow> {
  const target = redactedUrl(url);
  let connection: PostgresConnection;
  try {
    connection = await PostgresConnection.open({
      url,
      connectTimeoutSeconds: Math.max(1, Math.ceil(timeoutMs / 1000)),
      statementTimeoutMs: timeoutMs,
    });
  } catch (error) {
    return { check: "store", target, result: "FAIL", detail: `cannot connect: ${message(error)}` };
  }
  try {
    const { serverVersion, standby, schemaVersion: schema } = inspectPostgres(connection);
    const latest = MIGRATIONS.at(-1)?.version ?? 0;
    const facts = [`PostgreSQL ${serverVersion}`];
    if (standby) {
      return {
        check: "store",
        target,
        result: "FAIL",
        detail: `${facts[0]}, a read-only standby: point gateway.store at the primary`,
      };
    }
    if (schema > latest) {
      return {
        check: "store",
        target,
        result: "FAIL",
        detail: `${facts[0]}, schema version ${schema} is newer than this gatehouse (${latest}): upgrade it`,
      };
    }
    facts.push(
      schema === 0
        ? "empty: the first replica to start creates the schema"
        : schema < latest
        ? `schema version ${schema}, migrated to ${latest} when this gatehouse starts`
        : `schema version ${schema}`,
    );
    return { check: "store", target, result: "ok", detail: facts.join(", ") };
  } catch (error) {
    return { check: "store", target, result: "FAIL", detail: message(error) };
  } finally {
    connection.close();
  }
}

function message(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  const cause = error instanceof Error && error.cause instanceof Error ? `: ${error.cause.message}` : "";
  return text + cause;
}
