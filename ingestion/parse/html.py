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

Hostile or broken markup is read in time linear in the page's size: the tree is indexed once
without recursion and nothing is removed from it (bs4's ``find``, ``get_text``, ``extract`` and
``decompose`` each walk a subtree or a list of children, so calling them once per element is
quadratic on 100,000 nested or sibling elements). Dropped elements are skipped instead. Tables and
lists nested more than ``_MAX_NESTING`` deep inside one another are read as plain blocks, one per
cell or item, which keeps both the Python stack and the copying of nested text bounded.

trafilatura was tried first; on short help-centre articles it fell back to extractors that
dropped heading levels, which the section paths depend on (see docs/ingestion-parsing.md).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator

from bs4 import BeautifulSoup
from bs4.element import NavigableString, PageElement, Tag

from ingestion.parse.detect import HTML
from ingestion.parse.sections import SectionBuilder, clean_heading
from ingestion.parse.titles import title_from_filename
from ingestion.types import ParsedDocument

_HEADING_LEVELS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}

_NEVER_CONTENT = frozenset(
    {
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
    }
)

_FURNITURE_TAGS = frozenset({"nav", "aside", "footer", "menu"})

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

# Tables and lists nested deeper than this inside one another (counting headings, table cells
# and list items that hold them) are read as plain blocks, one per cell or item. Real pages
# nest a few levels; the cap bounds the Python stack and how often nested text is copied.
_MAX_NESTING = 20

# Table and list elements that become plain blocks beyond _MAX_NESTING.
_FLATTENED_TAGS = frozenset({"table", "caption", "thead", "tbody", "tfoot", "tr", "td", "th", "ul", "ol"})

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
    page = _PageIndex(soup)
    body = page.first("body", within=0) or 0
    measures = page.measure()
    container = _main_container(page, body, measures)
    _drop_furniture(page, container, measures)
    if container != body and not page.measure().text_length[container]:
        # An empty <main> filled in by JavaScript: read the rest of the page.
        container = body
        _drop_furniture(page, container, page.measure())
    first_h1 = page.first("h1", within=container)
    h1_text = "" if first_h1 is None else clean_heading(" ".join(_strings(page.elements[first_h1], page.dropped)))
    walker = _Walker(page.dropped)
    walker.walk(page.elements[container])
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


class _Measures:
    """Per element, by index: its text length as ``get_text(strip=True)`` counts it, and whether an
    ``<h1>`` lies inside it; dropped elements count for nothing."""

    def __init__(self, text_length: list[int], has_h1: list[bool]) -> None:
        self.text_length = text_length
        self.has_h1 = has_h1


class _PageIndex:
    """Every element of the page in document order, indexed in one pass without recursion.

    ``elements[0]`` is the soup itself. The descendants of ``elements[i]`` are
    ``elements[i + 1 : ends[i]]``. Elements that never hold content are left out together with
    everything inside them and recorded in ``dropped`` (by ``id``), where the furniture rules
    add theirs; every reader of the tree skips what ``dropped`` names. Only plain strings count
    as text: comments, CDATA, doctypes and ruby annotations never do.
    """

    def __init__(self, soup: BeautifulSoup) -> None:
        self.elements: list[Tag] = []
        self.parents: list[int] = []
        self.own_text_length: list[int] = []
        self.in_article_or_main: list[bool] = []
        self.dropped: set[int] = set()
        pending: list[tuple[Tag, int]] = [(soup, -1)]
        while pending:
            element, parent = pending.pop()
            index = len(self.elements)
            self.elements.append(element)
            self.parents.append(parent)
            self.in_article_or_main.append(
                parent >= 0 and (self.in_article_or_main[parent] or self.elements[parent].name in ("article", "main"))
            )
            own_text_length = 0
            children: list[Tag] = []
            for child in element.contents:
                if isinstance(child, Tag):
                    if child.name in _NEVER_CONTENT:
                        self.dropped.add(id(child))
                    else:
                        children.append(child)
                elif type(child) is NavigableString:
                    own_text_length += len(child.strip())
            self.own_text_length.append(own_text_length)
            pending.extend((child, index) for child in reversed(children))
        sizes = [1] * len(self.elements)
        for index in range(len(self.elements) - 1, 0, -1):
            sizes[self.parents[index]] += sizes[index]
        self.ends = [index + size for index, size in enumerate(sizes)]

    def descendants(self, index: int) -> Iterator[int]:
        """The indexes of the elements inside ``elements[index]`` that are not dropped, in order."""
        position, stop = index + 1, self.ends[index]
        while position < stop:
            if id(self.elements[position]) in self.dropped:
                position = self.ends[position]
            else:
                yield position
                position += 1

    def first(self, name: str, *, within: int) -> int | None:
        """The index of the first element called ``name`` inside ``elements[within]``, if any."""
        return next((index for index in self.descendants(within) if self.elements[index].name == name), None)

    def measure(self) -> _Measures:
        """Text lengths and h1 flags of every element, as the tree stands after what is dropped."""
        count = len(self.elements)
        alive = [True] * count
        position = 0
        while position < count:
            if id(self.elements[position]) in self.dropped:
                end = self.ends[position]
                alive[position:end] = [False] * (end - position)
                position = end
            else:
                position += 1
        text_length = [length if live else 0 for length, live in zip(self.own_text_length, alive, strict=True)]
        has_h1 = [False] * count
        for index in range(count - 1, 0, -1):
            if alive[index]:
                parent = self.parents[index]
                text_length[parent] += text_length[index]
                if has_h1[index] or self.elements[index].name == "h1":
                    has_h1[parent] = True
        return _Measures(text_length, has_h1)


