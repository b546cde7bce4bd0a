/**
 * Markdown trees (`markdown.ts`) to DOM nodes. Only `createElement` with the tag names below,
 * `createTextNode` and `setAttribute` for `href`, `target`, `rel`, `start`, `class` and
 * `aria-label` are used: no HTML string is ever parsed, so a message cannot inject markup.
 */

import type { Block, Inline } from "./markdown";

/** What a citation marker `[n]` points at, once the answer's citations are known. */
export interface CitationTarget {
  n: number;
  /** An absolute http(s) address, or null when the source has no page to open. */
  href: string | null;
  /** For the link's accessible name, e.g. "Source 2: Resetting the router". */
  label: string;
}

/** The subset of `Document` used here (tests pass a small fake). */
export type NodeFactory = Pick<Document, "createElement" | "createTextNode" | "createDocumentFragment">;

/**
 * Drop citation markers the answer's citations do not contain (verification removed them), and
 * the space left before them ("works [3]." → "works."). With `known` null (the answer is still
 * streaming) every marker stays, to be shown unlinked until the citations arrive.
 */
export function resolveCitations(blocks: Block[], known: ReadonlySet<number> | null): Block[] {
  if (known === null) return blocks;
  const inlines = (nodes: Inline[]): Inline[] => {
    const out: Inline[] = [];
    for (let i = 0; i < nodes.length; i++) {
      const node = nodes[i];
      if (node.t === "cite" && !known.has(node.n)) {
        const prev = out[out.length - 1];
        const next = nodes[i + 1];
        const nextText = next === undefined ? "" : next.t === "text" ? next.text : next.t === "br" ? "\n" : "x";
        if (prev && prev.t === "text" && /[ \t]$/.test(prev.text) && /^([\s.,;:!?)]|$)/.test(nextText)) {
          out[out.length - 1] = { t: "text", text: prev.text.replace(/[ \t]+$/, "") };
        }
        continue;
      }
      if (node.t === "strong" || node.t === "em" || node.t === "link") {
        out.push({ ...node, children: inlines(node.children) });
      } else {
        out.push(node);
      }
    }
    // Join the text left on both sides of a dropped marker.
    const merged: Inline[] = [];
    for (const node of out) {
      const last = merged[merged.length - 1];
      if (node.t === "text" && node.text === "") continue;
      if (node.t === "text" && last?.t === "text") merged[merged.length - 1] = { t: "text", text: last.text + node.text };
      else merged.push(node);
    }
    return merged;
  };
  const walk = (list: Block[]): Block[] =>
    list.map((block): Block => {
      switch (block.t) {
        case "p":
        case "heading":
          return { ...block, children: inlines(block.children) };
        case "list":
          return { ...block, items: block.items.map(walk) };
        case "quote":
          return { ...block, children: walk(block.children) };
        default:
          return block;
      }
    });
  return walk(blocks);
}

type Rendered = Inline | { t: "nowrap"; children: Inline[] };

/**
 * Citation markers never start a line on their own: the word before a marker (or a run of
 * markers), the markers and the punctuation right after them are grouped so the line breaks
 * around the group ("back panel [1]." never leaves "[1]." alone on the next line). The space
 * before a marker goes; the marker's own margin stands in for it.
 */
export function keepCitationsWithWords(input: Inline[]): Rendered[] {
  const nodes = input.slice();
  const out: Rendered[] = [];
  let i = 0;
  while (i < nodes.length) {
    const node = nodes[i];
    if (node.t !== "text" || nodes[i + 1]?.t !== "cite") {
      out.push(node);
      i++;
      continue;
    }
    const [, head, word] = /^([\s\S]*?)(\S*)\s*$/.exec(node.text) as RegExpExecArray;
    if (head) out.push({ t: "text", text: head });
    const group: Inline[] = word ? [{ t: "text", text: word }] : [];
    i++;
    while (i < nodes.length) {
      const n = nodes[i];
      if (n.t === "cite") {
        group.push(n);
        i++;
      } else if (n.t === "text" && /^[ \t]+$/.test(n.text) && nodes[i + 1]?.t === "cite") {
        i++; // the space between two markers
      } else {
        break;
      }
    }
    const after = nodes[i];
    const punct = after?.t === "text" ? /^[.,;:!?)\]]+/.exec(after.text) : null;
    if (after?.t === "text" && punct) {
      group.push({ t: "text", text: punct[0] });
      const rest = after.text.slice(punct[0].length);
      if (rest) nodes[i] = { t: "text", text: rest };
      else i++;
    }
    out.push({ t: "nowrap", children: group });
  }
  return out;
}

