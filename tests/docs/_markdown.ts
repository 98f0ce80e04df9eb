/** Reads the parts of a Markdown page the documentation tests check: headings, links and inline code. */

/** A line of prose, outside fenced code blocks, with its 1-based line number. */
interface ProseLine {
  text: string;
  line: number;
}

/** The lines of a page that are not inside fenced code blocks (``` or ~~~, indented or not). */
function proseLines(markdown: string): ProseLine[] {
  const lines: ProseLine[] = [];
  let fence: string | undefined;
  markdown.split("\n").forEach((text, index) => {
    const opening = /^\s*(`{3,}|~{3,})/.exec(text);
    if (fence === undefined && opening) {
      fence = opening[1];
    } else if (fence !== undefined) {
      const closing = /^\s*(`{3,}|~{3,})\s*$/.exec(text);
      if (closing && closing[1]![0] === fence[0] && closing[1]!.length >= fence.length) fence = undefined;
    } else {
      lines.push({ text, line: index + 1 });
    }
  });
  return lines;
}

/** The inline code spans of a line, in order (`` `a` `` and ``` `` b `` ```). */
function codeSpans(text: string): string[] {
  return [...text.matchAll(/(`+)(.+?)\1/g)].map((match) => match[2]!.trim());
}

/** A line with its code spans replaced by a placeholder, so that their content is not read as links. */
function withoutCode(text: string): string {
  return text.replace(/(`+)(.+?)\1/g, "code");
}

/**
 * GitHub's anchor for a heading text: lowercase, punctuation dropped except `-` and `_`, each space turned
 * into `-`. Links and inline code count by their text.
 */
export function githubSlug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, "$1")
    .replace(/<[^>]+>/g, "")
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, "").replace(/ /g, "-");
}

/** The anchors of every heading of a page, a repeated one numbered as GitHub does (`x`, `x-1`, `x-2`). */
export function headingAnchors(markdown: string): Set<string> {
  const anchors = new Set<string>();
  for (const { text } of proseLines(markdown)) {
    const heading = /^ {0,3}#{1,6}\s+(.*?)(?:\s+#+)?\s*$/.exec(text);
    if (!heading) continue;
    const base = githubSlug(heading[1]!);
    let anchor = base;
    for (let count = 1; anchors.has(anchor); count++) anchor = `${base}-${count}`;
    anchors.add(anchor);
  }
  return anchors;
}

/** A link's target as written, and the line it is on. */
export interface Link {
  target: string;
  line: number;
}

/** Every link and image of a page: inline ones (`[text](target "title")`) and reference definitions. */
export function links(markdown: string): Link[] {
  const found: Link[] = [];
  for (const { text, line } of proseLines(markdown)) {
    const prose = withoutCode(text);
    for (const match of prose.matchAll(/\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)/g)) {
      found.push({ target: match[1]!, line });
    }
    const definition = /^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+"[^"]*")?\s*$/.exec(prose);
    if (definition) found.push({ target: definition[1]!, line });
  }
  return found;
}

/** Every inline code span of a page, outside fenced code blocks. */
export function inlineCode(markdown: string): string[] {
  return proseLines(markdown).flatMap(({ text }) => codeSpans(text));
}

/** The number of lines of a text, not counting the empty string after a final newline. */
export function lineCount(text: string): number {
  const lines = text.split("\n");
  return text.endsWith("\n") ? lines.length - 1 : lines.length;
}
