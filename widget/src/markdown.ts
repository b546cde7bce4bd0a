/**
 * A small Markdown reader for the assistant's and agents' messages, producing a tree of plain
 * data that `render.ts` turns into DOM nodes one element at a time.
 *
 * Safety comes from the design, not from sanitising: nothing here ever becomes HTML. Raw HTML in
 * a message is just text (`<img src=x onerror=alert(1)>` shows as those characters), a link
 * exists only when its address parses as http(s), and the renderer sets `textContent` and a
 * fixed set of tags and attributes. What is understood: paragraphs with line breaks, headings
 * (shown as bold lines), bullet and numbered lists (nested), block quotes, fenced code, `inline
 * code`, **bold**, *italic*, [links](https://…), bare https:// addresses, `---` rules, and the
 * answer's citation markers `[n]`.
 */

export type Inline =
  | { t: "text"; text: string }
  | { t: "strong"; children: Inline[] }
  | { t: "em"; children: Inline[] }
  | { t: "code"; text: string }
  | { t: "link"; href: string; children: Inline[] }
  | { t: "cite"; n: number }
  | { t: "br" };

export type Block =
  | { t: "p"; children: Inline[] }
  | { t: "heading"; children: Inline[] }
  | { t: "list"; ordered: boolean; start: number; items: Block[][] }
  | { t: "quote"; children: Block[] }
  | { t: "pre"; text: string }
  | { t: "hr" };