def _main_container(page: _PageIndex, body: int, measures: _Measures) -> int:
    inside = list(page.descendants(body))
    mains = [index for index in inside if page.elements[index].name == "main"] or [
        index for index in inside if page.elements[index].get("role") == "main"
    ]
    if mains:
        return max(mains, key=measures.text_length.__getitem__)
    articles = [index for index in inside if page.elements[index].name == "article"]
    if len(articles) == 1:
        return articles[0]
    return body


def _drop_furniture(page: _PageIndex, container: int, measures: _Measures) -> None:
    """Add the furniture inside ``elements[container]`` to ``page.dropped``, outermost first.

    ``measures`` describe the tree before this call; an element inside dropped furniture is
    never looked at, as if the furniture had already been removed from the tree.
    """
    total = measures.text_length[container]
    position, stop = container + 1, page.ends[container]
    while position < stop:
        element = page.elements[position]
        if id(element) in page.dropped:
            position = page.ends[position]
        elif _is_furniture(page, position, measures, total):
            page.dropped.add(id(element))
            position = page.ends[position]
        else:
            position += 1


def _is_furniture(page: _PageIndex, index: int, measures: _Measures, container_text_length: int) -> bool:
    element = page.elements[index]
    if element.name in _FURNITURE_TAGS:
        return True
    if element.name == "header" and not page.in_article_or_main[index]:
        return True
    if not element.attrs:
        return False  # the usual case, cheap to rule out
    if str(element.get("role") or "").strip().lower() in _FURNITURE_ROLES:
        return True
    if _is_hidden(element) or not _FURNITURE_WORDS.isdisjoint(_class_and_id_words(element)):
        # Names and styles mislead more often than tags: "layout-with-sidebar" may wrap the
        # whole article, and anti-flicker scripts hide the page until it has loaded.
        share = measures.text_length[index] / max(container_text_length, 1)
        return share <= _MAX_FURNITURE_SHARE and not measures.has_h1[index]
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


def _strings(element: Tag, skip: Collection[int]) -> Iterator[str]:
    """The plain strings inside ``element`` in document order, outside the elements in ``skip``."""
    pending: list[PageElement] = list(reversed(element.contents))
    while pending:
        node = pending.pop()
        if isinstance(node, Tag):
            if id(node) not in skip:
                pending.extend(reversed(node.contents))
        elif type(node) is NavigableString:
            yield str(node)


def _child_tags(element: Tag, names: Collection[str], skip: Collection[int]) -> list[Tag]:
    return [
        child for child in element.contents if isinstance(child, Tag) and child.name in names and id(child) not in skip
    ]


