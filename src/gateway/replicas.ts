/**
 * Replicas on one store hear each other's reloads: a registry or policy reload on one (a changed file, a
 * SIGHUP) is announced, and the others read their own copy of the files again (revocations travel through
 * the store itself; see `oauth/revoked_access_tokens.ts`).
 */
import type { RegistryHolder } from "../config/current.ts";
import type { RegistryWatcher } from "../config/watch.ts";
import type { Logger } from "../log/logger.ts";
import type { Store } from "../store/store.ts";

const TOPIC = "registry";
/** What a reload announces; a reconnection calls listeners with "" instead, which is not a reload. */
const RELOADED = "reloaded";

/** Announces this replica's reloads and follows the others'; returns the stop. */
export function shareReloads(parts: {
  store: Store;
  holder: RegistryHolder;
  watcher: RegistryWatcher;
  log: Logger;
}): () => void {
  const { store, holder, watcher, log } = parts;
  // Reloads that follow another replica's are not announced again (no echo between replicas).
  let following = 0;
  const stopAnnouncing = holder.onSwap(() => {
    if (following > 0) return;
    try {
      store.announce(TOPIC, RELOADED);
    } catch (error) {
      log.warn("cannot tell the other replicas about this reload", { error });
    }
  });
  const stopFollowing = store.onAnnouncement(TOPIC, (detail) => {
    if (detail !== RELOADED) return;
    log.info("another replica reloaded its registry: reading this one's again");
    following += 1;
    watcher.reload()
      .catch((error) => log.error("registry reload failed", { error }))
      .finally(() => following -= 1);
  });
  return () => {
    stopAnnouncing();
    stopFollowing();
  };
}
