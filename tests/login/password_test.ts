/** Argon2id hashing in the main isolate and in the password worker, which is started and ended on demand. */
import assert from "node:assert/strict";
import { createPasswordVerifier, hashPassword, verifyPassword } from "../../src/login/password.ts";

const PASSWORD = "correct horse battery staple";

/** Hashes PASSWORD, checks it and a wrong one, then closes the verifier. */
async function hashesAndVerifies(passwords: ReturnType<typeof createPasswordVerifier>): Promise<void> {
  try {
    const hash = await passwords.hash(PASSWORD);
    assert.equal(await passwords.verify(hash, PASSWORD), true);
    assert.equal(await passwords.verify(hash, "wrong"), false);
  } finally {
    passwords.close();
  }
}

Deno.test("hashPassword() makes an argon2id hash that verifyPassword() accepts", async () => {
  const hash = await hashPassword(PASSWORD);
  assert.match(hash, /^\$argon2id\$v=19\$m=19456,t=2,p=1\$/);
  assert.equal(await verifyPassword(hash, PASSWORD), true);
  assert.equal(await verifyPassword(hash, "wrong"), false);
  assert.equal(await verifyPassword("not a hash", PASSWORD), false);
  assert.throws(() => hashPassword(""), TypeError);
});

Deno.test("createPasswordVerifier() hashes and verifies in its worker", async () => {
  const passwords = createPasswordVerifier();
  try {
    const hash = await passwords.hash(PASSWORD);
    assert.equal(await verifyPassword(hash, PASSWORD), true);
    const [right, wrong, malformed] = await Promise.all([
      passwords.verify(hash, PASSWORD),
      passwords.verify(hash, "wrong"),
      passwords.verify("not a hash", PASSWORD),
    ]);
    assert.deepEqual([right, wrong, malformed], [true, false, false]);
    await assert.rejects(() => passwords.hash(""), TypeError);
  } finally {
    passwords.close();
  }
});

Deno.test("createPasswordVerifier() keeps answering across the workers it ends and starts again", async () => {
  // One job per worker and no idle time: every job after the first runs on a new worker.
  const passwords = createPasswordVerifier({ jobsPerWorker: 1, idleMs: 0 });
  await hashesAndVerifies(passwords);
});

Deno.test("createPasswordVerifier() close() fails the jobs still running", async () => {
  const passwords = createPasswordVerifier();
  const hash = passwords.hash(PASSWORD);
  const check = passwords.verify(
    "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA",
    PASSWORD,
  );
  passwords.close();
  await assert.rejects(hash, /Cannot use the password worker: it is closed/);
  assert.equal(await check, false);
});

Deno.test("createPasswordVerifier() does the jobs itself when its worker cannot start", async () => {
  // A worker module that fails as it loads, as one missing from a compiled binary does.
  const failing = new URL(
    `data:application/javascript,${encodeURIComponent('throw new Error("no worker")')}`,
  );
  const passwords = createPasswordVerifier({ workerUrl: failing });
  await hashesAndVerifies(passwords);
});