class _Walker:
    """Walks an element tree in document order and feeds a :class:`SectionBuilder`.

    The walk keeps its own stack instead of recursing, so deeply nested markup (unclosed
    ``<font>`` tags in old pages nest hundreds of levels) cannot exhaust Python's stack.
    Elements whose ``id`` is in ``skip`` are passed over with everything inside them.
    With ``headings=False`` headings are read as plain text; that mode renders the inside of list
    items and table cells, where a heading cannot start a section. ``depth`` counts the headings,
    cells and list items around the walk; from ``_MAX_NESTING`` on, tables and lists are flattened.
    """

    def __init__(self, skip: Collection[int], *, headings: bool = True, depth: int = 0) -> None:
        self.builder = SectionBuilder()
        self.blocks: list[str] = []
        self._skip = skip
        self._headings = headings
        self._depth = depth
        self._inline: list[str] = []

    def walk(self, element: Tag, *, leave_out: Collection[Tag] = ()) -> None:
        """Render the children of ``element``, except those in ``leave_out``."""
        left_out = {id(child) for child in leave_out}
        pending: list[PageElement | None] = [child for child in reversed(element.contents) if id(child) not in left_out]
        while pending:
            node = pending.pop()
            if node is None:  # the end of a block element
                self.flush()
            elif isinstance(node, Tag):
                if id(node) not in self._skip:
                    pending.extend(self._element(node))
            elif type(node) is NavigableString:
                self._inline.append(str(node))
        self.flush()

    def flush(self) -> None:
        """End the current paragraph."""
        if not self._inline:
            return
        text = _collapse_whitespace("".join(self._inline))
        self._inline = []
        if text:
            self._add_block(text)

    def _add_block(self, block: str) -> None:
        self.blocks.append(block)
        if self._headings:  # an inline walk only joins its blocks
            self.builder.text(block)

    def _element(self, element: Tag) -> list[PageElement | None]:
        """Render ``element`` or return what is still to walk, last first (``None`` ends a block)."""
        name = element.name
        flat = self._depth >= _MAX_NESTING
        if name in _HEADING_LEVELS and self._headings:
            self.flush()
            self.builder.heading(_HEADING_LEVELS[name], _inline_text(element, self._skip, depth=self._depth))
        elif name == "br":
            self._inline.append(_LINE_BREAK)
        elif name == "pre":
            self.flush()
            self._add_block(_code_block(element, self._skip))
        elif name == "table" and not flat:
            self.flush()
            self._add_block(_table_text(element, self._skip, depth=self._depth))
        elif name in ("ul", "ol") and not flat:
            self.flush()
            self._add_block(_list_text(element, self._skip, depth=self._depth))
        elif name in _BLOCK_TAGS or name in _HEADING_LEVELS or (flat and name in _FLATTENED_TAGS):
            self.flush()
            return [None, *reversed(element.contents)]
        else:
            return list(reversed(element.contents))
        return []


def _collapse_whitespace(text: str) -> str:
    lines = (" ".join(part.split()) for part in text.split(_LINE_BREAK))
    return "\n".join(line for line in lines if line).strip()


def _inline_text(element: Tag, skip: Collection[int], *, depth: int, leave_out: Collection[Tag] = ()) -> str:
    """The text of ``element`` on one line, block children separated by spaces.

    ``depth`` is the depth of the walk that found ``element``; the inside is walked one deeper.
    """
    walker = _Walker(skip, headings=False, depth=depth + 1)
    walker.walk(element, leave_out=leave_out)
    return " ".join(" ".join(block.split()) for block in walker.blocks)


def _code_block(element: Tag, skip: Collection[int]) -> str:
    code = "".join(_strings(element, skip)).strip("\n")
    fence = "~~~" if "```" in code else "```"
    return f"{fence}\n{code}\n{fence}"


def _table_text(table: Tag, skip: Collection[int], *, depth: int) -> str:
    lines = []
    for row in _table_rows(table, skip):
        cells = [_inline_text(cell, skip, depth=depth) for cell in _child_tags(row, ("td", "th"), skip)]
        if any(cells):
            lines.append(" | ".join(cells))
    return "\n".join(lines)


def _table_rows(table: Tag, skip: Collection[int]) -> list[Tag]:
    """The ``<tr>`` elements of ``table`` in document order; a nested table's rows are read as
    part of its cell."""
    rows = []
    pending: list[PageElement] = list(reversed(table.contents))
    while pending:
        node = pending.pop()
        if not isinstance(node, Tag) or id(node) in skip or node.name == "table":
            continue
        if node.name == "tr":
            rows.append(node)
        pending.extend(reversed(node.contents))
    return rows


def _list_text(element: Tag, skip: Collection[int], *, depth: int, indent: int = 0) -> str:
    """The items of the list ``element``, one a line; lists directly inside an item follow it,
    indented, until the items would be walked at ``_MAX_NESTING``, where they join the item's text."""
    ordered = element.name == "ol"
    prefix = "  " * indent
    lines = []
    number = 0
    for item in _child_tags(element, ("li",), skip):
        number += 1
        marker = f"{number}." if ordered else "-"
        nested = _child_tags(item, ("ul", "ol"), skip) if depth + 1 < _MAX_NESTING else []
        text = _inline_text(item, skip, depth=depth, leave_out=nested)
        if text:
            lines.append(f"{prefix}{marker} {text}")
        lines.extend(_list_text(child, skip, depth=depth + 1, indent=indent + 1) for child in nested)
    return "\n".join(line for line in lines if line)
