"""Check that each cited passage supports the sentence that cites it.

Support is measured with the embedding model the platform already runs: cosine similarity
between the sentence and the passage's stored vector, plus lexical containment (the share of
the sentence's content words found in the passage), because small models often copy phrases.
Citations that fail are dropped; uncited sentences that are clearly supported get the
supporting passage attached, marked ``inferred``. Whatever the similarity, a passage supports a
sentence only if it contains the sentence's :func:`grounded_terms` (named buttons and menus,
quoted labels, numbers): the commonest invention of a small model is a plausible step with a
made-up control name.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

_CITE = re.compile(r"\[(\d{1,2})\]")
_SENTENCES = re.compile(r"[^\n.!?]+(?:[.!?]+(?:\s*(?:\[\d{1,2}\])+)?|\n|$)")
_WORD = re.compile(r"[a-z0-9]+")
_STOP = frozenset(
    "a an the and or of to in on at for with by is are be was were it its this that these those you your "
    "can will from as if then than so not no do does how what when where which who why i we our us".split()
)


@dataclass(frozen=True)
class Thresholds:
    cite_similarity: float = 0.40
    cite_containment: float = 0.60
    infer_similarity: float = 0.50
    """An uncited sentence gets a citation only with stronger support: similarity and containment."""
    infer_containment: float = 0.50
    support_fraction: float = 0.5
    min_sentence_words: int = 4


@dataclass
class SentenceCheck:
    text: str
    cited: list[int]
    kept: list[int] = field(default_factory=list)
    inferred: list[int] = field(default_factory=list)
    best: int | None = None
    similarity: float = 0.0
    containment: float = 0.0

    @property
    def supported(self) -> bool:
        return bool(self.kept or self.inferred)


@dataclass
class Verification:
    sentences: list[SentenceCheck]
    used: list[int]
    """Passage numbers that survive verification, in first-use order."""
    dropped: list[int]
    supported_fraction: float


def sentences_of(answer: str) -> list[str]:
    return [s.strip() for s in _SENTENCES.findall(answer) if s.strip()]


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def containment(sentence: str, passage: str) -> float:
    words = content_words(sentence)
    if not words:
        return 0.0
    return len(words & content_words(passage)) / len(words)


_PHRASE = re.compile(
    r"(?<!^)(?<![.!?]\s)\b([A-Z][\w'-]*(?:\s+(?:[A-Z][\w'-]*|&|of|and|for|the|to)){0,4}\s+[A-Z][\w'-]*)"
)
_QUOTED = re.compile(
    r"[\"“”]([^\"“”\n]{3,60})[\"“”]"
    r"|(?:(?<=\s)|^)['\u2018]([^'\u2019\n]{3,60})['\u2019](?=[\s.,;:!?)]|$)"
    r"|\*\*([^*\n]{3,60})\*\*"
    r"|>\s*([A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)*)"
)
_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,:]\d+)*(?![\w])")


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


def grounded_terms(sentence: str) -> list[str]:
    """The exact things a sentence claims: names of buttons and menus (runs of capitalised
    words after the first word, quoted or bold labels) and numbers. A passage supports the
    sentence only if it contains every one of them: "Tap the Change Current Time button" needs a
    passage that names "Change Current Time", not one that merely has the words change, time
    and button somewhere."""
    text = re.sub(r"^\s*(?:\d{1,2}[.)]|[-*•])\s+", "", strip_citations(sentence))  # a list item's marker
    terms = [m.group(1) for m in _PHRASE.finditer(text)]
    terms += [next(g for g in m.groups() if g) for m in _QUOTED.finditer(text)]
    terms += [m.group() for m in _NUMBER.finditer(text)]
    return [t for t in dict.fromkeys(_norm(t) for t in terms) if t]


def grounded(terms: Sequence[str], passage: str) -> bool:
    haystack = f" {_norm(passage)} "
    return all(f" {t} " in haystack for t in terms)


def strip_citations(text: str) -> str:
    return re.sub(r"\s*\[\d{1,2}\]", "", text).strip()


def verify(
    answer: str,
    *,
    passages: Sequence[str],
    passage_vectors: npt.NDArray[np.float32],
    embed: Callable[[list[str]], npt.NDArray[np.float32]],
    thresholds: Thresholds,
) -> Verification:
    """Passages are numbered from 1 in the order given."""
    checks = [SentenceCheck(s, [int(n) for n in _CITE.findall(s)]) for s in sentences_of(answer)]
    substantive = [
        c for c in checks if len(_WORD.findall(strip_citations(c.text).lower())) >= thresholds.min_sentence_words
    ]
    if substantive and len(passages):
        vectors = embed([strip_citations(c.text) for c in substantive])
        sims = vectors @ passage_vectors.T  # sentences x passages
        for row, check in zip(sims, substantive, strict=True):
            plain = strip_citations(check.text)
            terms = grounded_terms(plain)
            has = [grounded(terms, p) for p in passages]
            cont = [containment(plain, p) if has[i] else 0.0 for i, p in enumerate(passages)]
            row = np.where(np.asarray(has), row, -1.0).astype(np.float32)

            def supports(i: int, row: npt.NDArray[np.float32] = row, cont: list[float] = cont) -> bool:
                return bool(row[i] >= thresholds.cite_similarity or cont[i] >= thresholds.cite_containment)

            best = int(np.argmax(row + np.asarray(cont, dtype=np.float32)))
            check.best, check.similarity, check.containment = best + 1, float(row[best]), cont[best]
            check.kept = [n for n in dict.fromkeys(check.cited) if 1 <= n <= len(passages) and supports(n - 1)]
            if (
                not check.kept
                and row[best] >= thresholds.infer_similarity
                and cont[best] >= thresholds.infer_containment
            ):
                check.inferred = [best + 1]
    cited_all = [n for c in checks for n in c.cited]
    used = list(dict.fromkeys(n for c in checks for n in (*c.kept, *c.inferred)))
    dropped = sorted(set(cited_all) - set(used))
    fraction = sum(1 for c in substantive if c.supported) / len(substantive) if substantive else 0.0
    return Verification(checks, used, dropped, fraction)
