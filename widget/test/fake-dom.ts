/** Just enough of `document` to render Markdown in Node and read back what was built. */

import type { NodeFactory } from "../src/render";

const VOID = new Set(["br", "hr"]);
const escape = (s: string): string => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");

export class FakeNode {
  readonly children: FakeNode[] = [];
  readonly attrs = new Map<string, string>();
  constructor(
    readonly tag: string,
    readonly text = "",
  ) {}

  appendChild(child: FakeNode): FakeNode {
    this.children.push(child);
    return child;
  }

  setAttribute(name: string, value: string): void {
    this.attrs.set(name, String(value));
  }

  set innerHTML(_value: string) {
    throw new Error("innerHTML must never be used");
  }
}

export class FakeDocument {
  readonly created: FakeNode[] = [];

  createElement(tag: string): FakeNode {
    const node = new FakeNode(tag);
    this.created.push(node);
    return node;
  }

  createTextNode(text: string): FakeNode {
    return new FakeNode("#text", text);
  }

  createDocumentFragment(): FakeNode {
    return new FakeNode("#fragment");
  }

  asFactory(): NodeFactory {
    return this as unknown as NodeFactory;
  }

  serialize(node: unknown): string {
    const n = node as FakeNode;
    if (n.tag === "#text") return escape(n.text);
    const inner = n.children.map((c) => this.serialize(c)).join("");
    if (n.tag === "#fragment") return inner;
    const attrs = [...n.attrs].map(([k, v]) => ` ${k}="${escape(v)}"`).join("");
    return VOID.has(n.tag) ? `<${n.tag}${attrs}>` : `<${n.tag}${attrs}>${inner}</${n.tag}>`;
  }
}
