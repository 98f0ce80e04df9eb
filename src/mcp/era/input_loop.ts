/**
 * A 2025-era client calling a 2026-07-28 backend: the backend's `input_required` becomes requests to the
 * client, one per input, and the call is retried with the answers, for a bounded number of rounds.
 */
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";

type Params = Record<string, unknown>;
type Result = Record<string, unknown>;

/** Rounds of input a 2025-era client is asked for before the gateway gives up on a call. */
export const MAX_INPUT_ROUNDS = 8;

/**
 * Sends `params` with `send` until the answer needs no more input, asking the client with `ask` for each
 * input the backend wants in between.
 */
export async function relayAskingClient(
  backendName: string,
  params: Params | undefined,
  send: (params: Params | undefined) => Promise<Result>,
  ask: (method: string, params: Params | undefined) => Promise<unknown>,
): Promise<Result> {
  let result = await send(params);
  for (let round = 0; result.resultType === "input_required" && round < MAX_INPUT_ROUNDS; round++) {
    const inputResponses: Record<string, unknown> = {};
    for (const [key, request] of Object.entries((result.inputRequests ?? {}) as Record<string, Params>)) {
      inputResponses[key] = await ask(String(request.method), request.params as Params | undefined);
    }
    result = await send({ ...params, inputResponses, requestState: result.requestState });
  }
  if (result.resultType === "input_required") {
    throw new JsonRpcError(JSONRPC.internalError, `Backend "${backendName}" kept asking for input`);
  }
  return result;
}
