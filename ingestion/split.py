"""Split a parsed document into token-bounded chunks that keep their section path.

The embedding model silently truncates input past its maximum sequence length (256 word pieces
for all-MiniLM-L6-v2), so every chunk is measured with the model's own tokenizer, breadcrumb and
special tokens included, and re-split until it fits. Truncation is treated as a bug: the final
check raises rather than letting an oversized chunk through.

Two kinds of input would still lose text without a sound, so the splitter changes them visibly
and says so in :attr:`SplitResult.notes`:

- A WordPiece tokenizer turns every word longer than its ``max_input_chars_per_word`` (100
  characters for BERT models) into one ``[UNK]``: a 5 MB base64 blob would count as a single
  token and be unsearchable. Such words are broken into pieces with spaces between them.
- A heading can be longer than a whole chunk. The breadcrumb is held to a quarter of
  ``max_tokens`` by shortening its longest parts, which then end in "…".
"""

from __future__ import annotations

import itertools
import re
import string
import sys
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any, Protocol

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingestion.types import Chunk, ParsedDocument, SplitResult

# Separators from coarse to fine: paragraphs, lines, sentences, clauses, words.
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]

_ELLIPSIS = "…"
_DEFAULT_MAX_WORD_CHARS = 100
_GROWTH = 3
"""The most characters one character becomes in a BERT normalizer (NFD splits a Hangul syllable
into up to three jamo), so a word this many times shorter than the limit can never reach it."""
_CJK_IDEOGRAPHS = (
    (0x3400, 0x4DBF),
    (0x4E00, 0x9FFF),
    (0xF900, 0xFAFF),
    (0x20000, 0x2A6DF),
    (0x2A700, 0x2CEAF),
    (0x2F800, 0x2FA1F),
)
"""Characters BERT's normalizer surrounds with spaces, so each is a word of its own."""
_WORD = re.compile(r"\S+")


class Tokenizer(Protocol):
    """The slice of a Hugging Face tokenizer the splitter needs."""

    def encode(self, text: str, add_special_tokens: bool = True) -> list[int]: ...


@dataclass(frozen=True)
class SplitConfig:
    max_tokens: int = 256
    """Hard bound: the embedding model's maximum sequence length, special tokens included."""
    target_tokens: int = 200
    """Preferred chunk size; leaves room for the breadcrumb."""
    overlap_tokens: int = 32
    min_merge_tokens: int = 48
    """Sections shorter than this are merged with the next section under the same parent."""


def breadcrumb(title: str, path: Sequence[str]) -> str:
    """ "Title > Heading > Subheading", without repeating the title when the first heading is it."""
    return " > ".join(_breadcrumb_parts(title, path))


def _breadcrumb_parts(title: str, path: Sequence[str]) -> list[str]:
    parts = [p for p in (title, *path) if p]
    return [p for i, p in enumerate(parts) if i == 0 or p.casefold() != parts[i - 1].casefold()]


@dataclass
class _Changes:
    """What splitting one document changed in its text, gathered for :attr:`SplitResult.notes`."""

    words_broken: int = 0
    shortened: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    """(kind, original text) -> (words in the original, word pieces kept); kind is "title",
    "heading" or "heading path"."""
    headings: dict[str, str] = field(default_factory=dict)
    """Each heading with its over-long words broken, so a heading is handled (and counted) once."""
    contexts: dict[tuple[str, ...], str] = field(default_factory=dict)

    def notes(self, max_word_chars: int) -> list[str]:
        notes = []
        if self.words_broken:
            broken, verb = _plural(self.words_broken, "word"), "was" if self.words_broken == 1 else "were"
            notes.append(f"{broken} longer than {max_word_chars} characters {verb} broken into pieces.")
        for kind in ("title", "heading", "heading path"):
            found = [sizes for (k, _), sizes in self.shortened.items() if k == kind]
            if len(found) == 1:
                [(words, pieces)] = found
                article = "The" if kind == "title" else "A"
                notes.append(f"{article} {kind} of {_plural(words, 'word')} was shortened to {pieces} word pieces.")
            elif found:
                words, pieces = max(w for w, _ in found), max(p for _, p in found)
                notes.append(
                    f"{len(found)} {kind}s of up to {_plural(words, 'word')} were shortened"
                    f" to at most {pieces} word pieces."
                )
        return notes


