"""Turn a stream of headings and text blocks into :class:`Section` values.

Every format parser walks its document in reading order and reports two kinds of event: "a heading
of level N" and "a block of text". :class:`SectionBuilder` keeps the stack of open headings and
cuts a new section whenever the heading path changes, so all formats agree on what a path means.
"""

from __future__ import annotations

import re

from ingestion.types import Section

_BLANK_RUN = re.compile(r"\n{3,}")


def clean_text(text: str) -> str:
    """Normalise line ends to ``\\n``, drop trailing spaces, keep at most one blank line in a row."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\x00", "")
    lines = [line.rstrip() for line in text.split("\n")]
    return _BLANK_RUN.sub("\n\n", "\n".join(lines)).strip("\n")


def clean_heading(text: str) -> str:
    """Collapse all whitespace in a heading to single spaces (headings are one line)."""
    return " ".join(text.split())


class SectionBuilder:
    """Collects text blocks under the current heading path, in document order.

    Levels are relative: a heading closes every open heading of the same or a deeper level, so a
    document that jumps from level 1 to level 3 gets the path ``(h1, h3)``. Level 0 is allowed for
    a document title above all other headings. Sections without text are dropped; their heading
    still appears in the paths of the sections below it.
    """

    def __init__(self) -> None:
        self._open: list[tuple[int, str]] = []
        self._blocks: list[str] = []
        self._sections: list[Section] = []

    @property
    def path(self) -> tuple[str, ...]:
        """The heading path that the next text block will be filed under."""
        return tuple(title for _, title in self._open)

    def heading(self, level: int, title: str) -> None:
        """Start a section under ``title``. A blank title is ignored."""
        title = clean_heading(title)
        if not title:
            return
        self._cut()
        while self._open and self._open[-1][0] >= level:
            self._open.pop()
        self._open.append((level, title))

    def text(self, block: str) -> None:
        """Add a block of text (a paragraph, list, table or code block) to the current section."""
        block = clean_text(block)
        if block.strip():
            self._blocks.append(block)

    def build(self) -> list[Section]:
        """Return the sections collected so far, the last one included."""
        self._cut()
        return list(self._sections)

    def _cut(self) -> None:
        if not self._blocks:
            return
        text = "\n\n".join(self._blocks)
        self._blocks = []
        path = self.path
        if self._sections and self._sections[-1].path == path:
            text = self._sections.pop().text + "\n\n" + text
        self._sections.append(Section(path=path, text=text))
