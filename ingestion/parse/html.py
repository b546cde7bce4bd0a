"""HTML: the page's main content, with its h1-h6 headings as section paths.

How the main content is found, in order:

1. Elements that never hold readable content are dropped everywhere (scripts, styles, forms'
   controls, embedded media).
2. The content container is the largest ``<main>`` (or ``role="main"``), else the only
   ``<article>``, else ``<body>``.
3. Inside it, page furniture is dropped: ``<nav>``, ``<aside>``, ``<footer>``, site ``<header>``
   (a header inside an article is kept: it often holds the article's h1), ARIA landmarks such
   as ``role="navigation"``, hidden elements, and elements whose class or id names furniture
   (cookie banners, breadcrumbs, menus, sidebars, share buttons). An element holding most of
   the container's text is never dropped by its name alone.
4. The rest is walked in order: headings open sections, paragraphs and list items become
   blocks, tables become ``cell | cell`` rows and ``<pre>`` becomes a fenced code block.

trafilatura was tried first; on short help-centre articles it fell back to extractors that
dropped heading levels, which the section paths depend on (see docs/ingestion-parsing.md).
"""

from __future__ import annotations

import re

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, Tag

from ingestion.parse.detect import HTML
from ingestion.parse.sections import SectionBuilder, clean_heading
from ingestion.parse.titles import title_from_filename
from ingestion.types import IngestionError, ParsedDocument

_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

_NEVER_CONTENT = (
    "script",
    "style",
    "noscript",
    "template",
    "svg",
    "math",
    "canvas",
    "iframe",
    "object",
    "embed",
    "video",
    "audio",
    "map",
    "button",
    "input",
    "select",
    "textarea",
    "dialog",
    "head",
)

_FURNITURE_TAGS = ("nav", "aside", "footer", "menu")

_FURNITURE_ROLES = frozenset(
    {
        "navigation",
        "banner",
        "contentinfo",
        "complementary",
        "search",
        "menu",
        "menubar",
        "toolbar",
        "dialog",
        "alertdialog",
    }
)

# Words in a class or id (split at "-", "_" and spaces) that name page furniture.
_FURNITURE_WORDS = frozenset(
    {
        "cookie",
        "cookies",
        "consent",
        "gdpr",
        "breadcrumb",
        "breadcrumbs",
        "navbar",
        "nav",
        "navigation",
        "menu",
        "sidebar",
        "footer",
        "skip",
        "share",
        "sharing",
        "social",
        "newsletter",
        "popup",
        "modal",
        "advert",
        "advertisement",
        "ads",
        "related",
    }
)

# An element with more than this share of the container's text is content, whatever its name.
_MAX_FURNITURE_SHARE = 0.5

_BLOCK_TAGS = frozenset(
    {
        "address",
        "article",
        "blockquote",
        "body",
        "center",
        "dd",
        "details",
        "div",
        "dl",
        "dt",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "header",
        "hgroup",
        "hr",
        "html",
        "li",
        "main",
        "p",
        "section",
        "summary",
    }
)

_CLASS_WORD_SPLIT = re.compile(r"[-_\s]+")
_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.I)
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)

# Stands for <br> while inline whitespace is collapsed; "\n" itself is ordinary whitespace in HTML.
_LINE_BREAK = "\u2028"


def sniff_meta_charset(data: bytes) -> str | None:
    """Return the charset named by a ``<meta>`` tag in the first 4 KB of ``data``, if any."""
    match = _META_CHARSET.search(data[:4096])
    return match.group(1).decode("ascii") if match else None


def parse_html(text: str, *, filename: str) -> ParsedDocument:
    """Extract the main content of the decoded HTML page ``text``.

    The title is the page's ``<title>`` (or ``og:title``), shortened to the content's first h1
    when the title is that h1 plus a site name; else the h1; else the file name.
    """
    soup = BeautifulSoup(text, "lxml")
    page_title = _page_title(soup)
    for element in soup.find_all(_NEVER_CONTENT):
        element.decompose()
    _drop_comments(soup)
    body = soup.body or soup
    container = _main_container(body)
    _drop_furniture(container)
    if container is not body and not container.get_text(strip=True):
        container = body  # An empty <main> filled in by JavaScript: read the rest of the page.
        _drop_furniture(container)
    first_h1 = container.find("h1")
    h1_text = clean_heading(first_h1.get_text(" ")) if isinstance(first_h1, Tag) else ""
    walker = _Walker()
    try:
        walker.walk(container)
    except RecursionError as exc:
        raise IngestionError("The HTML page is nested too deeply to be read.") from exc
    return ParsedDocument(
        title=_choose_title(page_title, h1_text, filename),
        sections=walker.builder.build(),
        mime_type=HTML,
    )


def _page_title(soup: BeautifulSoup) -> str:
    if soup.title is not None:
        title = clean_heading(soup.title.get_text())
        if title:
            return title
    og_title = soup.find("meta", attrs={"property": "og:title"})
    if isinstance(og_title, Tag):
        return clean_heading(str(og_title.get("content") or ""))
    return ""


def _choose_title(page_title: str, h1_text: str, filename: str) -> str:
    if page_title and h1_text and h1_text.lower() in page_title.lower():
        return h1_text  # "Reset your password - Acme Help" -> "Reset your password"
    return page_title or h1_text or title_from_filename(filename)


def _drop_comments(soup: BeautifulSoup) -> None:
    for node in soup.find_all(string=True):
        if isinstance(node, NavigableString) and type(node) is not NavigableString:
            node.extract()  # comments, CDATA, processing instructions, doctype


