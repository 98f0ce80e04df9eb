/** Argon2id password hashing, and verification in a worker so that sign-ins never block the event loop. */
import { argon2id, argon2Verify } from "hash-wasm";

/** OWASP's argon2id baseline: 19 MiB, 2 passes, 1 lane. */
export const ARGON2ID_PARAMS = Object.freeze({
  memorySize: 19456,
  iterations: 2,
  parallelism: 1,
  hashLength: 32,
});

/** Hashes a password into the encoded `$argon2id$v=19$m=...,t=...,p=...$salt$hash` form. */
export function hashPassword(password: string): Promise<string> {
  if (password.length === 0) throw new TypeError("Cannot hash password: it is empty");
  const salt = crypto.getRandomValues(new Uint8Array(16));
  return argon2id({ password, salt, ...ARGON2ID_PARAMS, outputType: "encoded" });
}

/** True when `password` matches an encoded argon2id hash; false for a malformed hash. */
export async function verifyPassword(hash: string, password: string): Promise<boolean> {
  try {
    return await argon2Verify({ password, hash });
  } catch {
    return false;
  }
}

/** Checks passwords in a worker, so a sign-in does not stall every other request. */
export interface PasswordVerifier {
  verify(hash: string, password: string): Promise<boolean>;
  close(): void;
}

export function createPasswordVerifier(): PasswordVerifier {
  let worker: Worker | undefined;
  let nextId = 0;
  const pending = new Map<number, (ok: boolean) => void>();
  const start = () => {
    const started = new Worker(new URL("./password_worker.ts", import.meta.url).href, { type: "module" });
    started.onmessage = (event: MessageEvent<{ id: number; ok: boolean }>) => {
      pending.get(event.data.id)?.(event.data.ok);
      pending.delete(event.data.id);
    };
    return started;
  };
  return {
    verify(hash, password) {
      worker ??= start();
      const id = nextId++;
      const answered = new Promise<boolean>((resolve) => pending.set(id, resolve));
      worker.postMessage({ id, hash, password });
      return answered;
    },
    close() {
      worker?.terminate();
      worker = undefined;
      for (const resolve of pending.values()) resolve(false);
      pending.clear();
    },
  };
}
