"""The answer pipeline, as plain Python: condense -> retrieve -> prompt -> generate -> verify.

:meth:`AnswerEngine.stream` yields the events of :mod:`resolvo.answers.events` (the contract,
order included, is described there). Every step writes what it did to the run's :class:`Trace`.
The engine knows nothing about HTTP; the widget, the agents' drafts and the commands all consume
these events.
"""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

import numpy as np

from resolvo.answers import condense, events, gate, guard, prompts, quote, rerank
from resolvo.answers import language as lang
from resolvo.answers.events import Citation, DoneData, Event, Outcome, Source
from resolvo.answers.llm.base import ChatMessage, GenerationParams, LLMBackend, LLMUnavailable
from resolvo.answers.verify import Thresholds, content_words, strip_citations, verify
from resolvo.knowledge.models import KnowledgeBase
from resolvo.knowledge.selectors import RetrievedChunk, chunks_neighbours, chunks_search

NO_ANSWER = "I don't know based on our documentation."
_NO_ANSWER_PATTERNS = re.compile(
    r"i don'?t know|do(es)? not (contain|include|mention|provide|say)|not (covered|mentioned|provided) in|"
    r"no information (about|on)|cannot (find|answer)|can'?t (find|answer)|isn'?t (covered|mentioned)",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Turn:
    role: Literal["user", "assistant"]
    content: str


@dataclass(frozen=True)
class AnswerConfig:
    top_k: int = 5
    neighbour_window: int = 1
    min_retrieval_similarity: float = 0.30
    thresholds: Thresholds = field(default_factory=Thresholds)
    max_answer_tokens: int = 256
    context_tokens: int = 1400
    history_tokens: int = 400
    max_question_chars: int = 2000
    condense: Literal["carry", "llm", "concat", "off"] = "carry"
    extract_passages: int = 3
    extract_min_similarity: float = 0.50
    extract_multilingual_similarity: float = 0.86
    """The same for a question in another language, in multilingual-e5's (higher) similarity scale."""
    timeout_s: float = 30.0
    rerank: Literal["off", "llm"] = "off"
    """"llm": a capable model orders ``rerank_candidates`` retrieved chunks (``answers/rerank.py``)."""
    rerank_candidates: int = 15
    gate: gate.GateConfig = field(default_factory=gate.GateConfig)
    """Answer, abstain or clarify, decided after retrieval (``answers/gate.py``)."""


@dataclass
class Trace:
    question: str
    history: list[dict[str, str]] = field(default_factory=list)
    standalone_query: str = ""
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    passages: list[dict[str, Any]] = field(default_factory=list)
    """The numbered passages as the model read them (``Passage.as_dict``): what an approved answer
    was written against, kept so it can become a fine-tuning example (``tuning/dataset.py``)."""
    passages_removed_instructions: int = 0
    reranked: bool = False
    """True when the model's order of the candidates was applied (``ANSWER_RERANK=llm``)."""
    gate: dict[str, Any] = field(default_factory=dict)
    """The gate's assessment: outcome (answer, abstain, clarify), reason, score."""
    answer: str = ""
    draft: str = ""
    """The model's whole text, verified or not (the shown answer holds only what held up)."""
    streamed: str = ""
    """The token deltas sent to the client, joined (``done.replaced`` compares the answer to it)."""
    rejected: list[dict[str, str]] = field(default_factory=list)
    """Sentences of the draft that were never shown, and why: unsupported, instruction, contact."""
    citations: list[Citation] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    abstain_reason: str = ""
    outcome: str = ""
    """answered, quoted, abstained, clarified or error (``done.outcome``)."""
    language: str = ""
    """The customer's language (ISO 639-1) the fixed messages and the answer are in."""
    error: str = ""
    backend: str = ""
    model: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Passage:
    n: int
    chunk: RetrievedChunk
    text: str
    """What the model reads: the hit with its neighbours, reflowed, planted instructions removed."""
    own_text: str = ""
    """The hit's own text, cleaned the same way: what may be quoted under its citation."""

    def as_dict(self) -> dict[str, Any]:
        c = self.chunk
        return {
            "n": self.n,
            "chunk_id": c.chunk_id,
            "document_id": c.document_id,
            "source": c.source,
            "title": c.title,
            "section": list(c.section),
            "url": c.url,
            "position": c.position,
            "text": self.text,
            "own_text": self.own_text,
        }


@dataclass(frozen=True)
class Reverified:
    """An approved answer checked again, sentence by sentence, against its passages."""

    text: str
    """What holds up, with the verified citation markers (the fine-tuning target)."""
    cited: list[int]
    """Passage numbers it cites, in first-use order."""
    rejected: list[dict[str, str]]
    """Sentences that did not hold up, and why (unsupported, instruction, contact)."""


class AnswerError(ValueError):
    """The question itself is unusable (empty, too long); the message is for the customer."""


class AnswerEngine:
    def __init__(
        self,
        *,
        backend: LLMBackend,
        config: AnswerConfig,
        embed: Any,
        embed_known: Any = None,
        multilingual: Any = None,
    ) -> None:
        """``embed`` turns texts into unit vectors; ``embed_known`` does the same for sentences of
        the knowledge base's own passages, which recur across answers (it may serve them from a
        cache, :meth:`ingestion.embed.CoalescingEmbedder.embed_known`); it defaults to ``embed``.
        ``multilingual`` (``embed_query``, ``embed_passages``) picks the sentences to quote for a
        question in another language, which the English ``embed`` cannot compare."""
        self.backend = backend
        self.config = config
        self._embed = embed
        self._embed_known = embed_known or embed
        self._multilingual = multilingual

    def with_backend(self, backend: LLMBackend) -> AnswerEngine:
        """The same engine generating with ``backend`` (an organization's adapted model)."""
        return AnswerEngine(
            backend=backend,
            config=self.config,
            embed=self._embed,
            embed_known=self._embed_known,
            multilingual=self._multilingual,
        )

    # -- public -------------------------------------------------------------------------------

    def stream(
        self,
        *,
        knowledge_base: KnowledgeBase,
        question: str,
        history: Sequence[Turn] = (),
        trace: Trace,
        tags: Sequence[str] = (),
        language: str | None = None,
    ) -> Iterator[Event]:
        """Answer ``question`` from ``knowledge_base`` only. ``trace`` is filled in as it goes.

        ``tags`` scopes retrieval to documents carrying any of them (a filter inside the vector
        store). ``language`` is the fallback when the question's own language is unclear (the
        conversation's language, the widget's setting)."""
        started = time.perf_counter()
        cfg = self.config
        trace.backend, trace.model = self.backend.name, model_label(self.backend)
        trace.history = [{"role": t.role, "content": t.content} for t in history]
        trace.language = lang.detect(question or "", hint=language).language

        try:
            question = self._validate(question, trace.language)
        except AnswerError as exc:
            trace.error, trace.outcome = str(exc), "error"
            yield events.error(str(exc), handoff=False)
            return
        t = time.perf_counter()
        trace.standalone_query = self._condense(question, history)
        t = lap_into(trace, "condense", t)
        passages = self._retrieve(knowledge_base, trace.standalone_query, trace, tags=tags, language=trace.language)
        t = lap_into(trace, "retrieve", t)
        yield events.sources([self._source(p) for p in passages])

        assessment = gate.assess(
            trace.standalone_query,
            [p.chunk for p in passages],
            history=history,
            config=cfg.gate,
        )
        trace.gate = {
            "outcome": assessment.outcome,
            "reason": assessment.reason,
            "score": round(assessment.score, 4),
            "options": assessment.options,
            "features": assessment.features,
        }
        if assessment.outcome == "abstain":
            yield from self._abstain(trace, assessment.reason or "weak_retrieval", started)
            return
        if assessment.outcome == "clarify":
            yield from self._clarify(trace, assessment, started)
            return

        messages = self._messages(
            question, history, passages, company=knowledge_base.organization.name, language=trace.language
        )
        t = lap_into(trace, "prompt", t)
        yield from self._generate(question, messages, passages, trace, started, t)

    # -- steps --------------------------------------------------------------------------------

    def _validate(self, question: str, language: str) -> str:
        question = re.sub(r"\s+", " ", question or "").strip()
        if not question:
            raise AnswerError(lang.message("empty_question", language))
        if len(question) > self.config.max_question_chars:
            raise AnswerError(
                lang.message(
                    "too_long", language, length=f"{len(question):,}", limit=f"{self.config.max_question_chars:,}"
                )
            )
        return question

    def _condense(self, question: str, history: Sequence[Turn]) -> str:
        trimmed = self._trim_history(history)
        return condense.condense(
            question,
            history,
            mode=self.config.condense,
            backend=self.backend,
            timeout_s=self.config.timeout_s,
            history_text="\n".join(f"{t.role}: {t.content}" for t in trimmed),
        )

    def _retrieve(
        self, kb: KnowledgeBase, query: str, trace: Trace, *, tags: Sequence[str] = (), language: str = ""
    ) -> list[Passage]:
        cfg = self.config
        # A question in another language also searches the multilingual vector (docs/ingestion.md).
        depth = max(cfg.top_k, cfg.rerank_candidates) if cfg.rerank == "llm" else cfg.top_k
        chunks = chunks_search(
            knowledge_base=kb, query=query, limit=depth, tags=list(tags) or None, language=language or None
        )
        if cfg.rerank == "llm":
            started = time.perf_counter()
            chunks, trace.reranked = rerank.rerank(
                query, chunks, backend=self.backend, keep=cfg.top_k, timeout_s=cfg.timeout_s
            )
            trace.timings["rerank"] = round((time.perf_counter() - started) * 1000, 1)
        trace.retrieved = [
            {
                "chunk_id": c.chunk_id,
                "source": c.source,
                "rank": c.rank,
                "score": round(c.score, 5),
                "similarity": round(c.similarity, 4),
            }
            for c in chunks
        ]
        # Merge the chunks before and after each hit for context (one store request for all of
        # them); the cited unit stays the hit.
        neighbours = (
            chunks_neighbours(knowledge_base=kb, chunks=chunks, window=cfg.neighbour_window)
            if cfg.neighbour_window and chunks
            else {}
        )
        passages = []
        for n, chunk in enumerate(chunks, start=1):
            text = chunk.text
            around = neighbours.get(chunk.chunk_id)
            if around:
                before = [t for pos, t in around if pos < chunk.position]
                after = [t for pos, t in around if pos > chunk.position]
                text = "\n".join([*before, text, *after])
            text, removed = guard.neutralize_instructions(text)
            own, _ = guard.neutralize_instructions(chunk.text)
            trace.passages_removed_instructions += removed
            passages.append(Passage(n, chunk, quote.reflow(text), quote.reflow(own)))
        trace.passages = [p.as_dict() for p in passages]
        return passages

    def retrieve(
        self,
        kb: KnowledgeBase,
        question: str,
        history: Sequence[Turn] = (),
        *,
        trace: Trace,
        language: str = "",
        query: str = "",
    ) -> list[Passage]:
        """The numbered passages an answer to ``question`` would be given (condensed with the
        history unless ``query`` is the standalone query already)."""
        trace.standalone_query = query or self._condense(question, history)
        return self._retrieve(kb, trace.standalone_query, trace, language=language)

    def passages_from(self, stored: Sequence[dict[str, Any]]) -> list[Passage]:
        """Passages rebuilt from ``Trace.passages`` (or the same shape from elsewhere); their
        vectors are the embeddings of each hit's own text, as verification needs."""
        if not stored:
            return []
        vectors = self._embed_known([str(d.get("own_text") or d["text"]) for d in stored])
        out = []
        for d, vector in zip(stored, vectors, strict=True):
            chunk = RetrievedChunk(
                chunk_id=str(d.get("chunk_id", "")),
                document_id=int(d.get("document_id") or 0),
                source=str(d.get("source", "")),
                title=str(d.get("title", "")),
                section=tuple(str(x) for x in d.get("section") or ()),
                url=str(d.get("url", "")),
                position=int(d.get("position") or 0),
                text=str(d.get("own_text") or d["text"]),
                rank=int(d["n"]),
                score=0.0,
                similarity=0.0,
                vector=tuple(float(x) for x in vector),
            )
            out.append(Passage(int(d["n"]), chunk, str(d["text"]), str(d.get("own_text") or d["text"])))
        return out

    def reverify(self, passages: list[Passage], text: str) -> Reverified:
        """Check ``text`` as the answer stream checks a draft (the same sentence gate): each
        sentence must be supported by a passage; citation markers are re-attached to the ones
        that support it. Used on approved answers before they become training examples."""
        trace = Trace(question="")
        gate_ = _SentenceGate(self, passages, trace)
        sentences, rest = _complete_sentences(text.strip() + "\n")
        for sentence in sentences:
            gate_.offer(sentence)
            if gate_.stop == "model_declined":
                break
        gate_.offer(rest, final=True)
        return Reverified(gate_.shown_text(), list(gate_.used), list(trace.rejected))

    def prompt_messages(
        self, question: str, history: Sequence[Turn], passages: list[Passage], *, company: str, language: str = "en"
    ) -> list[ChatMessage]:
        """The chat messages the model is given for ``question``: the system prompt, the recent
        history and the numbered passages, exactly as an answer is generated."""
        return self._messages(question, history, passages, company=company, language=language)

    def _trim_history(self, history: Sequence[Turn]) -> list[Turn]:
        kept: list[Turn] = []
        budget = self.config.history_tokens
        for turn in reversed(history):
            cost = self.backend.count_tokens(turn.content) + 4
            if cost > budget:
                break
            budget -= cost
            kept.append(turn)
        return list(reversed(kept))

    def _messages(
        self, question: str, history: Sequence[Turn], passages: list[Passage], *, company: str, language: str = "en"
    ) -> list[ChatMessage]:
        cfg = self.config
        system = prompts.render(
            "system", company=company, no_answer=NO_ANSWER, language=lang.NAMES.get(language, "English")
        )
        budget = cfg.context_tokens
        window = self.backend.context_window
        if window:
            budget = min(budget, window - cfg.max_answer_tokens - self.backend.count_tokens(system + question) - 64)
        blocks: list[str] = []
        for p in passages:
            block = prompts.render(
                "passage",
                n=p.n,
                title=prompts.quote_attribute(p.chunk.title),
                section=prompts.quote_attribute(p.chunk.section_label),
                text=prompts.quote_text(p.text),
            )
            cost = self.backend.count_tokens(block)
            if cost > budget:
                if not blocks:  # always give the model the best passage, shortened to fit
                    blocks.append(block[: max(200, budget * 3)])
                break
            budget -= cost
            blocks.append(block)
        user = prompts.render("passages", passages="\n".join(blocks), question=question)
        turns = [ChatMessage(t.role, t.content) for t in self._trim_history(history)]
        return [ChatMessage("system", system), *turns, ChatMessage("user", user)]

    def _generate(
        self,
        question: str,
        messages: list[ChatMessage],
        passages: list[Passage],
        trace: Trace,
        started: float,
        t: float,
    ) -> Iterator[Event]:
        """Stream the model's draft a sentence at a time: each sentence is held until it is
        verified against the passages and emitted with its citation; what fails is never shown.
        So the text the customer watched appear is the final answer (``done.replaced`` is false)."""
        cfg = self.config
        leak = guard.LeakGuard(messages[0].content, allowed=NO_ANSWER)
        gate_ = _SentenceGate(self, passages, trace)

        def visible(text: str) -> Event:
            """A token event for text now shown; the first one stamps ``timings.first_sentence``."""
            trace.timings.setdefault("first_sentence", round((time.perf_counter() - started) * 1000, 1))
            return events.token(text)

        draft: list[str] = []
        buffer = ""
        stop = ""
        params = GenerationParams(max_tokens=cfg.max_answer_tokens, timeout_s=cfg.timeout_s)
        stream = self.backend.stream(messages, params)
        try:
            for delta in stream:
                if "first_token" not in trace.timings:
                    trace.timings["first_token"] = round((time.perf_counter() - started) * 1000, 1)
                safe = leak.feed(delta)
                if leak.leaked:
                    stop = "prompt_leak"
                    break
                draft.append(safe)
                buffer += safe
                sentences, buffer = _complete_sentences(buffer)
                for sentence in sentences:
                    for out in gate_.offer(sentence):
                        yield visible(out)
                    stop = gate_.stop
                    if stop:
                        break
                if stop:
                    break
            if not stop:
                tail = leak.flush()
                draft.append(tail)
                for out in gate_.offer(buffer + tail, final=True):
                    yield visible(out)
                stop = gate_.stop
        except LLMUnavailable as exc:
            trace.error = str(exc)
            trace.abstained, trace.abstain_reason, trace.outcome = True, "llm_unavailable", "error"
            trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
            trace.draft = "".join(draft).strip()
            yield events.error(lang.message("unavailable", trace.language), handoff=True)
            return
        finally:
            stream.close()
        t = lap_into(trace, "generate", t)
        usage = stream.usage
        if usage:
            trace.prompt_tokens, trace.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        trace.draft = "".join(draft).strip()
        trace.timings["verify"] = round(gate_.verify_ms, 1)
        shown = gate_.shown_text()
        if shown:
            trace.answer = trace.streamed = shown
            trace.citations = [self._citation(gate_.by_n[n], inferred=n in gate_.inferred) for n in gate_.used]
            trace.dropped_citations = sorted(gate_.dropped - set(gate_.used))
            trace.outcome = "answered"
            yield events.citations(trace.citations, trace.dropped_citations)
            trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
            yield events.done(self._done(trace))
            return
        trace.dropped_citations = sorted(gate_.dropped)
        if stop in ("prompt_leak", "model_declined"):
            yield from self._abstain(trace, stop, started)
            return
        quoted = self._extract(question, passages, language=trace.language)
        if quoted is None:
            yield from self._abstain(trace, "unsupported", started)
            return
        # No sentence of the draft held up, but a passage answers the question: quote it, cited.
        text, n = quoted
        if trace.language != lang.DEFAULT:
            text = f"{lang.message('quote_preface', trace.language)}\n{text}"
        trace.answer = trace.streamed = text
        trace.abstain_reason, trace.outcome = "quoted", "quoted"
        trace.citations = [self._citation(gate_.by_n[n], inferred=False)]
        yield visible(text)
        yield events.citations(trace.citations, trace.dropped_citations)
        trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield events.done(self._done(trace))

    def _extract(self, question: str, passages: list[Passage], *, language: str = "en") -> tuple[str, int] | None:
        """(complete passage sentences that best answer the question with their citation, passage
        number), or None when no sentence is similar enough (``extract_min_similarity``).

        Only readable sentences of the hit's own text qualify (:func:`quote.readable`), after
        planted instructions were removed from it; the quote runs on from the best sentence
        through the next readable ones of the same passage, up to three."""
        candidates: list[tuple[int, int, str]] = []
        for p in passages[: self.config.extract_passages]:
            sentences = quote.readable_sentences(p.own_text)
            candidates += [(p.n, i, x) for i, x in enumerate(sentences) if quote.readable(x)]
        if not candidates:
            return None
        texts = [quote.plain(x) for _, _, x in candidates]
        threshold = self.config.extract_min_similarity
        if language != lang.DEFAULT and self._multilingual is not None:
            # The question is in another language than the passages: compare across languages.
            similarity = self._multilingual.embed_passages(texts) @ self._multilingual.embed_query(question)
            threshold = self.config.extract_multilingual_similarity
        else:
            similarity = self._embed_known(texts) @ self._embed([question])[0]
        # Meaning first; then the question's own words, a label or table row the question names
        # ("Blinking amber: ..." for "what does blinking amber mean?"), and the better-ranked hit.
        asked = content_words(question)
        spoken = " " + re.sub(r"\W+", " ", question.lower()) + " "
        scores = []
        for (n, _, x), sim in zip(candidates, similarity, strict=True):
            label = re.match(r"^\W*([^:]{2,40}):\s", quote.plain(x))
            names_label = bool(label and " " + re.sub(r"\W+", " ", label.group(1).lower()).strip() + " " in spoken)
            overlap = len(asked & content_words(x)) / len(asked) if asked else 0.0
            eligible = float(sim) + 0.2 * names_label >= threshold
            bonus = 0.05 if n == passages[0].n else 0.0
            scores.append(float(sim) + 0.2 * names_label + 0.25 * overlap + bonus if eligible else -1.0)
        best = int(np.argmax(scores))
        if scores[best] < 0:
            return None
        n, first, _ = candidates[best]
        following = [(i, x) for m, i, x in candidates if m == n and i >= first]
        run = [following[0][1]]
        for (prev, _), (i, x) in itertools.pairwise(following):
            if i != prev + 1 or len(run) == 3:
                break
            run.append(x)
        return f"{' '.join(run)} [{n}]", n

    def _abstain(self, trace: Trace, reason: str, started: float) -> Iterator[Event]:
        trace.abstained, trace.abstain_reason, trace.outcome = True, reason, "abstained"
        trace.citations = []
        message = lang.message("abstain", trace.language)
        trace.answer = trace.streamed = message
        yield events.token(message)
        yield events.citations([], trace.dropped_citations)
        trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield events.done(self._done(trace))

    def _clarify(self, trace: Trace, assessment: gate.Assessment, started: float) -> Iterator[Event]:
        """One short question back instead of a guess: which of the candidates the customer means."""
        trace.outcome, trace.abstain_reason = "clarified", assessment.reason or "ambiguous"
        options = [o for o in assessment.options if o][:3]
        if len(options) >= 2:
            message = lang.message("clarify", trace.language, options=lang.join_options(options, trace.language))
        else:
            message = lang.message("clarify_open", trace.language)
        trace.answer = trace.streamed = message
        yield events.token(message)
        yield events.citations([], [])
        trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield events.done(self._done(trace))

    # -- shapes -------------------------------------------------------------------------------

    @staticmethod
    def _source(p: Passage) -> Source:
        c = p.chunk
        return Source(
            n=p.n,
            chunk_id=c.chunk_id,
            source=c.source,
            title=c.title,
            section=c.section_label,
            url=c.url,
            score=round(c.score, 5),
            similarity=round(c.similarity, 4),
            snippet=c.text[:300],
        )

    @staticmethod
    def _citation(p: Passage, *, inferred: bool) -> Citation:
        c = p.chunk
        return Citation(n=p.n, source=c.source, title=c.title, section=c.section_label, url=c.url, inferred=inferred)

    @staticmethod
    def _done(trace: Trace) -> DoneData:
        return DoneData(
            outcome=cast(Outcome, trace.outcome or "answered"),
            language=trace.language or lang.DEFAULT,
            abstained=trace.abstained,
            reason=trace.abstain_reason,
            answer=trace.answer,
            replaced=trace.answer != trace.streamed,
            usage={"prompt_tokens": trace.prompt_tokens, "completion_tokens": trace.completion_tokens},
            timings=dict(trace.timings),
            backend=trace.backend,
            model=trace.model,
        )


def model_label(backend: LLMBackend) -> str:
    """The model as traces name it: the base model, plus the LoRA adapter applied to it if any."""
    adapter = getattr(backend, "adapter_name", "")
    base = getattr(backend, "base_model", "") or backend.model
    return f"{base} + {adapter}" if adapter else backend.model


def lap_into(trace: Trace, stage: str, since: float) -> float:
    now = time.perf_counter()
    trace.timings[stage] = round((now - since) * 1000, 1)
    return now


# A sentence ends at . ! ? (with any citation markers after it) followed by the start of the next
# one, or at a line break (left to the next sentence, which then starts a new line: numbered
# steps stay one per line). A period after a digit ("1. Open", "2.4 GHz") ends nothing.
_BOUNDARY = re.compile(r"(?<=[^\s\d])[.!?]+[\"')]*(?:\s*\[\d{1,2}\])*(?=\s+[^\s\[])|(?<=\S)(?=\n)")


_LIST_MARKER = re.compile(r"^(?:\d{1,2}[.)]|[-*\u2022])\s+")


def _complete_sentences(buffer: str) -> tuple[list[str], str]:
    """(the sentences ``buffer`` completes, what is left of it). A sentence keeps the whitespace
    before it, which says whether it starts a new line."""
    sentences: list[str] = []
    start = 0
    for m in _BOUNDARY.finditer(buffer):
        piece = buffer[start : m.end()]
        if piece.strip():
            sentences.append(piece)
        start = m.end()
    return sentences, buffer[start:]


class _SentenceGate:
    """Decides, sentence by sentence, what of the model's draft the customer sees.

    A substantive sentence is shown only when verification supports it, with its surviving
    (or inferred) citation markers; a short lead-in ("Sure!", "To do this:") waits for the next
    supported sentence and goes with it, or never appears. Sentences addressed to an assistant,
    and sentences that send the customer to a link, address or number no passage contains, are
    rejected outright. Two rejected sentences before anything was shown stop the generation
    (``stop`` = "unsupported"), so the quote fallback starts early."""

    def __init__(self, engine: AnswerEngine, passages: list[Passage], trace: Trace) -> None:
        self.engine = engine
        self.passages = passages
        self.trace = trace
        self.by_n = {p.n: p for p in passages}
        self.vectors = np.asarray([p.chunk.vector for p in passages], dtype=np.float32)
        self.all_text = "\n".join(p.text for p in passages)
        self.shown: list[str] = []
        self.held: list[tuple[str, str, list[int], list[int]]] = []
        """Sentences waiting for the next supported one: (as written, as shown, cited, inferred)."""
        self.explicit: set[int] = set()
        self.used: list[int] = []
        self.inferred: set[int] = set()
        self.dropped: set[int] = set()
        self.rejected_in_a_row = 0
        self.stop = ""
        self.verify_ms = 0.0

    def shown_text(self) -> str:
        return "".join(self.shown).strip()

    def _reject(self, sentence: str, why: str) -> None:
        self.trace.rejected.append({"text": sentence.strip()[:300], "why": why})
        if not self.shown:
            self.rejected_in_a_row += 1
            if self.rejected_in_a_row >= 2:
                self.stop = "unsupported"

    def offer(self, sentence: str, *, final: bool = False) -> list[str]:
        if not sentence.strip():
            return []
        plain = strip_citations(sentence).strip()
        if _NO_ANSWER_PATTERNS.search(plain):
            self.stop = "model_declined" if not self.shown else "done"
            return []
        if guard.instruction_like(plain):
            self._reject(sentence, "instruction")
            return []
        if guard.novel_contacts(plain, self.all_text):
            self._reject(sentence, "contact")
            return []
        cfg = self.engine.config
        if len(re.findall(r"\w+", plain)) < cfg.thresholds.min_sentence_words:
            if not final and len(self.held) < 3:
                self.held.append((sentence, strip_citations(sentence).strip(), [], []))
            return []
        started = time.perf_counter()
        check = verify(
            _LIST_MARKER.sub("", sentence.strip()),  # "1. Open ..." is checked as "Open ..."
            passages=[p.text for p in self.passages],
            passage_vectors=self.vectors,
            embed=self.engine._embed,
            thresholds=cfg.thresholds,
        )
        self.verify_ms += (time.perf_counter() - started) * 1000
        self.dropped.update(check.dropped)
        result = check.sentences[0] if check.sentences else None
        if result is None or not result.supported:
            self._reject(sentence, "unsupported")
            self.held.clear()
            return []
        marks = result.kept or result.inferred
        body = plain + "".join(f" [{n}]" for n in marks)
        item = (sentence, body, list(result.kept), list(result.inferred if not result.kept else []))
        if plain.endswith(":"):
            # "Follow these steps:" is shown only with the first step that holds up after it.
            if not final and len(self.held) < 3:
                self.held.append(item)
            return []
        out: list[str] = []
        for lead, text, kept, inferred in [*self.held, item]:
            for n in [*kept, *inferred]:
                if n not in self.used:
                    self.used.append(n)
            self.explicit.update(kept)
            separator = "\n" if "\n" in lead[: len(lead) - len(lead.lstrip())] else " "
            out.append((separator if self.shown or out else "") + text)
        self.inferred = set(self.used) - self.explicit
        self.held.clear()
        self.shown.extend(out)
        return out
