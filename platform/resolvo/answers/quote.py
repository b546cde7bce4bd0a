"""Passage text as readable sentences: for the model's context and for quoted answers.

Text extracted from PDFs keeps the layout's line breaks ("When you press the\\nbutton in\\nAmbient
Mode\\n, the ..."), and icons that were images leave orphan labels behind ("brightness for :").
:func:`reflow` joins wrapped lines back into paragraphs (lists, headings and tables keep their
lines); :func:`readable_sentences` keeps only sentences a customer can read on their own.
"""

from __future__ import annotations

import re

from resolvo.answers import guard

_BLOCK_START = re.compile(r"^\s*(#{1,6}\s|[-*+]\s|\d{1,2}[.)]\s|\||>)")
_SENTENCE_END = re.compile(r"[.!?:][\"')\]]*$")
_SPLIT = re.compile(r"(?<=[.!?])[\"')\]]*\s+(?=[\"'(]?[A-Z0-9¿¡ÁÉÍÓÚÄÖÜÀÂÇÈÊÎÔ])")
_ORPHAN = re.compile(
    r"(^[\s:;,.)\]-])|(\b(for|the|a|an|of|to|with|press|select|tap)\s*[:;]\s)|(\b(to|for|the|press|select|tap)\s*,)|(\(\s*\))|(\s[:;,]\s*[:;,])",
    re.IGNORECASE,
)
_STARTS_WELL = re.compile(r"^(\*\*|\*|_)?[\"'(¿¡]?[A-Z0-9ÁÉÍÓÚÄÖÜÀÂÇÈÊÎÔ]")
_TABLE_RULE = re.compile(r"^\|?\s*:?-{2,}")


def reflow(text: str) -> str:
    """Join wrapped lines; keep paragraph breaks, list items, headings and table rows."""
    paragraphs: list[str] = []
    current = ""
    lines = text.splitlines()
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            if current:
                paragraphs.append(current)
                current = ""
            continue
        following = next((x.strip() for x in lines[i + 1 :] if x.strip()), "")
        heading = (
            len(line.split()) <= 10
            and line[0].isupper()
            and not re.search(r"[.!?:,;]$", line)
            and (not current or bool(re.search(r"[.!?]$", current)))
            and following[:1].isupper()
        )
        if not current:
            current = line
        elif heading:
            paragraphs.append(current)
            paragraphs.append(line)
            current = ""
        elif _BLOCK_START.match(raw) or _BLOCK_START.match(current):
            paragraphs.append(current)
            current = line
        elif line[0] in ",.;:)!?]":
            current += line
        else:
            current += " " + line
    if current:
        paragraphs.append(current)
    joined = "\n".join(paragraphs)
    return re.sub(r"[ \t]+([,.;:!?)])", r"\1", re.sub(r"[ \t]{2,}", " ", joined))


def plain(sentence: str) -> str:
    """Without markdown emphasis, for comparing meaning."""
    return re.sub(r"\*\*|__|(?<!\w)[*_]|[*_](?!\w)", "", sentence)


def readable(sentence: str, *, min_words: int = 4, max_words: int = 60) -> bool:
    """A complete sentence: starts with a capital or digit, ends with punctuation, no orphan
    labels or empty brackets, not addressed to an assistant."""
    words = sentence.split()
    run = longest = 0
    for w in words:
        run = run + 1 if w[:1].isupper() else 0
        longest = max(longest, run)
    return (
        min_words <= len(words) <= max_words
        # "Configuring Game Motion Plus Settings General External Device Manager ...": menu
        # breadcrumbs run together by PDF extraction, not a sentence ("Select Settings > Picture >
        # Picture Mode" is one: its separators break the run).
        and longest < 6
        and bool(_STARTS_WELL.match(sentence))
        and bool(re.search(r"[.!?][\"')\]]*$", sentence))
        and not _ORPHAN.search(sentence)
        and not guard.instruction_like(sentence)
    )


def readable_sentences(text: str) -> list[str]:
    """The sentences of ``text`` in order, each marked readable or not: (sentence, ok)."""
    out: list[str] = []
    out_rows: list[str] = []  # the rows of the table being read (its first is the header)
    for paragraph in reflow(text).split("\n"):
        body = re.sub(r"^\s*(#{1,6}|[-*+]|\d{1,2}[.)]|>)\s+", "", paragraph).strip()
        if body.startswith("|"):
            body = _table_row(body, header=not out_rows)
            out_rows.append(body)
        else:
            out_rows.clear()
        if not body:
            continue
        if not _SENTENCE_END.search(body) and len(body.split()) < 12:
            continue  # a heading or label line
        out.extend(s.strip() for s in _SPLIT.split(body) if s.strip())
    return out


def _table_row(row: str, *, header: bool) -> str:
    """A table row as one sentence ("Blinking amber: Connected to Wi-Fi but no internet — check your
    router's internet connection."); the header row and the rule under it give ""."""
    cells = [c.strip() for c in row.strip().strip("|").split("|")]
    if header or _TABLE_RULE.match(row.strip()) or not any(cells):
        return ""
    first, rest = cells[0], [c.rstrip(".") for c in cells[1:] if c]
    if not rest:
        return first
    tail = " — ".join(c[:1].lower() + c[1:] if i else c for i, c in enumerate(rest))
    return f"{first}: {tail}."
