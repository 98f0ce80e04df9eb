/** docs/registry.md documents every key of the registry's schema, found by walking the zod schema itself. */
import assert from "node:assert/strict";
import { z } from "zod";
import { policyMappingSchema, registrySchema } from "../../src/config/schema.ts";
import { Template } from "../../src/config/template.ts";
import { inlineCode } from "./_markdown.ts";

const root = new URL("../../", import.meta.url);

/** A key's place in the schema: key names from the top, `*` for a record's values, `[]` for list items. */
type KeyPath = readonly string[];

/** What the walk reads of a zod schema: `_zod.def` (each type's definition) and the accessors named below. */
interface Walkable {
  _zod: { def: { type: string; innerType?: Walkable; left?: Walkable; right?: Walkable }; bag: object };
  shape?: Record<string, Walkable>; // ZodObject
  valueType?: Walkable; // ZodRecord
  element?: Walkable; // ZodArray
  options?: readonly Walkable[]; // ZodUnion, ZodDiscriminatedUnion
  in?: Walkable; // ZodPipe (also what .transform() makes)
  out?: Walkable;
}

/** Types that hold no keys: plain values, and the function half of a transform. */
const LEAF_TYPES = new Set(["string", "number", "boolean", "enum", "literal", "null", "transform"]);

/** Types that wrap one schema (`.optional()`, `.default()` ...): the keys are those of the wrapped one. */
const WRAPPER_TYPES = new Set([
  "optional",
  "nullable",
  "default",
  "prefault",
  "nonoptional",
  "readonly",
  "catch",
]);

function display(path: KeyPath): string {
  return path.length === 0 ? "the top" : path.join(".");
}

/**
 * Every key of a zod schema, as a path. Record keys are names the user chooses (user, backend or variable
 * names), so they are not keys: only the record's values are walked. A part the walk cannot see into throws,
 * so that a new kind of schema is decided on here instead of being skipped.
 */
function schemaKeys(schema: Walkable, path: KeyPath = []): KeyPath[] {
  const type = schema._zod.def.type;
  if (LEAF_TYPES.has(type)) return [];
  if (WRAPPER_TYPES.has(type)) return schemaKeys(required(schema._zod.def.innerType, type, path), path);
  switch (type) {
    case "object":
      return Object.entries(required(schema.shape, type, path)).flatMap(([key, value]) => [
        [...path, key],
        ...schemaKeys(value, [...path, key]),
      ]);
    case "record":
      return schemaKeys(required(schema.valueType, type, path), [...path, "*"]);
    case "array":
      return schemaKeys(required(schema.element, type, path), [...path, "[]"]);
    case "union":
      return required(schema.options, type, path).flatMap((option) => schemaKeys(option, path));
    case "pipe":
      return [
        ...schemaKeys(required(schema.in, type, path), path),
        ...schemaKeys(required(schema.out, type, path), path),
      ];
    case "intersection":
      return [
        ...schemaKeys(required(schema._zod.def.left, type, path), path),
        ...schemaKeys(required(schema._zod.def.right, type, path), path),
      ];
    case "custom":
      // z.instanceof(Template): a string after `${...}` interpolation, with no keys of its own.
      if ((schema._zod.bag as { Class?: unknown }).Class === Template) return [];
      throw new Error(`Cannot walk the schema: a custom type at ${display(path)} hides what it holds`);
    default:
      throw new Error(`Cannot walk the schema: zod type "${type}" at ${display(path)} is not handled`);
  }
}

function required<T>(part: T | undefined, type: string, path: KeyPath): T {
  if (part === undefined) {
    throw new Error(`Cannot walk the schema: a "${type}" at ${display(path)} has no parts`);
  }
  return part;
}

/** The keys of registry.yaml and of the policy files, without repeats. */
function registryKeys(): KeyPath[] {
  const keys = [
    ...schemaKeys(registrySchema as unknown as Walkable),
    ...schemaKeys(policyMappingSchema as unknown as Walkable),
  ];
  return [...new Map(keys.map((key) => [key.join("."), key])).values()];
}

/** The key names a page writes as inline code: `max_body_size`, `allow.users`, `clients:`, `auth: none`. */
function documentedKeys(markdown: string): string[][] {
  return inlineCode(markdown)
    .map((code) => code.split(/[:\s]/)[0]!)
    .filter((code) => /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/.test(code))
    .map((code) => code.split("."));
}

/** A key is documented by its name or by a dotted tail of its path: `users` or `allow.users`. */
function isDocumented(key: KeyPath, documented: string[][]): boolean {
  const names = key.filter((part) => part !== "*" && part !== "[]");
  return documented.some((written) =>
    written.length <= names.length &&
    written.every((part, i) => part === names[names.length - written.length + i])
  );
}

Deno.test("schemaKeys() finds the keys of every section of registrySchema", () => {
  const keys = registryKeys().map((key) => key.join("."));
  for (
    const expected of [
      "gateway",
      "gateway.max_body_size",
      "login.users.*.password_hash",
      "login.providers.*.allow.orgs",
      "login.providers.*.groups_claim",
      "clients.*.redirect_uris",
      "services.*.authorization_params",
      "backends.*.stdio.env",
      "backends.*.sse.url",
      "backends.*.tools.include",
      "policies.[].read_only",
      "limits.[].requests_per_minute",
    ]
  ) {
    assert.ok(keys.includes(expected), `${expected} not found among ${keys.length} keys`);
  }
  assert.ok(!keys.some((key) => key.includes("*.*")), "a record key was taken for a key");
});

Deno.test("schemaKeys() refuses a schema part it cannot see into", () => {
  assert.throws(
    () => schemaKeys(z.strictObject({ a: z.instanceof(Date) }) as unknown as Walkable),
    /custom type at a/,
  );
  assert.throws(
    () => schemaKeys(z.strictObject({ b: z.lazy(() => z.string()) }) as unknown as Walkable),
    /zod type "lazy" at b/,
  );
});

Deno.test("docs/registry.md names every key of the registry as inline code", () => {
  const documented = documentedKeys(Deno.readTextFileSync(new URL("docs/registry.md", root)));
  const missing = registryKeys()
    .filter((key) => !isDocumented(key, documented))
    .map((key) => key.join("."));
  assert.deepEqual(missing, []);
});
