/**
 * A call needs the user's token for a third-party service they have not connected (or whose token can no
 * longer be refreshed). Carries the consent link; the proxy turns it into the answer the client
 * understands (input_required, -32042, or a tool result with the link).
 */
import { accountPhrase } from "../config/types.ts";

export class ConsentRequiredError extends Error {
  readonly code = "ERR_CONSENT_REQUIRED";
  readonly service: string;
  /** `{public_url}/connect/{service}?ticket=...`: short-lived, single use, bound to the user. */
  readonly url: string;
  /** Names this consent for `notifications/elicitation/complete` (2025-11-25 URL elicitation). */
  readonly elicitationId: string;

  constructor(service: string, url: string, elicitationId: string) {
    super(`Connect ${accountPhrase(service)} to continue: open ${url} and then retry`);
    this.name = "ConsentRequiredError";
    this.service = service;
    this.url = url;
    this.elicitationId = elicitationId;
  }
}
