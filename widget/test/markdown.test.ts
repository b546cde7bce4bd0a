import assert from "node:assert/strict";
import { describe, it } from "node:test";

import { inline, parseMarkdown, safeHref, type Block } from "../src/markdown";
import { keepCitationsWithWords, renderMarkdown, resolveCitations, type CitationTarget } from "../src/render";
import { FakeDocument } from "./fake-dom";

const XSS = "<img src=x onerror=alert(1)>";

function html(blocks: Block[], citations: Map<number, CitationTarget> | null = null): string {
  const doc = new FakeDocument();
  return doc.serialize(renderMarkdown(doc.asFactory(), blocks, citations));
}

describe("parseMarkdown: raw HTML is text", () => {
  it("keeps an HTML payload as literal characters", () => {
    assert.deepEqual(parseMarkdown(XSS), [{ t: "p", children: [{ t: "text", text: XSS }] }]);
    assert.equal(html(parseMarkdown(XSS)), "<p>&lt;img src=x onerror=alert(1)&gt;</p>");
  });

  it("never creates a link to anything but http(s)", () => {
    for (const address of ["javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:text/html,x", "vbscript:x", "/relative", "mailto:a@b.c"]) {
      const out = html(parseMarkdown(`[click](${address})`));
      assert.equal(out, "<p>click</p>", address);
    }
    assert.equal(
      html(parseMarkdown("[docs](https://example.com/a?b=1)")),
      '<p><a href="https://example.com/a?b=1" target="_blank" rel="noopener noreferrer">docs</a></p>',
    );
  });

  it("links bare https addresses without trailing punctuation", () => {
    const out = html(parseMarkdown("See https://example.com/help. Or (https://example.com/x_(y))!"));
    assert.equal(
      out,
      '<p>See <a href="https://example.com/help" target="_blank" rel="noopener noreferrer">https://example.com/help</a>. ' +
        'Or (<a href="https://example.com/x_(y)" target="_blank" rel="noopener noreferrer">https://example.com/x_(y)</a>)!</p>',
    );
  });

  it("only ever emits allow-listed tags and attributes", () => {
    const doc = new FakeDocument();
    const nasty = [
      XSS,
      "<script>alert(1)</script>",
      '[x](https://a.example/" onmouseover="alert(1))',
      "**<b onclick=alert(1)>bold</b>**",
      "```html\n<iframe src=javascript:alert(1)>\n```",
      "> <svg onload=alert(1)>",
      "- [a](javascript:void(0)) `<style>`",
    ].join("\n\n");
    renderMarkdown(doc.asFactory(), parseMarkdown(nasty), null);
    const allowedTags = new Set(["p", "a", "strong", "em", "code", "pre", "ul", "ol", "li", "blockquote", "br", "hr", "sup", "span"]);
    const allowedAttrs = new Set(["href", "target", "rel", "class", "start", "aria-label"]);
    for (const el of doc.created) {
      assert.ok(allowedTags.has(el.tag), el.tag);
      for (const [name, value] of el.attrs) {
        assert.ok(allowedAttrs.has(name), name);
        if (name === "href") assert.match(value, /^https?:\/\//);
      }
    }
  });
});

describe("parseMarkdown: formatting", () => {
  it("reads bold, italic, code and leaves snake_case alone", () => {
    assert.equal(
      html(parseMarkdown("**Hold** the *Reset* button, run `reset_all` on my_router_name and ***both***")),
      "<p><strong>Hold</strong> the <em>Reset</em> button, run <code>reset_all</code> on my_router_name and <strong><em>both</em></strong></p>",
    );
    assert.equal(html(parseMarkdown("2 * 3 * 4 and a * b")), "<p>2 * 3 * 4 and a * b</p>");
    assert.equal(html(parseMarkdown("\\*not em\\*")), "<p>*not em*</p>");
  });

  it("reads lists (numbered from their start, nested) and line breaks", () => {
    const out = html(parseMarkdown("Steps:\n3. Unplug it\n4. Wait\n   - ten seconds\n   - no more\n\nDone.\nReally."));
    assert.equal(
      out,
      '<p>Steps:</p><ol start="3"><li><p>Unplug it</p></li><li><p>Wait</p><ul><li><p>ten seconds</p></li><li><p>no more</p></li></ul></li></ol><p>Done.<br>Really.</p>',
    );
  });

  it("reads fenced code verbatim, headings as bold lines, quotes and rules", () => {
    const out = html(parseMarkdown("## Before you start\n```\n**not bold** <b>\n```\n> quoted\n\n---"));
    assert.equal(
      out,
      '<p class="rv-md-heading"><strong>Before you start</strong></p><pre><code>**not bold** &lt;b&gt;</code></pre><blockquote><p>quoted</p></blockquote><hr>',
    );
  });

  it("survives deeply nested input", () => {
    const deep = "> ".repeat(200) + "x" + " *".repeat(500);
    assert.ok(parseMarkdown(deep).length > 0);
    assert.ok(inline("[".repeat(5000) + "*a*", 0).length > 0);
  });
});

describe("citations", () => {
  const targets = new Map<number, CitationTarget>([
    [1, { n: 1, href: "https://help.example/reset", label: "Source 1: Resetting" }],
    [2, { n: 2, href: null, label: "Source 2: Manual" }],
  ]);

  it("reads [n] markers, but not a link's [label](…)", () => {
    assert.deepEqual(inline("Hold it [1][2] and see [docs](https://a.example) [12]", 0), [
      { t: "text", text: "Hold it " },
      { t: "cite", n: 1 },
      { t: "cite", n: 2 },
      { t: "text", text: " and see " },
      { t: "link", href: "https://a.example/", children: [{ t: "text", text: "docs" }] },
      { t: "text", text: " " },
      { t: "cite", n: 12 },
    ]);
  });

  it("links known markers, drops dropped ones with their space, and keeps them with the word before", () => {
    const blocks = resolveCitations(parseMarkdown("Hold the button [1] [4]. It is in the manual [2]."), new Set([1, 2]));
    assert.equal(
      html(blocks, targets),
      "<p>Hold the " +
        '<span class="rv-nowrap">button<sup class="rv-cite"><a href="https://help.example/reset" target="_blank" rel="noopener noreferrer" aria-label="Source 1: Resetting">1</a></sup>.</span>' +
        ' It is in the <span class="rv-nowrap">manual<sup class="rv-cite"><span aria-label="Source 2: Manual">2</span></sup>.</span></p>',
    );
  });

  it("shows markers unlinked while the answer streams", () => {
    assert.equal(
      html(resolveCitations(parseMarkdown("Hold it [1]"), null), null),
      '<p>Hold <span class="rv-nowrap">it<sup class="rv-cite"><span class="rv-cite-pending">1</span></sup></span></p>',
    );
  });

  it("groups a word, a run of markers and the punctuation after them", () => {
    const grouped = keepCitationsWithWords(inline("back panel [1] [2]; then", 0));
    assert.deepEqual(grouped, [
      { t: "text", text: "back " },
      {
        t: "nowrap",
        children: [
          { t: "text", text: "panel" },
          { t: "cite", n: 1 },
          { t: "cite", n: 2 },
          { t: "text", text: ";" },
        ],
      },
      { t: "text", text: " then" },
    ]);
  });
});

describe("safeHref", () => {
  it("accepts http(s) only, resolving relative addresses against a base when given", () => {
    assert.equal(safeHref("https://a.example/x"), "https://a.example/x");
    assert.equal(safeHref("/docs/reset"), null);
    assert.equal(safeHref("/docs/reset", "https://support.example"), "https://support.example/docs/reset");
    assert.equal(safeHref("javascript:alert(1)", "https://support.example"), null);
    assert.equal(safeHref("  "), null);
  });
});
