// The Hono environment of every handler: what the context carries through one request.
import type { RegistrySnapshot } from "../config/current.ts";

/** What every handler can read from the context: the registry generation of this request. */
export type AppEnv = { Variables: { snapshot: RegistrySnapshot } };