class Splitter:
    """Structure-aware splitter bound to one tokenizer. Create once per process and reuse."""

    def __init__(self, tokenizer: Tokenizer, config: SplitConfig | None = None) -> None:
        self._tokenizer = tokenizer
        self._encode = _private_encoder(tokenizer) or tokenizer.encode
        self.config = config or SplitConfig()
        if self.config.target_tokens > self.config.max_tokens:
            raise ValueError("target_tokens must not exceed max_tokens")
        self.max_word_chars = _max_word_chars(tokenizer)
        """Longest word the tokenizer turns into word pieces rather than one unknown token."""
        self._normalize = _normalizer(tokenizer)
        growth = _GROWTH if self._normalize is not None else 1
        self._long_words = _word_runs(self.max_word_chars // growth + 1)

    def count(self, text: str) -> int:
        """Word pieces the model sees for ``text``, special tokens included."""
        return len(self._encode(text, add_special_tokens=True))

    def _pieces(self, text: str) -> int:
        """Word pieces of ``text`` alone, without special tokens."""
        return len(self._encode(text, add_special_tokens=False))

    def _measure(self, text: str, limit: int, *, special: bool = True) -> int:
        """Word pieces of ``text``: exact up to ``limit``; over it, possibly fewer but still over.

        A long text is measured on its start first: a start cut at whitespace never has more word
        pieces than the whole for a tokenizer that splits words at whitespace (WordPiece, as here),
        so a megabyte section is not tokenized in full (seconds, and hundreds of MB inside the
        tokenizer) only to learn that it is long.
        """
        head = 16 * limit  # characters; prose has about four per word piece
        if len(text) > head > 0:
            cut = max(text.rfind(" ", 0, head), text.rfind("\n", 0, head))
            if cut > 0:
                n = len(self._encode(text[:cut], add_special_tokens=special))
                if n > limit:
                    return n
        return len(self._encode(text, add_special_tokens=special))

    def _text_splitter(self, budget: int) -> RecursiveCharacterTextSplitter:
        # LangChain only compares a split's length with the chunk size until the split is below
        # it, so a long split needs no exact length. It measures most splits two or three times,
        # and a run without spaces one character at a time: remembering lengths keeps both
        # linear. Neither changes a result.
        lengths: dict[str, int] = {}

        def length(text: str) -> int:
            n = lengths.get(text)
            if n is None:
                n = lengths[text] = self._measure(text, budget - 1, special=False)
            return n

        return RecursiveCharacterTextSplitter(
            separators=_SEPARATORS,
            chunk_size=budget,
            chunk_overlap=min(self.config.overlap_tokens, budget // 4),
            length_function=length,
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, document: ParsedDocument) -> list[Chunk]:
        """Chunks in document order, positions 0..n-1. Empty sections are skipped."""
        return self.split_document(document).chunks

    def split_document(self, document: ParsedDocument) -> SplitResult:
        """Chunks as :meth:`split` makes them, with notes on any text that had to change to fit."""
        changes = _Changes()
        chunks: list[Chunk] = []
        for path, text in self._merged_sections(document, changes):
            context = changes.contexts.get(path)
            if context is None:
                context = changes.contexts[path] = self._context(document.title, path, changes)
            for piece in self._split_section(context, text):
                for fitted, n in self._fit(context, piece):
                    chunks.append(Chunk(len(chunks), fitted, path, context, n))
        return SplitResult(chunks, changes.notes(self.max_word_chars))

    def _merged_sections(self, document: ParsedDocument, changes: _Changes) -> Iterator[tuple[tuple[str, ...], str]]:
        """Yield (path, text), folding a tiny section into the next one with the same parent.

        A heading followed by a single line makes a poor chunk on its own; merging keeps it
        with its sibling while the breadcrumb still names the first section's parent.
        """
        pending: tuple[tuple[str, ...], str] | None = None
        for section in document.sections:
            text = section.text.strip()
            if not text:
                continue
            text, broken = self._break_long_words(text)
            changes.words_broken += broken
            if pending is not None:
                p_path, p_text = pending
                same_parent = p_path[:-1] == section.path[:-1] and len(p_path) == len(section.path)
                if same_parent and self._measure(p_text, self.config.min_merge_tokens) < self.config.min_merge_tokens:
                    heading = self._heading(section.path[-1], changes) if section.path else ""
                    joined = f"{p_text}\n\n{heading}\n{text}" if heading else f"{p_text}\n\n{text}"
                    pending = (p_path, joined)
                    continue
                yield pending
            pending = (section.path, text)
        if pending is not None:
            yield pending

    def _split_section(self, context: str, text: str) -> list[str]:
        overhead = self.count(context + "\n") if context else self.count("")
        budget = min(self.config.target_tokens, self.config.max_tokens - overhead)
        if budget < 16:
            raise ValueError(f"max_tokens={self.config.max_tokens} leaves no room for text after the breadcrumb")
        if self._measure(text, self.config.target_tokens - overhead) + overhead <= self.config.target_tokens:
            return [text]
        return [p for p in self._text_splitter(budget).split_text(text) if p.strip()]

    def _fit(self, context: str, text: str) -> Iterator[tuple[str, int]]:
        """Yield (text, tokens) pieces whose embed text fits ``max_tokens``.

        Pieces are measured together with the breadcrumb, because tokenizing parts separately
        can differ by a token or two from the whole. An oversized piece (a table row without
        spaces) is halved at whitespace, or mid-string as a last resort.
        """
        embed = f"{context}\n{text}" if context else text
        n = self.count(embed)
        if n <= self.config.max_tokens:
            yield text, n
            return
        middle = len(text) // 2
        cut = text.rfind(" ", 0, middle)
        if cut <= 0:
            cut = text.find(" ", middle)
        if cut <= 0:
            cut = middle
        for half in (text[:cut].strip(), text[cut:].strip()):
            if half:
                yield from self._fit(context, half)

    # --- Over-long words ---------------------------------------------------------------------

    def _break_long_words(self, text: str) -> tuple[str, int]:
        """``text`` with every word the tokenizer would read as one unknown token broken into
        pieces of at most :attr:`max_word_chars` characters, separated by spaces; and how many
        words that was. Text without such words comes back unchanged."""
        broken = 0

        def pieces(match: re.Match[str]) -> str:
            nonlocal broken
            word = match.group()
            if self._word_chars(word) <= self.max_word_chars:
                return word
            broken += 1
            return " ".join(self._word_pieces(word, self.max_word_chars))

        return self._long_words.sub(pieces, text), broken

    def _word_pieces(self, word: str, size: int) -> Iterator[str]:
        for start in range(0, len(word), size):
            piece = word[start : start + size]
            if size > 1 and self._word_chars(piece) > self.max_word_chars:
                yield from self._word_pieces(piece, size // 2)
            else:
                yield piece

    def _word_chars(self, word: str) -> int:
        """Characters WordPiece counts in ``word``: after the tokenizer's normalizer, which may
        strip accents (fewer characters) or split Hangul syllables (more). A word far over the
        limit is taken as it is, as normalizing megabytes only to confirm that costs seconds."""
        if self._normalize is None or word.isascii() or len(word) > 4 * self.max_word_chars:
            return len(word)
        return max((len(w) for w in self._normalize(word).split()), default=0)

    def _heading(self, heading: str, changes: _Changes) -> str:
        if heading not in changes.headings:
            changes.headings[heading], broken = self._break_long_words(heading)
            changes.words_broken += broken
        return changes.headings[heading]

    # --- Over-long breadcrumbs ---------------------------------------------------------------

    def _context(self, title: str, path: tuple[str, ...], changes: _Changes) -> str:
        """The breadcrumb for ``path``, held to a quarter of ``max_tokens`` word pieces.

        Over that share, the longest parts are cut to one common length (ending in "…"), so every
        heading keeps its start and short ones stay whole. A path too deep for even that is cut
        as a whole. Breadcrumbs within the share are exactly :func:`breadcrumb`'s.
        """
        originals = _breadcrumb_parts(title, path)
        parts = [self._heading(p, changes) for p in originals]
        limit = max(1, self.config.max_tokens // 4)
        context = " > ".join(parts)
        if self._measure(context, limit, special=False) <= limit:
            return context
        sizes = [self._measure(p, limit, special=False) for p in parts]  # exact up to the limit
        room = limit - self._pieces(" > ".join(["a"] * len(parts))) + len(parts)  # left by the " > "s
        cap = _largest(limit, lambda c: sum(min(n, c) for n in sizes) <= room)
        if cap:
            cut = [p if n <= cap else self._shorten(p, cap) for p, n in zip(parts, sizes, strict=True)]
            if self._pieces(" > ".join(cut)) <= limit:
                for i, (original, before, after) in enumerate(zip(originals, parts, cut, strict=True)):
                    if after != before:
                        kind = "title" if i == 0 and title else "heading"
                        changes.shortened[(kind, original)] = (len(original.split()), self._pieces(after))
                return " > ".join(cut)
        context = self._shorten(context, limit)
        words = sum(len(p.split()) for p in originals)
        changes.shortened[("heading path", " > ".join(originals))] = (words, self._pieces(context))
        return context

    def _shorten(self, text: str, pieces: int) -> str:
        """The longest start of ``text`` that is at most ``pieces`` word pieces with "…" after it.

        Cut after a whole word when at least one fits, else inside the first word. ``pieces``
        must be at least 1, the ellipsis itself.
        """
        text = text.strip()
        # Every word is at least one word piece, so no more than ``pieces`` words can fit.
        ends = [m.end() for m in itertools.islice(_WORD.finditer(text), pieces)]

        def fits(end: int) -> bool:
            return self._pieces(text[:end] + _ELLIPSIS) <= pieces

        words = _largest(len(ends), lambda k: fits(ends[k - 1]))
        if words:
            return text[: ends[words - 1]] + _ELLIPSIS
        chars = _largest(ends[0] if ends else 0, fits)
        return text[:chars] + _ELLIPSIS


def _largest(n: int, ok: Callable[[int], bool]) -> int:
    """The largest k in 0..n for which ``ok(k)`` holds, by bisection; ``ok(0)`` is assumed.

    ``ok`` should hold up to some k and fail after it. Where it does not quite (word-piece counts
    of growing prefixes can dip by one), the answer is still a k for which it holds.
    """
    low, high = 0, n
    while low < high:
        middle = (low + high + 1) // 2
        if ok(middle):
            low = middle
        else:
            high = middle - 1
    return low


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _max_word_chars(tokenizer: object) -> int:
    """WordPiece's ``max_input_chars_per_word`` from a fast or slow Hugging Face tokenizer."""
    model = getattr(getattr(tokenizer, "backend_tokenizer", None), "model", None)
    for owner in (model, getattr(tokenizer, "wordpiece_tokenizer", None)):
        value = getattr(owner, "max_input_chars_per_word", None)
        if isinstance(value, int) and value > 0:
            return value
    return _DEFAULT_MAX_WORD_CHARS


def _private_encoder(tokenizer: object) -> Callable[..., list[int]] | None:
    """``encode`` on a private copy of a fast tokenizer's Rust backend, truncation and padding off.

    A Hugging Face tokenizer switches its shared backend's truncation on and off inside every call
    (the embedder's calls truncate to the model's limit), so another thread could make a count
    come back truncated; a private copy cannot. It also skips about 20 µs of Python per call, and
    the splitter makes one call per candidate split. None when there is no backend to copy, or
    when the copy counts differently from the tokenizer itself.
    """
    backend: Any = getattr(tokenizer, "backend_tokenizer", None)
    encode: Any = getattr(tokenizer, "encode", None)
    if backend is None or encode is None or not hasattr(backend, "to_str"):
        return None
    own: Any = type(backend).from_str(backend.to_str())
    own.no_truncation()
    own.no_padding()
    own.encode_special_tokens = bool(getattr(tokenizer, "split_special_tokens", False))

    def encode_copy(text: str, add_special_tokens: bool = True) -> list[int]:
        ids: list[int] = own.encode(text, add_special_tokens=add_special_tokens).ids
        return ids

    probe = "Résumé: 東京 [SEP] naïve x" + "y" * 300 + " https://example.com/a_b?c=d " * 200
    same = all(encode_copy(probe, special) == encode(probe, add_special_tokens=special) for special in (True, False))
    return encode_copy if same else None


def _normalizer(tokenizer: object) -> Callable[[str], str] | None:
    """The fast tokenizer's normalizer (lower-casing, accent stripping), if it has one."""
    normalizer: Any = getattr(getattr(tokenizer, "backend_tokenizer", None), "normalizer", None)
    normalize: Any = getattr(normalizer, "normalize_str", None)
    return normalize if callable(normalize) else None


@cache
def _word_runs(min_chars: int) -> re.Pattern[str]:
    """Runs of at least ``min_chars`` characters that BERT's pre-tokenizer keeps as one word.

    Words end at whitespace, at punctuation (ASCII or any Unicode ``P*`` category) and around CJK
    ideographs, as in ``BertNormalizer`` and ``BertPreTokenizer``. Built from the Unicode tables
    on first use (about 0.2 s), once per process.
    """
    ends = {cp for cp in range(sys.maxunicode + 1) if unicodedata.category(chr(cp))[0] in "PZ"}
    ends.update(map(ord, string.punctuation + "\t\n\r"))
    ranges: list[tuple[int, int]] = []
    for cp in sorted(ends):
        if ranges and ranges[-1][1] == cp - 1:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    boundary = "".join(rf"\U{a:08x}-\U{b:08x}" for a, b in [*ranges, *_CJK_IDEOGRAPHS])
    return re.compile(f"[^{boundary}]{{{min_chars},}}")


def overlap_length(before: str, after: str, *, longest: int = 2000) -> int:
    """How many characters ``after`` starts with that ``before`` ends with (the splitter's
    overlap between consecutive chunks); 0 below a dozen characters, which is coincidence."""
    limit = min(len(before), len(after), longest)
    return next((k for k in range(limit, 11, -1) if before.endswith(after[:k])), 0)


def join_overlapping(texts: Sequence[str]) -> str:
    """Consecutive chunks of one section, joined back into its text, the overlaps once."""
    out = ""
    for text in texts:
        shared = overlap_length(out, text) if out else 0
        out = out + text[shared:] if shared else (out + "\n\n" + text if out else text)
    return out
