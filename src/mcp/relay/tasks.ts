/**
 * Who owns each task a backend created: a task belongs to the user and client whose call created it, so
 * that on a backend shared by several users nobody else can list, read, update or cancel it.
 */
import type { Caller } from "../../core/caller.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";

/** The owner of a task: a user id and the OAuth client the call came through. */
/** Who owns a task: the user and the client they came through (a view of the one Caller type). */
export type TaskCaller = Pick<Caller, "id" | "clientId">;

interface TaskRecord {
  readonly owner: string;
  readonly backend: string;
  readonly expiresAtMs: number;
}

/** How long a task is remembered when its backend gave no `ttl` (2025-11-25 tasks: ttl may be null). */
const DEFAULT_TTL_MS = 60 * 60 * 1000;
/** Bound on remembered tasks: past it, expired ones are dropped, then the oldest. */
const MAX_TASKS = 10_000;

const ownerKey = (caller: TaskCaller) => `${caller.id}\n${caller.clientId ?? ""}`;

/**
 * The task a result announces: 2025-11-25 `CreateTaskResult` (`{task: {taskId, ttl}}`) or SEP-2663's
 * flat `{resultType: "task", taskId, ttlMs}`.
 */
export function createdTask(result: Record<string, unknown>): { taskId: string; ttlMs: number } | undefined {
  const task = result.resultType === "task"
    ? result
    : (result.task && typeof result.task === "object" ? result.task as Record<string, unknown> : undefined);
  if (!task || typeof task.taskId !== "string") return undefined;
  const ttl = typeof task.ttlMs === "number" ? task.ttlMs : task.ttl;
  return { taskId: task.taskId, ttlMs: typeof ttl === "number" && ttl > 0 ? ttl : DEFAULT_TTL_MS };
}

/** The task ids issued through the gateway, with their owner and backend. */
export class TaskOwners {
  readonly #tasks = new Map<string, TaskRecord>();
  readonly #now: () => number;

  constructor(now: () => number = Date.now) {
    this.#now = now;
  }

  /** Records that `caller`'s call to `backend` created the task. A task id already owned keeps its owner. */
  remember(caller: TaskCaller, backend: string, taskId: string, ttlMs: number): void {
    const known = this.#tasks.get(taskId);
    if (known && known.expiresAtMs > this.#now()) return;
    if (this.#tasks.size >= MAX_TASKS) this.#prune();
    this.#tasks.set(taskId, { owner: ownerKey(caller), backend, expiresAtMs: this.#now() + ttlMs });
  }

  /**
   * The backend of a task of `caller`'s; anyone else's task, an expired or an unknown one is "not found"
   * (-32602, as the SDKs answer an unknown task id): whether someone else's task exists is not told.
   */
  backendOf(caller: TaskCaller, taskId: unknown): string {
    const record = typeof taskId === "string" ? this.#tasks.get(taskId) : undefined;
    if (!record || record.owner !== ownerKey(caller) || record.expiresAtMs <= this.#now()) {
      throw new JsonRpcError(JSONRPC.invalidParams, `Task not found: ${String(taskId)}`);
    }
    return record.backend;
  }

  /** Whether the task on `backend` is `caller`'s (for filtering `tasks/list`). */
  owns(caller: TaskCaller, backend: string, taskId: unknown): boolean {
    const record = typeof taskId === "string" ? this.#tasks.get(taskId) : undefined;
    return record !== undefined && record.owner === ownerKey(caller) && record.backend === backend &&
      record.expiresAtMs > this.#now();
  }

  get size(): number {
    return this.#tasks.size;
  }

  #prune(): void {
    const now = this.#now();
    for (const [taskId, record] of this.#tasks) if (record.expiresAtMs <= now) this.#tasks.delete(taskId);
    // Still full: the oldest go first (a Map iterates in insertion order).
    for (const taskId of this.#tasks.keys()) {
      if (this.#tasks.size < MAX_TASKS) break;
      this.#tasks.delete(taskId);
    }
  }
}

const byGateway = new WeakMap<object, TaskOwners>();

/** The task owners of one gateway, keyed by an object that lives as long as it (its backend pool). */
export function taskOwnersOf(gateway: object): TaskOwners {
  let owners = byGateway.get(gateway);
  if (!owners) {
    owners = new TaskOwners();
    byGateway.set(gateway, owners);
  }
  return owners;
}
