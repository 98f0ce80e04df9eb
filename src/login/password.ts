/**
 * Argon2id password hashing, and a worker that hashes and verifies for the gateway, so that sign-ins never
 * block the event loop and argon2's 19 MiB of memory never stays in the main process.
 */

/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2ID_PARAMS = Object.freeze({
  memorySize: 19456,
  iterations: 2,
  parallelism: 1,
  hashLength: 32,
});

/**
 * hash-wasm is imported on first use, so the gateway's main isolate never loads it (only the worker does):
 * it is CommonJS with its WebAssembly inlined as text, about 9 MB in a process of its own.
 */
const loadHashWasm = () => import("hash-wasm");

/** Hashes a password into the encoded `$argon2id$v=19$m=...,t=...,p=...$salt$hash` form. */
export function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new TypeError("Cannot hash password: it is empty");
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return loadHashWasm().then(({ argon2id }) =>
    argon2id({ password, salt, ...ARGON2ID_PARAMS, outputType: "encoded" })
  );
}

/** True when `password` matches an encoded argon2id hash; false for a malformed hash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  const { argon2Verify } = await loadHashWasm();
  try {
    return await argon2Verify({ password, hash });
  } catch {
    return false;
  }
}

/** A job for the password worker (see `password_worker.ts`). */
export type PasswordJob =
  | { readonly op: "verify"; readonly hash: string; readonly password: string }
  | { readonly op: "hash"; readonly password: string };

/** What the gateway posts to the password worker: a job and the id its answer carries back. */
export type PasswordWorkerRequest = PasswordJob & { readonly id: number };

/** The answer to a job: `ok` to a verification, `hash` (or `error`) to a hashing. */
export type PasswordAnswer =
  | { readonly ok: boolean }
  | { readonly hash: string }
  | { readonly error: string };

/** What the password worker posts back: an answer and the id of its job. */
export type PasswordWorkerAnswer = PasswordAnswer & { readonly id: number };

/** Does one job, in whichever isolate calls it: the worker's, or the gateway's when no worker can start. */
export async function answerPasswordJob(job: PasswordJob): Promise<PasswordAnswer> {
  try {
    if (job.op === "verify") return { ok: await verifyPassword(job.hash, job.password) };
    return { hash: await hashPassword(job.password) };
  } catch (error) {
    // Nothing verifies when argon2 cannot run.
    if (job.op === "verify") return { ok: false };
    return { error: error instanceof Error ? error.message : String(error) };
  }
}

/**
 * Hashes and checks passwords in a worker, so a sign-in does not stall every other request. Each argon2 run
 * leaves 19 MiB of WebAssembly memory that the worker's isolate frees only when it gets round to it (40
 * checks in a row reached 360 MB): so the worker is started on demand and ended, which gives all of it
 * back, as soon as it is idle after a few jobs, or after a moment of idleness.
 */
export interface PasswordVerifier {
  verify(hash: string, password: string): Promise<boolean>;
  /** `hashPassword()` in the worker: the first-start admin's hash, and the decoy for unknown users. */
  hash(password: string): Promise<string>;
  close(): void;
}

/**
 * How long the worker stays after its last answer: long enough that a sign-in's decoy hash and check share
 * one worker, short enough that an idle gateway has none. A new worker starts in about 60 ms, next to the
 * 100 ms of one argon2 run.
 */
export const PASSWORD_WORKER_IDLE_MS = 1_000;

/**
 * After this many jobs the worker ends as soon as it has none left (about 80 MiB of garbage at most while
 * jobs come one at a time). Jobs that overlap stay on the one worker: there is never more than one.
 */
export const PASSWORD_WORKER_JOBS = 4;

export function createPasswordVerifier(
  options: {
    idleMs?: number;
    jobsPerWorker?: number;
    /** The worker's module; tests give one that cannot load. */
    workerUrl?: URL;
  } = {},
): PasswordVerifier {
  const workerUrl = options.workerUrl ?? new URL("./password_worker.ts", import.meta.url);
  const idleMs = options.idleMs ?? PASSWORD_WORKER_IDLE_MS;
  const jobsPerWorker = options.jobsPerWorker ?? PASSWORD_WORKER_JOBS;
  let worker: Worker | undefined;
  /** Jobs given to the current worker. */
  let jobs = 0;
  let idleTimer: ReturnType<typeof setTimeout> | undefined;
  let nextId = 0;
  const pending = new Map<number, { job: PasswordJob; settle: (answer: PasswordAnswer) => void }>();

  /** Ends the worker; the jobs it still had are done here (it failed) or refused (the verifier closed). */
  const stop = (failure?: string) => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
    worker?.terminate();
    worker = undefined;
    for (const { job, settle } of pending.values()) {
      // A worker that cannot start (a binary built without its module) must not stop sign-ins: the
      // job then blocks the event loop for one argon2 run instead.
      if (failure !== undefined) answerPasswordJob(job).then(settle);
      else settle({ error: "Cannot use the password worker: it is closed" });
    }
    pending.clear();
  };
  const start = (): Worker => {
    const started = new Worker(workerUrl.href, { type: "module" });
    jobs = 0;
    started.onmessage = (event: MessageEvent<PasswordWorkerAnswer>) => {
      const { id, ...answer } = event.data;
      pending.get(id)?.settle(answer);
      pending.delete(id);
      if (pending.size > 0) return;
      if (jobs >= jobsPerWorker) return stop();
      idleTimer = setTimeout(stop, idleMs);
      // An idle worker's timer never keeps the process alive.
      Deno.unrefTimer(Number(idleTimer));
    };
    // A failed worker answers nothing more; the next job starts a new one.
    started.onerror = (event) => {
      event.preventDefault();
      stop(event.message);
    };
    return started;
  };
  const ask = (job: PasswordJob): Promise<PasswordAnswer> => {
    clearTimeout(idleTimer);
    idleTimer = undefined;
    worker ??= start();
    jobs++;
    const id = nextId++;
    const answered = new Promise<PasswordAnswer>((settle) => pending.set(id, { job, settle }));
    worker.postMessage({ ...job, id } satisfies PasswordWorkerRequest);
    return answered;
  };

  return {
    async verify(hash, password) {
      const answer = await ask({ op: "verify", hash, password });
      return "ok" in answer && answer.ok;
    },
    async hash(password) {
      if (password.length === 0) throw new TypeError("Cannot hash password: it is empty");
      const answer = await ask({ op: "hash", password });
      if ("hash" in answer) return answer.hash;
      throw new Error("error" in answer ? answer.error : "Cannot hash password: no answer");
    },
    close() {
      stop();
    },
  };
}
