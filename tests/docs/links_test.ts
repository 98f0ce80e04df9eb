/** The documentation holds together: links lead to files, anchors to headings, and the README stays short. */
import assert from "node:assert/strict";
import { githubSlug, headingAnchors, lineCount, links } from "./_markdown.ts";

const root = new URL("../../", import.meta.url);
const README_MAX_LINES = 250;

/** README.md and every docs/*.md, as paths relative to the repository root. */
function documentationPages(): string[] {
  const pages = ["README.md"];
  for (const entry of Deno.readDirSync(new URL("docs/", root))) {
    if (entry.isFile && entry.name.endsWith(".md")) pages.push(`docs/${entry.name}`);
  }
  return pages.sort();
}

function read(url: URL): string {
  return Deno.readTextFileSync(url);
}

function isFile(url: URL): boolean {
  try {
    return Deno.statSync(url).isFile;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/** A link to another site (`https:`, `mailto:` ...), which these tests do not follow. */
function isExternal(target: string): boolean {
  return /^[a-z][a-z0-9+.-]*:/i.test(target);
}

interface RelativeLink {
  /** Where the link is written, `page:line`. */
  at: string;
  target: string;
  /** The file it leads to (the page itself for `#anchor`). */
  file: URL;
  /** The anchor, decoded, or undefined when the link has none. */
  anchor: string | undefined;
}

/** Every relative link of the documentation, resolved against the page it is on. */
function relativeLinks(): RelativeLink[] {
  return documentationPages().flatMap((page) => {
    const pageUrl = new URL(page, root);
    return links(read(pageUrl))
      .filter(({ target }) => target !== "" && !isExternal(target))
      .map(({ target, line }) => {
        const hash = target.indexOf("#");
        const path = hash === -1 ? target : target.slice(0, hash);
        const anchor = hash === -1 ? undefined : decodeURIComponent(target.slice(hash + 1));
        const file = path === "" ? pageUrl : new URL(path, pageUrl);
        return { at: `${page}:${line}`, target, file, anchor };
      });
  });
}

Deno.test("githubSlug() follows GitHub's heading anchors", () => {
  assert.equal(githubSlug("Signing in (OAuth)"), "signing-in-oauth");
  assert.equal(githubSlug("login.users"), "loginusers");
  assert.equal(githubSlug("Behind Caddy or nginx (TLS)"), "behind-caddy-or-nginx-tls");
  assert.equal(githubSlug("gatehouse hash-password"), "gatehouse-hash-password");
  assert.equal(githubSlug("`max_body_size` and sizes"), "max_body_size-and-sizes");
  assert.equal(githubSlug("Remote clients, with sign-in"), "remote-clients-with-sign-in");
  assert.equal(githubSlug("A [linked](other.md) heading"), "a-linked-heading");
});

Deno.test("headingAnchors() numbers repeated headings and skips code blocks", () => {
  const page = "# Title\n\n## Usage\n\n```yaml\n# not a heading\n```\n\n## Usage\n\n### Usage\n";
  assert.deepEqual([...headingAnchors(page)], ["title", "usage", "usage-1", "usage-2"]);
});

Deno.test("links() finds inline links and definitions, not code", () => {
  const page = 'See [a](a.md#x) and [`b`](b.md "B").\n\n`[c](c.md)`\n\n```\n[d](d.md)\n```\n\n[e]: e.md\n';
  assert.deepEqual(links(page).map(({ target }) => target), ["a.md#x", "b.md", "e.md"]);
});

Deno.test("README.md and docs/*.md: the index pages exist", () => {
  const pages = documentationPages();
  assert.ok(pages.includes("README.md"));
  assert.ok(pages.includes("docs/README.md") || pages.includes("docs/index.md"), "docs/ has no index page");
  assert.ok(relativeLinks().length > 0, "no relative links found: the link checks would check nothing");
});

Deno.test("README.md and docs/*.md: every relative link leads to an existing file", () => {
  const broken = relativeLinks()
    .filter(({ file }) => !isFile(file))
    .map(({ at, target }) => `${at}: ${target}`);
  assert.deepEqual(broken, []);
});

Deno.test("README.md and docs/*.md: every #anchor matches a heading of the page it points at", () => {
  const anchorsOf = new Map<string, Set<string>>();
  const broken = relativeLinks()
    .filter(({ file, anchor }) => anchor !== undefined && file.pathname.endsWith(".md") && isFile(file))
    .filter(({ file, anchor }) => {
      let anchors = anchorsOf.get(file.href);
      if (!anchors) {
        anchors = headingAnchors(read(file));
        anchorsOf.set(file.href, anchors);
      }
      return !anchors.has(anchor!);
    })
    .map(({ at, target }) => `${at}: ${target}`);
  assert.deepEqual(broken, []);
});

Deno.test(`README.md is at most ${README_MAX_LINES} lines`, () => {
  const lines = lineCount(read(new URL("README.md", root)));
  assert.ok(lines <= README_MAX_LINES, `README.md has ${lines} lines`);
});
