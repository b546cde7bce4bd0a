"""Whether to answer at all: answer, abstain (the docs don't cover it) or clarify (ambiguous).

The engine asks :func:`assess` after retrieval and before generation. It looks only at the
standalone query, the retrieved chunks and the conversation, so it is cheap (no model call) and
``manage.py evaluate --retrieval-only`` reports its outcomes by answerability label.

Signals (:class:`Features`):

- how similar the best passage is to the query (cosine of the dense vectors);
- how much of the query's content words the best passages contain (lexical coverage; the part of
  a question no passage mentions is usually the part the documentation does not cover);
- a reference without a referent: "this language", "the actor", "he" in a turn whose
  conversation never named one, while the passages retrieved belong to several different
  documents (which is what the customer may mean).

Calibrated on mtrag-dev and the E-Manual development set; the measurements and the trade-off
curve the defaults were chosen from are in docs/answering.md ("Knowing when not to answer").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from resolvo.answers.condense import REFERRING, STOPWORDS, content_words, words
from resolvo.knowledge.selectors import RetrievedChunk

Outcome = Literal["answer", "abstain", "clarify"]


class _Turn(Protocol):
    @property
    def role(self) -> str: ...
    @property
    def content(self) -> str: ...


@dataclass(frozen=True)
class GateConfig:
    min_similarity: float = 0.30
    """Abstain below this cosine similarity of the best passage, whatever else holds."""
    min_score: float = 0.0
    """Abstain when the combined :func:`score` is below this (0 turns the check off)."""
    coverage_weight: float = 0.5
    """How much lexical coverage counts against similarity in :func:`score`."""
    min_multilingual_similarity: float = 0.82
    """For a question searched across languages (the chunks carry a multilingual similarity):
    abstain below this multilingual-e5 similarity of the best passage instead, as all-MiniLM is
    English-only. Calibrated on the 90 translated E-Manual questions (lowest 0.823) against 15
    off-topic questions in Spanish, German and French (0.747-0.839; 13 of 15 fall below)."""
    clarify: bool = True
    """Ask which one is meant when a reference has no referent and documents compete."""
    clarify_min_documents: int = 2
    """Distinct documents among the top passages needed to ask (one document: just answer)."""
    clarify_max_similarity: float = 1.0
    """Do not ask when the best passage is at least this similar (it is clearly about one thing)."""

    @classmethod
    def from_settings(cls) -> GateConfig:
        """The configuration of the ``ANSWER_GATE_*`` settings (and ``ANSWER_MIN_RETRIEVAL_SIMILARITY``)."""
        from django.conf import settings

        return cls(
            min_similarity=settings.ANSWER_MIN_RETRIEVAL_SIMILARITY,
            min_multilingual_similarity=settings.ANSWER_GATE_MIN_MULTILINGUAL_SIMILARITY,
            min_score=settings.ANSWER_GATE_MIN_SCORE,
            coverage_weight=settings.ANSWER_GATE_COVERAGE_WEIGHT,
            clarify=settings.ANSWER_GATE_CLARIFY,
            clarify_min_documents=settings.ANSWER_GATE_CLARIFY_MIN_DOCUMENTS,
            clarify_max_similarity=settings.ANSWER_GATE_CLARIFY_MAX_SIMILARITY,
        )


@dataclass(frozen=True)
class Assessment:
    outcome: Outcome
    reason: str = ""
    """Machine-readable: "weak_retrieval", "not_covered", "ambiguous" ("" when answering)."""
    score: float = 0.0
    options: list[str] = field(default_factory=list)
    """For "clarify": what the customer may mean (document titles or entities), best first, at most 3."""
    features: dict[str, float] = field(default_factory=dict)
    """The measurements behind the outcome (for the trace and for calibration)."""


@dataclass(frozen=True)
class Features:
    best_similarity: float
    second_similarity: float
    coverage: float
    """Share of the query's content words found in the top passages (0..1)."""
    best_coverage: float
    """The same for the best passage alone."""
    documents: int
    """Distinct documents among the passages."""
    unresolved: int
    """References with no referent in the turn or the conversation ("this language", "the actor")."""
    best_multilingual: float = 0.0
    """The best passage's multilingual similarity when the question was searched across languages."""

    def as_dict(self) -> dict[str, float]:
        return {k: round(float(v), 4) for k, v in self.__dict__.items()}


_DEMONSTRATIVES = frozenset({"this", "that", "these", "those"})
_PERSONAL = frozenset({"he", "him", "his", "she", "her", "hers", "they", "them", "their", "it", "its"})
_STEM = 5
_TIME = frozenset({"morning", "evening", "night", "week", "weekend", "month", "year", "time", "moment", "afternoon"})


def _stems(text: str) -> set[str]:
    return {w[:_STEM] for w in content_words(text)}


