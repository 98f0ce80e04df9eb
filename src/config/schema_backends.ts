/** The schema of `backends.<name>`: one transport (stdio, Streamable HTTP, legacy SSE) and its settings. */
import { z } from "zod";
import { durationSeconds, httpUrl, nonEmpty, sizeBytes, stringList, template } from "./schema_parts.ts";

const stdioTransport = z.strictObject({
  command: nonEmpty,
  args: z.array(z.union([z.string(), z.number()]).transform(String)).optional(),
  env: z.record(z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*$/, "invalid environment variable name"), template)
    .optional(),
  cwd: nonEmpty.optional(),
});

const headers = z.record(z.string().regex(/^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/, "invalid header name"), template);

const sseTransport = z.strictObject({ url: httpUrl, headers: headers.optional() });

/**
 * A remote MCP server protected by its own OAuth: each user connects their own account (`true`: discover
 * everything; a mapping: a client registered by hand, scopes, the resource indicator).
 */
const remoteOAuth = z.union([
  z.literal(true),
  z.strictObject({
    client_id: nonEmpty.optional(),
    client_secret: nonEmpty.optional(),
    scopes: stringList.optional(),
    resource: httpUrl.optional(),
  }).superRefine((oauth, context) => {
    if (oauth.client_secret !== undefined && oauth.client_id === undefined) {
      context.addIssue({
        code: "custom",
        path: ["client_secret"],
        message: "a client_secret needs its client_id",
      });
    }
  }),
], { error: "expected true or a mapping with client_id, client_secret, scopes, resource" });

const httpTransport = z.strictObject({
  url: httpUrl,
  headers: headers.optional(),
  oauth: remoteOAuth.optional(),
}).superRefine((http, context) => {
  const authorization = Object.keys(http.headers ?? {}).find((key) => key.toLowerCase() === "authorization");
  if (http.oauth !== undefined && authorization !== undefined) {
    context.addIssue({
      code: "custom",
      path: ["headers", authorization],
      message: "with oauth, each user's token goes in Authorization: remove this header",
    });
  }
});

export const backendSchema = z.strictObject({
  stdio: stdioTransport.optional(),
  http: httpTransport.optional(),
  sse: sseTransport.optional(),
  prefix: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_-]*$/, "a prefix uses letters, digits, '_' and '-'")
    .refine((value) => !value.includes("__"), "a prefix must not contain '__'").optional(),
  description: z.string().optional(),
  protocol: z.enum(["auto", "legacy"]).optional(),
  isolation: z.enum(["shared", "user", "session"]).optional(),
  idle_timeout: durationSeconds.optional(),
  max_processes: z.int().min(1, "must be at least 1").optional(),
  timeout: durationSeconds.optional(),
  max_response_size: sizeBytes.optional(),
  tools: z.strictObject({ include: stringList.optional(), exclude: stringList.optional() }).optional(),
}).superRefine((backend, context) => {
  const given = (["stdio", "http", "sse"] as const).filter((kind) => backend[kind] !== undefined);
  if (given.length !== 1) {
    context.addIssue({ code: "custom", message: "give exactly one of stdio, http or sse" });
  }
  if (backend.sse && backend.protocol === "auto") {
    context.addIssue({
      code: "custom",
      path: ["protocol"],
      message: "an sse backend speaks the 2024-11-05 protocol only",
    });
  }
  if (!backend.stdio) {
    for (const key of ["isolation", "idle_timeout", "max_processes", "max_response_size"] as const) {
      if (backend[key] !== undefined) {
        context.addIssue({
          code: "custom",
          path: [key],
          message: "only stdio backends have processes to manage",
        });
      }
    }
  } else if (
    backend.isolation === "shared" && Object.values(backend.stdio.env ?? {}).some((value) => value.perUser)
  ) {
    context.addIssue({
      code: "custom",
      path: ["isolation"],
      message:
        '"shared" is not allowed: env uses ${service:...} or ${user:...}, so each user needs a process',
    });
  }
});

export type RawBackend = z.output<typeof backendSchema>;
