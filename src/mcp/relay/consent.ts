/**
 * Section 6 of the product: the consent answer in each form a client understands, and the tool `/mcp`
 * lists in place of a backend whose third-party service the user has not connected yet.
 */
import { accountPhrase, capitalized, remoteOAuthBackendOf } from "../../config/types.ts";
import type { BackendSettings } from "../../config/types.ts";
import { ConsentRequiredError } from "../../services/consent_required.ts";
import { JSONRPC, JsonRpcError } from "../../core/jsonrpc.ts";
import { declaresUrlElicitation, INPUT_REQUIRED_METHODS, RETRY_STATE } from "../era/modern.ts";
import { type RelayRequest, type Result, upstreamOf } from "./request.ts";

/**
 * The tool `/mcp` lists for a backend whose service the user has not connected, when no one's listing of
 * that backend is known yet: calling it brings the consent link.
 */
/** The placeholder tool of a service (`backend:x`, an OAuth-protected backend, becomes `backend_x`). */
export const connectToolName = (service: string) => `gatehouse_connect_${service.replace(":", "_")}`;

export function connectTool(backend: BackendSettings, service: string): Record<string, unknown> {
  const remote = remoteOAuthBackendOf(service) !== undefined;
  return {
    name: connectToolName(service),
    title: remote ? `Connect ${backend.name}` : `Connect ${service}`,
    description:
      (remote
        ? `Sign in to "${backend.name}" (a server with its own sign-in) so that its tools become available. `
        : `Connect your ${service} account so that the tools of "${backend.name}" become available. `) +
      "Call this to get the link to open; the tools are listed once you have connected.",
    inputSchema: { type: "object", properties: {} },
    annotations: { readOnlyHint: true, openWorldHint: false },
  };
}

/**
 * How a client hears that it needs a consent link, in the best form it understands: `input_required`
 * with a URL elicitation (2026-07-28), -32042 (2025-11-25 clients that declare URL elicitation), or a
 * tool result / error carrying the link. Never an HTTP 401 (clients read it as "sign in again").
 */
export function consentAnswer(relay: RelayRequest, method: string, consent: ConsentRequiredError): Result {
  const { session, deps, context } = relay;
  deps.events?.add("consent", {
    user: session.caller.id,
    backend: undefined,
    service: consent.service,
    message: `asked to connect ${consent.service} (${method})`,
  });
  const message = `Connect ${accountPhrase(consent.service)} to continue: open ${consent.url} then retry.`;
  // SEP-2575: only ask a 2026-07-28 client for input it declared it can give.
  if (session.era === "modern" && INPUT_REQUIRED_METHODS.has(method) && declaresUrlElicitation(context)) {
    return {
      resultType: "input_required",
      inputRequests: {
        [`connect-${consent.service}`]: {
          method: "elicitation/create",
          params: { mode: "url", url: consent.url, message },
        },
      },
      requestState: RETRY_STATE,
    };
  }
  const elicitation = session.server?.getClientCapabilities()?.elicitation as { url?: unknown } | undefined;
  if (session.era === "legacy" && elicitation?.url !== undefined) {
    session.awaitingConsent.add(consent.elicitationId);
    throw new JsonRpcError(JSONRPC.urlElicitationRequired, message, {
      elicitations: [{ mode: "url", elicitationId: consent.elicitationId, url: consent.url, message }],
    });
  }
  if (method === "tools/call") {
    return { content: [{ type: "text", text: message }], isError: true, _meta: { auth_url: consent.url } };
  }
  throw new JsonRpcError(JSONRPC.consentRequired, message, { auth_url: consent.url });
}

/** The tool listed in place of a backend awaiting consent: the link, or word that it is connected. */
export async function connectCall(
  relay: RelayRequest,
  backend: BackendSettings,
  service: string,
): Promise<Result> {
  try {
    await upstreamOf(relay, backend);
  } catch (error) {
    if (error instanceof ConsentRequiredError) return consentAnswer(relay, "tools/call", error);
    throw error;
  }
  return {
    content: [{
      type: "text",
      text: `${
        capitalized(accountPhrase(service))
      } is connected: list the tools again to see those of "${backend.name}".`,
    }],
  };
}