def unresolved_references(query: str, history: Sequence[_Turn] = ()) -> int:
    """How many of ``query``'s references point at something nobody named: a demonstrative
    ("this language", "these players") or a possessive on a definite noun ("the actor's") whose noun
    appears nowhere earlier in the conversation, or a personal pronoun opening a conversation."""
    known = _stems(" ".join(t.content for t in history))
    sentences = [x for x in re.split(r"(?<=[.!?])\s+", query.strip()) if x]
    count = 0
    for n, sentence in enumerate(sentences):
        # "The app says E42. What does that mean?": a later sentence refers to an earlier one.
        seen = known | _stems(" ".join(sentences[:n]))
        ws = words(sentence)
        for i, w in enumerate(ws[:-1]):
            if w not in _DEMONSTRATIVES and w != "the":
                continue
            following = ws[i + 1]
            possessive = following.endswith("'s")
            noun = following.removesuffix("'s")
            if n and w in _DEMONSTRATIVES:
                continue
            if w in _DEMONSTRATIVES and (noun in _TIME or re.search(r"['\"\u2018\u201c]", sentence)):
                continue  # "this month"; "this error 'some files cannot be played'" names itself
            if len(noun) <= 2 or noun in STOPWORDS or noun in REFERRING or noun[:_STEM] in seen:
                continue
            if w in _DEMONSTRATIVES or possessive:
                count += 1
    # A bare pronoun opening a conversation ("how do I connect it to the Wi-Fi?") has nothing to
    # point at; after a noun ("no sound with it", "My bulb won't pair. How do I reset it?") it does.
    if not history and len(sentences) == 1:
        ws = words(query)
        for i, w in enumerate(ws):
            if w in _PERSONAL:
                before = content_words(" ".join(ws[: max(0, i - 1)]))  # the verb right before it aside
                if not before:
                    count += 1
                break
    return count


def features(query: str, chunks: Sequence[RetrievedChunk], history: Sequence[_Turn] = ()) -> Features:
    sims = sorted((c.similarity for c in chunks), reverse=True)
    q = _stems(query)
    texts = [_stems(f"{c.title} {' '.join(c.section)} {c.text}") for c in chunks]
    union = set().union(*texts) if texts else set()
    best = texts[0] if texts else set()
    return Features(
        best_similarity=sims[0] if sims else 0.0,
        second_similarity=sims[1] if len(sims) > 1 else 0.0,
        coverage=len(q & union) / len(q) if q else 1.0,
        best_coverage=len(q & best) / len(q) if q else 1.0,
        documents=len({c.document_id for c in chunks}),
        unresolved=unresolved_references(query, history),
        best_multilingual=max((c.multilingual_similarity or 0.0 for c in chunks), default=0.0),
    )


def score(f: Features, config: GateConfig) -> float:
    """How well the passages cover the query: similarity, raised or lowered by lexical coverage."""
    return f.best_similarity + config.coverage_weight * (f.coverage - 0.5)


_ID_LIKE = re.compile(r"^[\W\d_]*$|^[0-9a-f\s_-]{8,}$", re.IGNORECASE)


def option_label(chunk: RetrievedChunk) -> str:
    """What a customer would recognise the passage's document by: its title, or a short first line
    when the title is only a file name made of numbers."""
    title = chunk.title.strip()
    if title and not _ID_LIKE.match(title):
        return title
    first = chunk.text.strip().split("\n", 1)[0].strip()
    return first if 0 < len(first.split()) <= 8 else ""


def options_of(chunks: Sequence[RetrievedChunk], limit: int = 3) -> list[str]:
    seen: dict[str, None] = {}
    for c in chunks:
        label = option_label(c)
        if label and label.casefold() not in {s.casefold() for s in seen}:
            seen[label] = None
        if len(seen) == limit:
            break
    return list(seen)


def decide(f: Features, options: Sequence[str], config: GateConfig = GateConfig()) -> Assessment:
    """The outcome for measured features (``options``: the candidates' labels, best first)."""
    s = score(f, config)
    measured = f.as_dict()
    if f.best_multilingual:  # another language: all-MiniLM's similarity says nothing here
        if f.best_multilingual < config.min_multilingual_similarity:
            return Assessment("abstain", "weak_retrieval", s, features=measured)
    elif f.best_similarity < config.min_similarity:
        return Assessment("abstain", "weak_retrieval", s, features=measured)
    if config.min_score and not f.best_multilingual and s < config.min_score:
        return Assessment("abstain", "not_covered", s, features=measured)
    if (
        config.clarify
        and f.unresolved
        and f.documents >= config.clarify_min_documents
        and f.best_similarity < config.clarify_max_similarity
        and len(options) >= 2
    ):
        return Assessment("clarify", "ambiguous", s, options=list(options[:3]), features=measured)
    return Assessment("answer", "", s, features=measured)


def assess(
    query: str, chunks: Sequence[RetrievedChunk], *, history: Sequence[_Turn] = (), config: GateConfig = GateConfig()
) -> Assessment:
    """Answer, abstain or clarify, for ``query`` (the standalone query) and the chunks retrieved
    for it (the passages the model would see, best first)."""
    if not chunks:
        return Assessment("abstain", "weak_retrieval", 0.0)
    return decide(features(query, chunks, history), options_of(chunks), config)
