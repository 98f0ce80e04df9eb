/** Unit tests of browserCors() on a small in-process Hono app (no sockets). */
import assert from "node:assert/strict";
import { Hono } from "hono";
import { browserCors, CORS_EXPOSED_HEADERS, PREFLIGHT_MAX_AGE_SECONDS } from "../../src/http/cors.ts";
import { HttpError } from "../../src/http/errors.ts";

const PAGE = "https://app.example.test";

/** An app whose /api answers 200, or throws a 401 HttpError when asked to, behind browserCors(). */
function appWith(allowed: readonly string[]) {
  const reached: string[] = [];
  const app = new Hono();
  app.use(
    "/api/*",
    browserCors({ methods: ["GET", "POST"], allowsOrigin: (origin) => allowed.includes(origin) }),
  );
  app.all("/api", (c) => {
    reached.push(c.req.method);
    if (c.req.query("fail") !== undefined) {
      throw new HttpError(401, "invalid_token", "No token", { "www-authenticate": "Bearer" });
    }
    return c.json({ ok: true });
  });
  app.onError((error) =>
    error instanceof HttpError ? error.toResponse() : new Response(null, { status: 500 })
  );
  return { app, reached };
}

const preflight = (origin: string) => ({
  method: "OPTIONS",
  headers: {
    origin,
    "access-control-request-method": "POST",
    "access-control-request-headers": "content-type",
  },
});

Deno.test("browserCors() answers a preflight with 204 without reaching the route", async () => {
  const { app, reached } = appWith([PAGE]);
  const response = await app.request("/api", preflight(PAGE));
  assert.equal(response.status, 204);
  assert.equal(response.headers.get("access-control-allow-origin"), PAGE);
  assert.equal(response.headers.get("access-control-allow-methods"), "GET,POST");
  assert.equal(response.headers.get("access-control-max-age"), String(PREFLIGHT_MAX_AGE_SECONDS));
  assert.equal(response.headers.get("access-control-allow-credentials"), null);
  assert.deepEqual(reached, []);
});

Deno.test("browserCors() gives a refused Origin no Access-Control-Allow-Origin", async () => {
  const { app } = appWith([PAGE]);
  const asked = await app.request("/api", preflight("https://evil.example.test"));
  assert.equal(asked.headers.get("access-control-allow-origin"), null);
  const answered = await app.request("/api", { headers: { origin: "https://evil.example.test" } });
  assert.equal(answered.status, 200, "the route decides whether to serve; CORS decides who reads");
  assert.equal(answered.headers.get("access-control-allow-origin"), null);
});

Deno.test("browserCors() leaves an OPTIONS without Access-Control-Request-Method to the route", async () => {
  const { app, reached } = appWith([PAGE]);
  const response = await app.request("/api", { method: "OPTIONS", headers: { origin: PAGE } });
  assert.equal(response.status, 200);
  assert.deepEqual(reached, ["OPTIONS"]);
});

Deno.test("browserCors() puts Allow-Origin and Expose-Headers on error answers too", async () => {
  const { app } = appWith([PAGE]);
  const response = await app.request("/api?fail", { method: "POST", headers: { origin: PAGE } });
  assert.equal(response.status, 401);
  assert.equal(response.headers.get("www-authenticate"), "Bearer");
  assert.equal(response.headers.get("access-control-allow-origin"), PAGE);
  assert.equal(response.headers.get("access-control-expose-headers"), CORS_EXPOSED_HEADERS.join(","));
  assert.match(response.headers.get("vary") ?? "", /origin/i);
});

Deno.test("browserCors() refuses to be set up without methods", () => {
  assert.throws(() => browserCors({ methods: [], allowsOrigin: () => true }), TypeError);
});
