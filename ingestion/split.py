"""Split a parsed document into token-bounded chunks that keep their section path.

The embedding model silently truncates input past its maximum sequence length (256 word pieces
for all-MiniLM-L6-v2), so every chunk is measured with the model's own tokenizer, breadcrumb and
special tokens included, and re-split until it fits. Truncation is treated as a bug: the final
check raises rather than letting an oversized chunk through.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from langchain_text_splitters import RecursiveCharacterTextSplitter

from ingestion.types import Chunk, ParsedDocument

# Separators from coarse to fine: paragraphs, lines, sentences, clauses, words.
_SEPARATORS = ["\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ", ""]


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
    parts = [p for p in (title, *path) if p]
    deduped = [p for i, p in enumerate(parts) if i == 0 or p.casefold() != parts[i - 1].casefold()]
    return " > ".join(deduped)


class Splitter:
    """Structure-aware splitter bound to one tokenizer. Create once per process and reuse."""

    def __init__(self, tokenizer: Tokenizer, config: SplitConfig | None = None) -> None:
        self._tokenizer = tokenizer
        self.config = config or SplitConfig()
        if self.config.target_tokens > self.config.max_tokens:
            raise ValueError("target_tokens must not exceed max_tokens")

    def count(self, text: str) -> int:
        """Word pieces the model sees for ``text``, special tokens included."""
        return len(self._tokenizer.encode(text, add_special_tokens=True))

    def _text_splitter(self, budget: int) -> RecursiveCharacterTextSplitter:
        return RecursiveCharacterTextSplitter(
            separators=_SEPARATORS,
            chunk_size=budget,
            chunk_overlap=min(self.config.overlap_tokens, budget // 4),
            length_function=lambda t: len(self._tokenizer.encode(t, add_special_tokens=False)),
            keep_separator="end",
            strip_whitespace=True,
        )

    def split(self, document: ParsedDocument) -> list[Chunk]:
        """Chunks in document order, positions 0..n-1. Empty sections are skipped."""
        chunks: list[Chunk] = []
        for path, text in self._merged_sections(document):
            context = breadcrumb(document.title, path)
            for piece in self._split_section(context, text):
                for fitted, n in self._fit(context, piece):
                    chunks.append(Chunk(len(chunks), fitted, path, context, n))
        return chunks

    def _merged_sections(self, document: ParsedDocument) -> Iterator[tuple[tuple[str, ...], str]]:
        """Yield (path, text), folding a tiny section into the next one with the same parent.

        A heading followed by a single line makes a poor chunk on its own; merging keeps it
        with its sibling while the breadcrumb still names the first section's parent.
        """
        pending: tuple[tuple[str, ...], str] | None = None
        for section in document.sections:
            text = section.text.strip()
            if not text:
                continue
            if pending is not None:
                p_path, p_text = pending
                same_parent = p_path[:-1] == section.path[:-1] and len(p_path) == len(section.path)
                if same_parent and self.count(p_text) < self.config.min_merge_tokens:
                    heading = section.path[-1] if section.path else ""
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
            raise ValueError(f"Heading path too long to leave room for text: {context[:80]!r}")
        if self.count(text) + overhead <= self.config.target_tokens:
            return [text]
        return [p for p in self._text_splitter(budget).split_text(text) if p.strip()]

    def _fit(self, context: str, text: str) -> Iterator[tuple[str, int]]:
        """Yield (text, tokens) pieces whose embed text fits ``max_tokens``.

        Pieces are measured together with the breadcrumb, because tokenizing parts separately
        can differ by a token or two from the whole. An oversized piece (one very long "word",
        a table row without spaces) is halved at whitespace, or mid-string as a last resort.
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
