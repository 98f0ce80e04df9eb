// Dynamic client registration (RFC 7591) and its management by registration access token (RFC 7592).
import type { Context, Hono } from "hono";
import type { AppEnv } from "../env.ts";
import { type ClientDirectory, REGISTRATION_LIMITS, RegistrationThrottled } from "../../oauth/clients.ts";
import { OAuthError } from "../../core/oauth_error.ts";
import { bodyText, clientAddressOf, JSON_TYPE } from "../request_helpers.ts";

export interface RegistrationRouteDependencies {
  clients: Pick<
    ClientDirectory,
    "register" | "byRegistrationToken" | "validate" | "update" | "delete"
  >;
  /** The public base URL (the registration client URI is under it). */
  baseUrl: () => string;
  /** Told when a registration from `address` is refused by the per-address throttle. */
  onRegistrationThrottled?: (address: string) => void;
}

/** A registration body (RFC 7591 §3.1): a JSON object, bounded before it is parsed. */
async function registrationBody(c: Context<AppEnv>): Promise<Record<string, unknown>> {
  // RFC 7591 §3.1: the body is application/json (a form or text/plain one is also what a foreign page can
  // send without a CORS preflight).
  if (!JSON_TYPE.test(c.req.header("content-type") ?? "")) {
    throw new OAuthError("invalid_client_metadata", "The body must be application/json");
  }
  const text = await bodyText(c);
  if (new TextEncoder().encode(text).length > REGISTRATION_LIMITS.maxBodyBytes) {
    throw new OAuthError(
      "invalid_client_metadata",
      `The registration is larger than ${REGISTRATION_LIMITS.maxBodyBytes} bytes`,
    );
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new OAuthError("invalid_client_metadata", "The body must be a JSON object");
  }
  if (!body || typeof body !== "object" || Array.isArray(body)) {
    throw new OAuthError("invalid_client_metadata", "The body must be a JSON object");
  }
  return body as Record<string, unknown>;
}

/** Mounts `POST /register` (when registration is open) and `GET`/`PUT`/`DELETE /register/:client_id`. */
export function mountRegistrationRoutes(app: Hono<AppEnv>, deps: RegistrationRouteDependencies): void {
  const { clients } = deps;
  app.post("/register", async (c) => {
    if (c.get("snapshot").registry.gateway.registration !== "open") {
      throw new OAuthError("access_denied", "Dynamic client registration is off", 403);
    }
    const body = await registrationBody(c);
    const address = clientAddressOf(c);
    const { registrationsPerHour } = c.get("snapshot").registry.gateway;
    try {
      const registered = await clients.register(
        body,
        `${deps.baseUrl()}/register`,
        address,
        registrationsPerHour,
      );
      return c.json(registered, 201, { "cache-control": "no-store" });
    } catch (error) {
      if (error instanceof RegistrationThrottled) deps.onRegistrationThrottled?.(address!);
      throw error;
    }
  });
  const registrationClient = async (c: Context<AppEnv>) => {
    const authorization = c.req.header("authorization") ?? "";
    const token = authorization.toLowerCase().startsWith("bearer ") ? authorization.slice(7).trim() : "";
    const client = token
      ? await clients.byRegistrationToken(c.req.param("client_id") ?? "", token)
      : undefined;
    if (!client) throw new OAuthError("invalid_token", "Unknown client or registration access token", 401);
    return client;
  };
  app.get("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    return c.json({ client_id: client.clientId, ...client.metadata }, 200, { "cache-control": "no-store" });
  });
  app.put("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    const body = await registrationBody(c);
    if (body.client_id !== client.clientId) {
      throw new OAuthError(
        "invalid_client_metadata",
        "The body must be the client's metadata with its client_id",
      );
    }
    const { client_id: _id, client_secret: _secret, registration_access_token: _token, ...metadata } = body;
    const validated = clients.validate(metadata);
    // A client cannot turn itself public or confidential: its secret (or lack of one) stays as issued.
    if (validated.token_endpoint_auth_method !== client.tokenEndpointAuthMethod) {
      throw new OAuthError("invalid_client_metadata", "token_endpoint_auth_method cannot be changed");
    }
    clients.update(client.clientId, validated);
    return c.json({ client_id: client.clientId, ...validated }, 200, { "cache-control": "no-store" });
  });
  app.delete("/register/:client_id", async (c) => {
    const client = await registrationClient(c);
    clients.delete(client.clientId);
    return c.body(null, 204);
  });
}