def _main_container(body: Tag) -> Tag:
    mains = body.find_all("main") or body.find_all(role="main")
    if mains:
        return max(mains, key=_text_length)
    articles = body.find_all("article")
    if len(articles) == 1:
        return articles[0]
    return body


def _drop_furniture(container: Tag) -> None:
    total = _text_length(container)
    for element in list(container.find_all(True)):
        if element.decomposed or element is container:
            continue
        if _is_furniture(element, total):
            element.decompose()


def _is_furniture(element: Tag, container_text_length: int) -> bool:
    if element.name in _FURNITURE_TAGS:
        return True
    if element.name == "header" and element.find_parent(("article", "main")) is None:
        return True
    if str(element.get("role") or "").strip().lower() in _FURNITURE_ROLES:
        return True
    if _is_hidden(element) or not _FURNITURE_WORDS.isdisjoint(_class_and_id_words(element)):
        # Names and styles mislead more often than tags: "layout-with-sidebar" may wrap the
        # whole article, and anti-flicker scripts hide the page until it has loaded.
        share = _text_length(element) / max(container_text_length, 1)
        return share <= _MAX_FURNITURE_SHARE and element.find("h1") is None
    return False


def _is_hidden(element: Tag) -> bool:
    if element.has_attr("hidden"):
        return True
    if str(element.get("aria-hidden") or "").lower() == "true":
        return True
    return bool(_HIDDEN_STYLE.search(str(element.get("style") or "")))


def _class_and_id_words(element: Tag) -> set[str]:
    names = [*element.get_attribute_list("class"), str(element.get("id") or "")]
    words: set[str] = set()
    for name in names:
        words.update(word for word in _CLASS_WORD_SPLIT.split(str(name).lower()) if word)
    return words


def _text_length(element: Tag) -> int:
    return len(element.get_text(strip=True))


class _Walker:
    """Walks an element tree in document order and feeds a :class:`SectionBuilder`.

    The walk keeps its own stack instead of recursing, so deeply nested markup (unclosed
    ``<font>`` tags in old pages nest hundreds of levels) cannot exhaust Python's stack.
    With ``headings=False`` headings are read as plain text; that mode renders the inside of list
    items and table cells, where a heading cannot start a section.
    """

    def __init__(self, *, headings: bool = True) -> None:
        self.builder = SectionBuilder()
        self.blocks: list[str] = []
        self._headings = headings
        self._inline: list[str] = []

    def walk(self, element: Tag) -> None:
        """Render the children of ``element``."""
        pending: list[PageElement | None] = list(reversed(element.contents))
        while pending:
            node = pending.pop()
            if node is None:  # the end of a block element
                self.flush()
            elif isinstance(node, Tag):
                pending.extend(self._element(node))
            elif type(node) is NavigableString:
                self._inline.append(str(node))
        self.flush()

    def flush(self) -> None:
        """End the current paragraph."""
        text = _collapse_whitespace("".join(self._inline))
        self._inline = []
        if text:
            self._add_block(text)

    def _add_block(self, block: str) -> None:
        self.blocks.append(block)
        self.builder.text(block)

    def _element(self, element: Tag) -> list[PageElement | None]:
        """Render ``element`` or return what is still to walk, last first (``None`` ends a block)."""
        name = element.name
        if name in _HEADING_LEVELS and self._headings:
            self.flush()
            self.builder.heading(_HEADING_LEVELS[name], _inline_text(element))
        elif name == "br":
            self._inline.append(_LINE_BREAK)
        elif name == "pre":
            self.flush()
            self._add_block(_code_block(element))
        elif name == "table":
            self.flush()
            self._add_block(_table_text(element))
        elif name in ("ul", "ol"):
            self.flush()
            self._add_block(_list_text(element))
        elif name in _BLOCK_TAGS or name in _HEADING_LEVELS:
            self.flush()
            return [None, *reversed(element.contents)]
        else:
            return list(reversed(element.contents))
        return []


def _collapse_whitespace(text: str) -> str:
    lines = (" ".join(part.split()) for part in text.split(_LINE_BREAK))
    return "\n".join(line for line in lines if line).strip()


def _inline_text(element: Tag) -> str:
    """The text of ``element`` on one line, block children separated by spaces."""
    walker = _Walker(headings=False)
    walker.walk(element)
    return " ".join(" ".join(block.split()) for block in walker.blocks)


def _code_block(element: Tag) -> str:
    code = element.get_text().strip("\n")
    fence = "~~~" if "```" in code else "```"
    return f"{fence}\n{code}\n{fence}"


def _table_text(table: Tag) -> str:
    lines = []
    for row in table.find_all("tr"):
        if row.find_parent("table") is not table:
            continue  # a row of a nested table: read as part of its cell
        cells = [_inline_text(cell) for cell in row.find_all(("td", "th"), recursive=False)]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _list_text(element: Tag, depth: int = 0) -> str:
    ordered = element.name == "ol"
    indent = "  " * depth
    lines = []
    number = 0
    for item in element.find_all("li", recursive=False):
        number += 1
        marker = f"{number}." if ordered else "-"
        nested = [child for child in item.find_all(("ul", "ol"), recursive=False)]
        for child in nested:
            child.extract()
        text = _inline_text(item)
        if text:
            lines.append(f"{indent}{marker} {text}")
        lines.extend(_list_text(child, depth + 1) for child in nested)
    return "\n".join(line for line in lines if line)