/** Build the DOM for `blocks`. `citations` null: markers are shown as plain numbers. */
export function renderMarkdown(
  doc: NodeFactory,
  blocks: Block[],
  citations: ReadonlyMap<number, CitationTarget> | null,
): DocumentFragment {
  const el = (tag: string, className?: string): HTMLElement => {
    const node = doc.createElement(tag);
    if (className) node.setAttribute("class", className);
    return node;
  };

  const inlines = (parent: Node, list: Inline[], group = true): void => {
    const nodes: Rendered[] = group ? keepCitationsWithWords(list) : list;
    for (const node of nodes) {
      switch (node.t) {
        case "nowrap": {
          const span = el("span", "rv-nowrap");
          inlines(span, node.children, false);
          parent.appendChild(span);
          break;
        }
        case "text":
          parent.appendChild(doc.createTextNode(node.text));
          break;
        case "br":
          parent.appendChild(el("br"));
          break;
        case "code": {
          const code = el("code");
          code.appendChild(doc.createTextNode(node.text));
          parent.appendChild(code);
          break;
        }
        case "strong":
        case "em": {
          const wrap = el(node.t);
          inlines(wrap, node.children);
          parent.appendChild(wrap);
          break;
        }
        case "link": {
          const a = el("a");
          a.setAttribute("href", node.href);
          a.setAttribute("target", "_blank");
          a.setAttribute("rel", "noopener noreferrer");
          inlines(a, node.children);
          parent.appendChild(a);
          break;
        }
        case "cite":
          parent.appendChild(citation(node.n));
          break;
      }
    }
  };

  const citation = (n: number): HTMLElement => {
    const sup = el("sup", "rv-cite");
    const target = citations?.get(n);
    if (target?.href) {
      const a = el("a");
      a.setAttribute("href", target.href);
      a.setAttribute("target", "_blank");
      a.setAttribute("rel", "noopener noreferrer");
      a.setAttribute("aria-label", target.label);
      a.appendChild(doc.createTextNode(String(n)));
      sup.appendChild(a);
    } else {
      const span = el("span", citations === null ? "rv-cite-pending" : undefined);
      if (target) span.setAttribute("aria-label", target.label);
      span.appendChild(doc.createTextNode(String(n)));
      sup.appendChild(span);
    }
    return sup;
  };

  const blocksInto = (parent: Node, list: Block[]): void => {
    for (const block of list) {
      switch (block.t) {
        case "p": {
          const p = el("p");
          inlines(p, block.children);
          parent.appendChild(p);
          break;
        }
        case "heading": {
          const p = el("p", "rv-md-heading");
          const strong = el("strong");
          inlines(strong, block.children);
          p.appendChild(strong);
          parent.appendChild(p);
          break;
        }
        case "list": {
          const list = el(block.ordered ? "ol" : "ul");
          if (block.ordered && block.start !== 1) list.setAttribute("start", String(block.start));
          for (const item of block.items) {
            const li = el("li");
            blocksInto(li, item);
            list.appendChild(li);
          }
          parent.appendChild(list);
          break;
        }
        case "quote": {
          const quote = el("blockquote");
          blocksInto(quote, block.children);
          parent.appendChild(quote);
          break;
        }
        case "pre": {
          const pre = el("pre");
          const code = el("code");
          code.appendChild(doc.createTextNode(block.text));
          pre.appendChild(code);
          parent.appendChild(pre);
          break;
        }
        case "hr":
          parent.appendChild(el("hr"));
          break;
      }
    }
  };

  const fragment = doc.createDocumentFragment();
  blocksInto(fragment, blocks);
  return fragment;
}