const MAX_DEPTH = 6;
const FENCE = /^ {0,3}(`{3,}|~{3,})/;
const HEADING = /^ {0,3}(#{1,6})[ \t]+(.*?)[ \t#]*$/;
const QUOTE = /^ {0,3}> ?/;
const LIST_ITEM = /^( {0,3})([-*+]|\d{1,9}[.)])([ \t]+|$)(.*)$/;
const RULE = /^ {0,3}([-*_])([ \t]*\1){2,}[ \t]*$/;
const CITATION = /^\[(\d{1,2})\](?!\()/;
const BARE_URL = /^https?:\/\/[^\s<>"]+/;
const WORD = /[\p{L}\p{N}]/u;
const ESCAPABLE = "\\`*_{}[]()#+-.!>~|<\"'";

/** Parse a message into blocks. */
export function parseMarkdown(text: string): Block[] {
  const lines = text.replace(/\r\n?/g, "\n").replace(/\t/g, "    ").split("\n");
  return blocks(lines, 0);
}

function isBlank(line: string): boolean {
  return line.trim() === "";
}

function indentOf(line: string): number {
  return line.length - line.replace(/^ +/, "").length;
}

function startsBlock(line: string): boolean {
  return FENCE.test(line) || HEADING.test(line) || QUOTE.test(line) || RULE.test(line) || startsListItem(line);
}

function startsListItem(line: string): boolean {
  const m = LIST_ITEM.exec(line);
  return m !== null && m[4].trim() !== "";
}

function blocks(lines: string[], depth: number): Block[] {
  if (depth > MAX_DEPTH) {
    const text = lines.join("\n").trim();
    return text ? [{ t: "p", children: inline(text, 0) }] : [];
  }
  const out: Block[] = [];
  let i = 0;
  while (i < lines.length) {
    const line = lines[i];
    if (isBlank(line)) {
      i++;
      continue;
    }
    const fence = FENCE.exec(line);
    if (fence) {
      const marker = fence[1];
      const body: string[] = [];
      i++;
      while (i < lines.length && !lines[i].trimStart().startsWith(marker)) body.push(lines[i++]);
      i++; // the closing fence (or the end of the message)
      out.push({ t: "pre", text: body.join("\n") });
      continue;
    }
    const heading = HEADING.exec(line);
    if (heading) {
      out.push({ t: "heading", children: inline(heading[2], 0) });
      i++;
      continue;
    }
    if (RULE.test(line)) {
      out.push({ t: "hr" });
      i++;
      continue;
    }
    if (QUOTE.test(line)) {
      const body: string[] = [];
      while (i < lines.length && !isBlank(lines[i]) && (QUOTE.test(lines[i]) || !startsBlock(lines[i]))) {
        body.push(lines[i].replace(QUOTE, ""));
        i++;
      }
      out.push({ t: "quote", children: blocks(body, depth + 1) });
      continue;
    }
    if (startsListItem(line)) {
      i = list(lines, i, depth, out);
      continue;
    }
    const para: string[] = [];
    while (i < lines.length && !isBlank(lines[i]) && (para.length === 0 || !startsBlock(lines[i]))) {
      para.push(lines[i].trim());
      i++;
    }
    out.push({ t: "p", children: inline(para.join("\n"), 0) });
  }
  return out;
}

/** One list starting at `lines[start]`; appends it to `out` and returns the index after it. */
function list(lines: string[], start: number, depth: number, out: Block[]): number {
  const first = LIST_ITEM.exec(lines[start]) as RegExpExecArray;
  const ordered = /\d/.test(first[2]);
  const baseIndent = first[1].length;
  const items: string[][] = [];
  let contentIndent = 0;
  let i = start;
  while (i < lines.length) {
    const line = lines[i];
    const m = LIST_ITEM.exec(line);
    if (m && m[1].length <= baseIndent + 1 && /\d/.test(m[2]) === ordered && m[4].trim() !== "") {
      items.push([m[4]]);
      contentIndent = m[1].length + m[2].length + Math.max(1, Math.min(m[3].length, 4));
      i++;
      continue;
    }
    if (isBlank(line)) {
      // A blank line ends the list unless what follows still belongs to it.
      let j = i + 1;
      while (j < lines.length && isBlank(lines[j])) j++;
      if (j >= lines.length) break;
      const next = LIST_ITEM.exec(lines[j]);
      const sameList = next !== null && next[1].length <= baseIndent + 1 && /\d/.test(next[2]) === ordered;
      if (!sameList && indentOf(lines[j]) < contentIndent) break;
      items[items.length - 1].push("");
      i++;
      continue;
    }
    const indent = indentOf(line);
    if (indent > baseIndent) {
      items[items.length - 1].push(line.slice(Math.min(indent, contentIndent)));
      i++;
      continue;
    }
    if (!startsBlock(line) && !isBlank(lines[i - 1])) {
      items[items.length - 1].push(line.trim()); // a lazy continuation line
      i++;
      continue;
    }
    break;
  }
  const startNumber = ordered ? Math.min(parseInt(first[2], 10), 1e9) : 1;
  out.push({ t: "list", ordered, start: startNumber, items: items.map((item) => blocks(item, depth + 1)) });
  return i;
}

/** Parse inline Markdown. Exported for tests; `parseMarkdown` is the entry point. */
export function inline(text: string, depth: number, inLink = false): Inline[] {
  const out: Inline[] = [];
  let buffer = "";
  const flush = (): void => {
    if (buffer) {
      const last = out[out.length - 1];
      if (last && last.t === "text") last.text += buffer;
      else out.push({ t: "text", text: buffer });
      buffer = "";
    }
  };
  const push = (node: Inline): void => {
    flush();
    if (node.t === "text") buffer = node.text;
    else out.push(node);
  };
  if (depth > MAX_DEPTH) return [{ t: "text", text }];

  let i = 0;
  while (i < text.length) {
    const c = text[i];
    const rest = text.slice(i);

    if (c === "\\" && i + 1 < text.length && ESCAPABLE.includes(text[i + 1])) {
      buffer += text[i + 1];
      i += 2;
      continue;
    }
    if (c === "\n") {
      push({ t: "br" });
      i++;
      continue;
    }
    if (c === "`") {
      const run = /^`+/.exec(rest)![0];
      const close = text.indexOf(run, i + run.length);
      if (close !== -1) {
        let code = text.slice(i + run.length, close).replace(/\n/g, " ");
        if (code.length > 2 && code.startsWith(" ") && code.endsWith(" ")) code = code.slice(1, -1);
        push({ t: "code", text: code });
        i = close + run.length;
      } else {
        buffer += run;
        i += run.length;
      }
      continue;
    }
    if (c === "[") {
      const cite = CITATION.exec(rest);
      if (cite) {
        push({ t: "cite", n: Number(cite[1]) });
        i += cite[0].length;
        continue;
      }
      const link = inLink ? null : linkAt(text, i);
      if (link) {
        const children = inline(link.label, depth + 1, true);
        if (link.href) push({ t: "link", href: link.href, children });
        else for (const child of children) push(child); // not a safe address: keep the words only
        i = link.end;
        continue;
      }
    }
    if (c === "*" || c === "_") {
      const emphasis = emphasisAt(text, i, depth);
      if (emphasis) {
        push(emphasis.node);
        i = emphasis.end;
        continue;
      }
      const run = c === "*" ? /^\*+/.exec(rest)![0] : /^_+/.exec(rest)![0];
      buffer += run;
      i += run.length;
      continue;
    }
    if (!inLink && (c === "h" || c === "H") && (i === 0 || /[\s(]/.test(text[i - 1]))) {
      const url = BARE_URL.exec(rest);
      if (url) {
        const raw = trimUrl(url[0]);
        const href = safeHref(raw);
        if (href) {
          push({ t: "link", href, children: [{ t: "text", text: raw }] });
          i += raw.length;
          continue;
        }
      }
    }
    buffer += c;
    i++;
  }
  flush();
  return out;
}

/** `[label](address "title")` at `text[i]`; `href` is null when the address is not http(s). */
function linkAt(text: string, i: number): { label: string; href: string | null; end: number } | null {
  let depth = 0;
  let j = i;
  for (; j < text.length; j++) {
    const ch = text[j];
    if (ch === "\\") {
      j++;
      continue;
    }
    if (ch === "[") depth++;
    else if (ch === "]" && --depth === 0) break;
    else if (ch === "\n" && text[j + 1] === "\n") return null;
  }
  if (j >= text.length || text[j + 1] !== "(") return null;
  const target = /^\(\s*<?([^\s<>()]*(?:\([^\s<>()]*\)[^\s<>()]*)*)>?(?:\s+(?:"[^"]*"|'[^']*'))?\s*\)/.exec(
    text.slice(j + 1),
  );
  if (!target) return null;
  return { label: text.slice(i + 1, j), href: safeHref(target[1]), end: j + 1 + target[0].length };
}

/** `*em*`, `**strong**`, `***both***` (or with `_`) opening at `text[i]`, up to its closing run. */
function emphasisAt(text: string, i: number, depth: number): { node: Inline; end: number } | null {
  const c = text[i];
  const size = runAt(text, i);
  if (size > 3) return null;
  const open = i + size;
  if (open >= text.length || /\s/.test(text[open])) return null; // must open onto a word
  if (c === "_" && i > 0 && WORD.test(text[i - 1])) return null; // snake_case_names
  let from = open;
  for (;;) {
    const close = text.indexOf(c, from);
    if (close === -1) return null;
    const run = runAt(text, close);
    if (
      run === size &&
      close > open &&
      !/\s/.test(text[close - 1]) &&
      !(c === "_" && close + run < text.length && WORD.test(text[close + run]))
    ) {
      const children = inline(text.slice(open, close), depth + 1);
      const node: Inline =
        size === 1
          ? { t: "em", children }
          : size === 2
            ? { t: "strong", children }
            : { t: "strong", children: [{ t: "em", children }] };
      return { node, end: close + size };
    }
    from = close + run;
  }
}

function runAt(text: string, i: number): number {
  let j = i;
  while (j < text.length && text[j] === text[i]) j++;
  return j - i;
}

/** Bare addresses end before trailing punctuation, and before a ")" that was not opened inside. */
function trimUrl(url: string): string {
  let out = url.replace(/[.,;:!?'"*_]+$/, "");
  while (out.endsWith(")") && (out.match(/\)/g) || []).length > (out.match(/\(/g) || []).length) {
    out = out.slice(0, -1).replace(/[.,;:!?'"*_]+$/, "");
  }
  return out;
}

/**
 * The address as an absolute http(s) URL, or null. Relative addresses resolve against `base`
 * when one is given (citation links to the platform's own pages); in message text there is no
 * base, so only absolute http(s) links survive (never javascript:, data:, mailto: …).
 */
export function safeHref(raw: string, base?: string): string | null {
  const value = raw.trim();
  if (!value) return null;
  let url: URL;
  try {
    url = base ? new URL(value, base) : new URL(value);
  } catch {
    return null;
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") return null;
  return url.href;
}

/** The plain text of some inline nodes (citation markers left out): for labels and tests. */
export function plainText(nodes: Inline[]): string {
  return nodes
    .map((node) => {
      switch (node.t) {
        case "text":
        case "code":
          return node.text;
        case "br":
          return "\n";
        case "cite":
          return "";
        default:
          return plainText(node.children);
      }
    })
    .join("");
}
