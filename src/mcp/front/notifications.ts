/**
 * What the gateway tells connected clients outside any call: a backend's change notifications (only to
 * the sessions that may hear them), a completed consent, and lists that changed with a reload.
 */
import type { McpHttpHandler } from "@modelcontextprotocol/server";
import type { Registry } from "../../config/types.ts";
import type { Logger } from "../../log/logger.ts";
import { type Policy, policyOf } from "../../policy/policy.ts";
import { LIST_KINDS, listedObject, scopeBackends } from "../scope.ts";
import type { FrontSession } from "../session.ts";

type Notification = { method: string; params?: Record<string, unknown> };

/** Sends a notification if the session's announced capabilities allow it; a closed stream is no error. */
function notifySession(session: FrontSession, notification: Notification): void {
  try {
    session.server?.notification(notification).catch(() => {});
  } catch {
    // The session did not announce the capability this notification belongs to.
  }
}

export class FrontNotifications {
  readonly #sessions: () => Iterable<FrontSession>;
  readonly #modern: () => McpHttpHandler["notify"] | undefined;
  readonly #registry: () => Registry;
  readonly #log: Logger;

  constructor(options: {
    /** The 2025-era sessions open now. */
    sessions: () => Iterable<FrontSession>;
    /** The 2026-07-28 `subscriptions/listen` streams; none before the first 2026-07-28 request. */
    modern: () => McpHttpHandler["notify"] | undefined;
    registry: () => Registry;
    log: Logger;
  }) {
    this.#sessions = options.sessions;
    this.#modern = options.modern;
    this.#registry = options.registry;
    this.#log = options.log;
  }

  /**
   * Tells sessions that can see `backend` what changed there; what a user's or a session's own connection
   * says ("user:ID", "session:ID") reaches only that user or session.
   */
  backendNotified(backend: string, connectionKey: string, notification: Notification): void {
    const registry = this.#registry();
    const [kind, owner] = connectionKey.split(/:(.*)/s);
    for (const session of this.#sessions()) {
      if (kind === "user" && session.caller.id !== owner) continue;
      if (kind === "session" && session.id !== owner) continue;
      const reaches = scopeBackends(registry, session.scope, session.caller).some((candidate) =>
        candidate.name === backend
      );
      if (!reaches) continue;
      if (notification.method === "notifications/resources/updated") {
        const uri = String(notification.params?.uri ?? "");
        if (session.subscriptions.get(uri) !== backend) continue;
      }
      notifySession(session, notification);
    }
    // 2026-07-28 listen streams have no owner the gateway could filter on: only shared connections feed them.
    const modern = this.#modern();
    if (kind !== "shared" || !modern) return;
    if (notification.method === "notifications/tools/list_changed") modern.toolsChanged();
    if (notification.method === "notifications/prompts/list_changed") modern.promptsChanged();
    if (notification.method === "notifications/resources/list_changed") modern.resourcesChanged();
    if (notification.method === "notifications/resources/updated") {
      modern.resourceUpdated(String(notification.params?.uri ?? ""));
    }
  }

  /**
   * A user connected a service: their 2025-11-25 sessions that were sent that URL elicitation hear it is
   * complete, and can retry; all their sessions hear that the tool list may have changed.
   */
  consentCompleted(userId: string, elicitationId: string | undefined): void {
    for (const session of this.#sessions()) {
      if (session.caller.id !== userId) continue;
      if (elicitationId !== undefined && session.awaitingConsent.delete(elicitationId)) {
        notifySession(session, { method: "notifications/elicitation/complete", params: { elicitationId } });
      }
      notifySession(session, { method: "notifications/tools/list_changed" });
    }
    this.#modern()?.toolsChanged();
  }

  /**
   * After a reload that changed the policies: each session whose user now sees something else (another
   * set of backends, or other items of what it last listed) hears that its lists changed.
   */
  policiesChanged(previous: Registry, next: Registry): void {
    const before = policyOf(previous);
    const after = policyOf(next);
    let any = false;
    for (const session of this.#sessions()) {
      const kinds = changedKinds(session, previous, next, before, after);
      for (const kind of kinds) notifySession(session, { method: `notifications/${kind}/list_changed` });
      any ||= kinds.length > 0;
    }
    // 2026-07-28 listeners are not tied to a user: they all hear it, and list again.
    if (before.identity !== after.identity) this.#allListsChanged();
    if (any) this.#log.info("policies changed what connected sessions see");
  }

  /** After a reload: every session's lists may have changed. */
  listsChanged(): void {
    for (const session of this.#sessions()) {
      for (const kind of ["tools", "prompts", "resources"]) {
        notifySession(session, { method: `notifications/${kind}/list_changed` });
      }
    }
    this.#allListsChanged();
  }

  #allListsChanged(): void {
    const modern = this.#modern();
    modern?.toolsChanged();
    modern?.promptsChanged();
    modern?.resourcesChanged();
  }
}

/** The list kinds whose visible items differ for a session between two policies. */
function changedKinds(
  session: FrontSession,
  previous: Registry,
  next: Registry,
  before: Policy,
  after: Policy,
): string[] {
  const names = (registry: Registry) =>
    scopeBackends(registry, session.scope, session.caller).map((backend) => backend.name).join("\n");
  if (names(previous) !== names(next)) return ["tools", "prompts", "resources"];
  const changed = new Set<string>();
  for (const [key, items] of session.lastLists) {
    const [backend, method] = key.split("\n") as [string, string];
    const kind = LIST_KINDS[method];
    if (!kind) continue;
    const differs = items.some((item) => {
      const object = listedObject(kind, item);
      return before.decide(session.caller, backend, object).allowed !==
        after.decide(session.caller, backend, object).allowed;
    });
    if (differs) changed.add(kind === "resourceTemplates" ? "resources" : kind);
  }
  return [...changed];
}
