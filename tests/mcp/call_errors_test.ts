/**
 * Unit tests of translateCallError(): what a failed backend call becomes, and what it says of the backend.
 */
import assert from "node:assert/strict";
import type { BackendSettings } from "../../src/config/types.ts";
import { JSONRPC, JsonRpcError } from "../../src/core/jsonrpc.ts";
import { createLogger } from "../../src/log/logger.ts";
import { translateCallError } from "../../src/mcp/backends/call_errors.ts";
import { ConsentRequiredError } from "../../src/services/consent_required.ts";

/** A failed call of backend `remote`, recording what it told of the backend. */
function failedCall() {
  const told: string[] = [];
  return {
    told,
    call: {
      backend: { name: "remote", callTimeoutSeconds: 30 } as BackendSettings,
      method: "tools/call",
      signal: undefined,
      log: createLogger({ write: () => {} }),
      onTimeout: () => told.push("timeout"),
      onUnreachable: (message: string) => told.push(`unreachable: ${message}`),
    },
  };
}

Deno.test("translateCallError() passes a ConsentRequiredError through, saying nothing of the backend", () => {
  const { told, call } = failedCall();
  const consent = new ConsentRequiredError(
    "backend:remote",
    "http://127.0.0.1:1/connect/backend:remote?ticket=t",
    "e",
  );
  assert.equal(translateCallError(consent, call), consent);
  assert.deepEqual(told, []);
});

Deno.test("translateCallError() makes anything else a failure of the backend", () => {
  const { told, call } = failedCall();
  const translated = translateCallError(new TypeError("fetch failed"), call);
  assert.ok(translated instanceof JsonRpcError);
  assert.equal(translated.code, JSONRPC.backendUnavailable);
  assert.equal(translated.message, 'Backend "remote" failed: fetch failed');
  assert.deepEqual(told, ["unreachable: fetch failed"]);
});
