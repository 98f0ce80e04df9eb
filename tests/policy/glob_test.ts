import assert from "node:assert/strict";
import { GlobSet, globToRegExp, isGlob } from "../../src/core/glob.ts";

/** A glob, the values it must match, and the values it must not. */
const cases: { glob: string; matches: string[]; misses: string[] }[] = [
  { glob: "*", matches: ["", "a", "search_web", "a/b.c", "line\nbreak"], misses: [] },
  { glob: "search_*", matches: ["search_", "search_web", "search_a/b"], misses: ["search", "xsearch_web"] },
  { glob: "*_admin", matches: ["_admin", "user_admin"], misses: ["user_admin2", "admin"] },
  { glob: "a*b*c", matches: ["abc", "aXbYc", "abbc"], misses: ["acb", "ab"] },
  { glob: "?", matches: ["a", "?", "/", "\n"], misses: ["", "ab"] },
  { glob: "db-??", matches: ["db-12", "db-ab"], misses: ["db-1", "db-123"] },
  { glob: "[a-z]", matches: ["a", "m", "z"], misses: ["A", "1", "", "ab", "-"] },
  { glob: "[abc]x", matches: ["ax", "cx"], misses: ["dx", "x", "abx"] },
  { glob: "[!x]", matches: ["y", "X", "!", "]"], misses: ["x", "", "yy"] },
  { glob: "[!a-c]*", matches: ["d", "dog", "A"], misses: ["a", "cat", ""] },
  { glob: "v[0-9][0-9]", matches: ["v10", "v99"], misses: ["v1", "va0", "v100"] },
  // A `]` first in a set is a member of it, not its end.
  { glob: "[]a]", matches: ["]", "a"], misses: ["b", "[]a]"] },
  { glob: "[!]a]", matches: ["b", "!"], misses: ["]", "a"] },
  // A `[` that never closes, and a lone `]`, are literal.
  { glob: "[abc", matches: ["[abc"], misses: ["a", "abc"] },
  { glob: "[!]", matches: ["[!]"], misses: ["a", "!", "]"] },
  { glob: "a]b", matches: ["a]b"], misses: ["ab"] },
  // Everything else is literal, including what regular expressions give a meaning to.
  { glob: "file.read", matches: ["file.read"], misses: ["fileXread", "file.reads"] },
  { glob: "a/b", matches: ["a/b"], misses: ["a\\b", "ab"] },
  { glob: "a+b", matches: ["a+b"], misses: ["aab", "ab"] },
  { glob: "(x|y)", matches: ["(x|y)"], misses: ["x", "y"] },
  { glob: "^a$", matches: ["^a$"], misses: ["a"] },
  { glob: "{a,b}", matches: ["{a,b}"], misses: ["a", "b"] },
  { glob: "a\\d", matches: ["a\\d"], misses: ["a1", "ad"] },
  { glob: "$${x}", matches: ["$${x}"], misses: ["${x}"] },
  // Resource URIs: `*` crosses slashes, and the dots, colon and query are literal.
  {
    glob: "file:///srv/*.md",
    matches: ["file:///srv/a.md", "file:///srv/notes/b.md"],
    misses: ["file:///srv/a.mdx", "file:///etc/a.md", "file:///srv/aXmd"],
  },
  {
    glob: "https://example.com/api/v?/*",
    matches: ["https://example.com/api/v1/users", "https://example.com/api/v2/a?b=c"],
    misses: [
      "https://exampleXcom/api/v1/users",
      "https://example.com/api/v10/users",
      "http://example.com/api/v1/x",
    ],
  },
  {
    glob: "wiki://pages/secret-[0-9]",
    matches: ["wiki://pages/secret-7"],
    misses: ["wiki://pages/secret-x"],
  },
];

for (const { glob, matches, misses } of cases) {
  Deno.test(`globToRegExp() matches "${glob.replaceAll("\n", "\\n")}" as a glob`, () => {
    const expression = globToRegExp(glob);
    for (const value of matches) {
      assert.equal(expression.test(value), true, `"${glob}" must match "${value}"`);
    }
    for (const value of misses) {
      assert.equal(expression.test(value), false, `"${glob}" must not match "${value}"`);
    }
    // A set of one glob decides the same.
    const set = new GlobSet([glob]);
    for (const value of matches) assert.equal(set.test(value), true, `{${glob}} must match "${value}"`);
    for (const value of misses) assert.equal(set.test(value), false, `{${glob}} must not match "${value}"`);
  });
}

Deno.test("isGlob() is true for a pattern with *, ? or [", () => {
  for (const pattern of ["*", "a*", "?", "a?b", "[ab]", "[abc"]) assert.equal(isGlob(pattern), true, pattern);
  for (const pattern of ["", "wiki", "file.read", "a]b", "file:///srv/a.md", "a+b", "{a}"]) {
    assert.equal(isGlob(pattern), false, pattern);
  }
});

Deno.test("GlobSet matches a value that any of its literals or globs matches", () => {
  const set = new GlobSet(["wiki", "mail-?", "[xy]*", "a.b"]);
  for (const value of ["wiki", "mail-1", "x", "yes", "a.b"]) assert.equal(set.test(value), true, value);
  for (const value of ["wik", "mail-12", "zed", "aXb", "wiki2", ""]) {
    assert.equal(set.test(value), false, value);
  }
  assert.equal(set.any, false);
  assert.deepEqual(set.patterns, ["wiki", "mail-?", "[xy]*", "a.b"]);
});

Deno.test('GlobSet with "*" matches everything, and an empty GlobSet nothing', () => {
  const all = new GlobSet(["wiki", "*"]);
  assert.equal(all.any, true);
  for (const value of ["", "anything", "a/b"]) assert.equal(all.test(value), true, value);
  const none = new GlobSet([]);
  assert.equal(none.any, false);
  for (const value of ["", "*", "wiki"]) assert.equal(none.test(value), false, value);
});

Deno.test("GlobSet keeps each glob anchored when it joins them", () => {
  // Joined as one expression, "a" and "b*" must not become "^a" or "b*$" on their own.
  const set = new GlobSet(["a?", "b*"]);
  assert.equal(set.test("ab"), true);
  assert.equal(set.test("abc"), false);
  assert.equal(set.test("cb"), false);
  assert.equal(set.test("bcd"), true);
});
