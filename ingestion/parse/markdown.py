"""Markdown: front matter becomes metadata, headings become section paths.

Headings are found with markdown-it-py, a CommonMark parser, so ATX (``## Setup``) and setext
(``Setup`` underlined with ``===`` or ``---``) headings count, while a ``# line`` inside a fenced
or indented code block, an HTML block or a blockquote does not. The text of each section is
the original Markdown between two headings, so lists, tables and code keep their markup.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tomllib
from typing import Any

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token

from ingestion.parse.detect import MARKDOWN
from ingestion.parse.sections import SectionBuilder, clean_heading
from ingestion.parse.titles import title_from_filename
from ingestion.types import ParsedDocument

# Closing fence for YAML/JSON (``---`` or ``...``) and TOML (``+++``) front matter.
_FENCES = {"---": ("---", "..."), "+++": ("+++",)}

# A front-matter block longer than this is more likely a document that starts with a rule.
_MAX_FRONT_MATTER_LINES = 200

_FIRST_LINE = re.compile(r"\A(?:\ufeff)?(---|\+\+\+)[ \t]*\n")


def parse_markdown(text: str, *, filename: str) -> ParsedDocument:
    """Parse decoded Markdown ``text``.

    The title is the front matter's ``title``, else the first level-1 heading, else the first
    heading of any level, else the file name.
    """
    metadata, body = split_front_matter(text)
    lines = body.split("\n")
    headings = _headings(body)
    builder = SectionBuilder()
    cursor = 0
    for heading in headings:
        builder.text("\n".join(lines[cursor : heading.first_line]))
        builder.heading(heading.level, heading.title)
        cursor = heading.end_line
    builder.text("\n".join(lines[cursor:]))
    return ParsedDocument(
        title=_title(metadata, headings, filename),
        sections=builder.build(),
        mime_type=MARKDOWN,
        metadata=metadata,
    )


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """Return ``(metadata, body)``; metadata is empty when ``text`` has no front matter.

    Front matter is a block at the very top between ``---`` lines holding YAML or a JSON object
    (often on one line), or between ``+++`` lines holding TOML. A block that does not parse to a
    mapping is not front matter (a Markdown file may well start with a ``---`` rule), so the text
    is returned unchanged. Values are made JSON-safe (dates become ISO strings).
    """
    match = _FIRST_LINE.match(text)
    if match is None:
        return {}, text
    opener = match.group(1)
    rest = text[match.end() :].split("\n")
    for index, line in enumerate(rest[: _MAX_FRONT_MATTER_LINES + 1]):
        if line.rstrip() in _FENCES[opener]:
            block = "\n".join(rest[:index])
            metadata = _load_front_matter(block, toml=opener == "+++")
            if metadata is None:
                return {}, text
            return metadata, "\n".join(rest[index + 1 :])
    return {}, text


def _load_front_matter(block: str, *, toml: bool) -> dict[str, Any] | None:
    loaded: object = None
    try:
        if toml:
            loaded = tomllib.loads(block)
        elif block.strip().startswith("{"):
            loaded = json.loads(block)
        else:
            loaded = yaml.safe_load(block)
    except (ValueError, yaml.YAMLError):
        # json.JSONDecodeError and tomllib.TOMLDecodeError are ValueErrors. JSON that is not
        # strict JSON (a trailing comma, say) may still be valid YAML.
        if toml:
            return None
        try:
            loaded = yaml.safe_load(block)
        except yaml.YAMLError:
            return None
    if not isinstance(loaded, dict):
        return None
    return {str(key): _json_safe(value) for key, value in loaded.items()}


def _json_safe(value: object) -> Any:
    """Turn YAML/TOML values into what ``json.dumps`` accepts, for storage in a JSON column."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, (dt.date, dt.datetime, dt.time)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_json_safe(item) for item in value]
    return str(value)


class _Heading:
    __slots__ = ("end_line", "first_line", "level", "title")

    def __init__(self, level: int, title: str, first_line: int, end_line: int) -> None:
        self.level = level
        self.title = title
        self.first_line = first_line
        self.end_line = end_line


def _headings(body: str) -> list[_Heading]:
    """Top-level headings of ``body`` with the line range each one occupies."""
    tokens = MarkdownIt("commonmark").enable("table").parse(body)
    headings: list[_Heading] = []
    for index, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        title = _plain_text(tokens[index + 1]) if index + 1 < len(tokens) else ""
        first_line, end_line = token.map
        headings.append(_Heading(int(token.tag[1:]), title, first_line, end_line))
    return headings


def _plain_text(inline: Token) -> str:
    """Heading text without Markdown markup: ``**Wi-Fi** [setup](x)`` -> ``Wi-Fi setup``."""
    parts: list[str] = []
    for child in inline.children or []:
        if child.type in ("text", "code_inline"):
            parts.append(child.content)
        elif child.type == "image":
            parts.append(_plain_text(child))
        elif child.type in ("softbreak", "hardbreak"):
            parts.append(" ")
    return clean_heading("".join(parts))


def _title(metadata: dict[str, Any], headings: list[_Heading], filename: str) -> str:
    declared = metadata.get("title")
    if isinstance(declared, (str, int, float)) and clean_heading(str(declared)):
        return clean_heading(str(declared))
    titled = [heading for heading in headings if heading.title]
    for heading in titled:
        if heading.level == 1:
            return heading.title
    if titled:
        return titled[0].title
    return title_from_filename(filename)
