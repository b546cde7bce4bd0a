"""The answer pipeline, as plain Python: condense -> retrieve -> prompt -> generate -> verify.

:meth:`AnswerEngine.stream` yields the events of :mod:`resolvo.answers.events` (the contract,
order included, is described there). Every step writes what it did to the run's :class:`Trace`.
The engine knows nothing about HTTP; the widget, the agents' drafts and the commands all consume
these events.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from resolvo.answers import events, guard, prompts
from resolvo.answers.events import Citation, DoneData, Event, Source
from resolvo.answers.llm.base import ChatMessage, GenerationParams, LLMBackend, LLMUnavailable
from resolvo.answers.verify import Thresholds, sentences_of, verify
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
    condense: Literal["llm", "concat", "off"] = "llm"
    extract_passages: int = 3
    extract_min_similarity: float = 0.55
    timeout_s: float = 30.0


@dataclass
class Trace:
    question: str
    history: list[dict[str, str]] = field(default_factory=list)
    standalone_query: str = ""
    retrieved: list[dict[str, Any]] = field(default_factory=list)
    passages_removed_instructions: int = 0
    answer: str = ""
    draft: str = ""
    """The model's own text when verification replaced it with quoted passage sentences."""
    streamed: str = ""
    """The token deltas sent to the client, joined (``done.replaced`` compares the answer to it)."""
    citations: list[Citation] = field(default_factory=list)
    dropped_citations: list[int] = field(default_factory=list)
    abstained: bool = False
    abstain_reason: str = ""
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


class AnswerError(ValueError):
    """The question itself is unusable (empty, too long); the message is for the customer."""


class AnswerEngine:
    def __init__(self, *, backend: LLMBackend, config: AnswerConfig, embed: Any, embed_known: Any = None) -> None:
        """``embed`` turns texts into unit vectors; ``embed_known`` does the same for sentences of
        the knowledge base's own passages, which recur across answers (it may serve them from a
        cache, :meth:`ingestion.embed.CoalescingEmbedder.embed_known`); it defaults to ``embed``."""
        self.backend = backend
        self.config = config
        self._embed = embed
        self._embed_known = embed_known or embed

    # -- public -------------------------------------------------------------------------------

    def stream(
        self, *, knowledge_base: KnowledgeBase, question: str, history: Sequence[Turn] = (), trace: Trace
    ) -> Iterator[Event]:
        """Answer ``question`` from ``knowledge_base`` only. ``trace`` is filled in as it goes."""
        started = time.perf_counter()
        cfg = self.config
        trace.backend, trace.model = self.backend.name, self.backend.model
        trace.history = [{"role": t.role, "content": t.content} for t in history]

        def lap(stage: str, since: float) -> float:
            now = time.perf_counter()
            trace.timings[stage] = round((now - since) * 1000, 1)
            return now

        try:
            question = self._validate(question)
        except AnswerError as exc:
            trace.error = str(exc)
            yield events.error(str(exc), handoff=False)
            return
        t = time.perf_counter()
        trace.standalone_query = self._condense(question, history)
        t = lap("condense", t)
        passages = self._retrieve(knowledge_base, trace.standalone_query, trace)
        t = lap("retrieve", t)
        yield events.sources([self._source(p) for p in passages])

        if not passages or max(p.chunk.similarity for p in passages) < cfg.min_retrieval_similarity:
            yield from self._abstain(trace, "weak_retrieval", started)
            return

        messages = self._messages(question, history, passages, company=knowledge_base.organization.name)
        t = lap("prompt", t)
        no_answer_guard = guard.LeakGuard(messages[0].content, allowed=NO_ANSWER)
        pieces: list[str] = []
        stream = self.backend.stream(
            messages, GenerationParams(max_tokens=cfg.max_answer_tokens, timeout_s=cfg.timeout_s)
        )
        try:
            for delta in stream:
                if "first_token" not in trace.timings:
                    trace.timings["first_token"] = round((time.perf_counter() - started) * 1000, 1)
                safe = no_answer_guard.feed(delta)
                if no_answer_guard.leaked:
                    break
                if safe:
                    pieces.append(safe)
                    yield events.token(safe)
            tail = no_answer_guard.flush()
            if tail:
                pieces.append(tail)
                yield events.token(tail)
        except LLMUnavailable as exc:
            trace.error = str(exc)
            trace.abstained, trace.abstain_reason = True, "llm_unavailable"
            trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
            yield events.error(prompts.template("unavailable"), handoff=True)
            return
        finally:
            stream.close()
            trace.streamed = "".join(pieces).strip()
        t = lap("generate", t)
        usage = stream.usage
        if usage:
            trace.prompt_tokens, trace.completion_tokens = usage.prompt_tokens, usage.completion_tokens
        answer = "".join(pieces).strip()
        if no_answer_guard.leaked:
            trace.answer = answer
            yield from self._abstain(trace, "prompt_leak", started, citations_first=True)
            return
        yield from self._finish(question, answer, passages, trace, started, t)

    # -- steps --------------------------------------------------------------------------------

    def _validate(self, question: str) -> str:
        question = re.sub(r"\s+", " ", question or "").strip()
        if not question:
            raise AnswerError("Please type a question.")
        if len(question) > self.config.max_question_chars:
            raise AnswerError(
                f"Your question is too long ({len(question):,} characters). Please keep it under "
                f"{self.config.max_question_chars:,} characters, or ask to talk to a person."
            )
        return question

    def _condense(self, question: str, history: Sequence[Turn]) -> str:
        users = [t.content for t in history if t.role == "user"]
        if not users or self.config.condense == "off":
            return question
        concat = f"{users[-1]} {question}"
        if self.config.condense == "concat":
            return concat
        text = "\n".join(f"{t.role}: {t.content}" for t in self._trim_history(history))
        prompt = prompts.render("condense", history=text, question=question)
        try:
            with self.backend.stream(
                [ChatMessage("user", prompt)], GenerationParams(max_tokens=48, timeout_s=self.config.timeout_s)
            ) as s:
                rewritten = "".join(s).strip().split("\n")[0].strip()
        except LLMUnavailable:
            return concat
        # A small model may drift: keep the rewrite only if it stays close to the conversation.
        known = set(re.findall(r"\w+", (text + " " + question).lower()))
        words = re.findall(r"\w+", rewritten.lower())
        if (
            not words
            or len(words) > 3 * len(re.findall(r"\w+", concat))
            or sum(w in known for w in words) / len(words) < 0.6
        ):
            return concat
        return rewritten

    def _retrieve(self, kb: KnowledgeBase, query: str, trace: Trace) -> list[Passage]:
        cfg = self.config
        chunks = chunks_search(knowledge_base=kb, query=query, limit=cfg.top_k)
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
            trace.passages_removed_instructions += removed
            passages.append(Passage(n, chunk, text))
        return passages

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
        self, question: str, history: Sequence[Turn], passages: list[Passage], *, company: str
    ) -> list[ChatMessage]:
        cfg = self.config
        system = prompts.render("system", company=company, no_answer=NO_ANSWER)
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

    def _finish(
        self, question: str, answer: str, passages: list[Passage], trace: Trace, started: float, t: float
    ) -> Iterator[Event]:
        cfg = self.config
        trace.answer = answer
        if not answer or _NO_ANSWER_PATTERNS.search(answer):
            yield from self._abstain(trace, "model_declined", started, citations_first=True)
            return
        vectors = np.asarray([p.chunk.vector for p in passages], dtype=np.float32)
        check = verify(
            answer,
            passages=[p.text for p in passages],
            passage_vectors=vectors,
            embed=self._embed,
            thresholds=cfg.thresholds,
        )
        trace.timings["verify"] = round((time.perf_counter() - t) * 1000, 1)
        by_n = {p.n: p for p in passages}
        citations = [
            self._citation(by_n[n], inferred=not any(n in s.kept for s in check.sentences)) for n in check.used
        ]
        trace.dropped_citations = check.dropped
        if check.supported_fraction < cfg.thresholds.support_fraction or not citations:
            quoted = self._extract(question, passages)
            if quoted is None:
                yield from self._abstain(trace, "unsupported", started, citations_first=True)
                return
            # The model's draft failed verification, but a passage answers the question: quote
            # it, cited, instead of abstaining. ``done.answer`` replaces the streamed draft.
            trace.draft, trace.answer = answer, quoted[0]
            trace.abstain_reason = "quoted"
            citations = [self._citation(by_n[quoted[1]], inferred=False)]
        trace.citations = citations
        yield events.citations(citations, check.dropped)
        trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        yield events.done(self._done(trace))

    def _extract(self, question: str, passages: list[Passage]) -> tuple[str, int] | None:
        """(quoted sentences with their citation, passage number) that best answer the question,
        or None when no sentence is similar enough (``extract_min_similarity``)."""
        candidates: list[tuple[int, int, str]] = []
        for p in passages[: self.config.extract_passages]:
            sentences = [x for x in sentences_of(p.chunk.text) if len(x.split()) >= 4]
            candidates += [(p.n, i, x) for i, x in enumerate(sentences)]
        if not candidates:
            return None
        question_vector = self._embed([question])[0]
        similarity = self._embed_known([x for _, _, x in candidates]) @ question_vector
        best = int(np.argmax(similarity))
        if float(similarity[best]) < self.config.extract_min_similarity:
            return None
        n, first, _ = candidates[best]
        quoted = " ".join(x for m, i, x in candidates if m == n and first <= i < first + 3)
        return f"{quoted} [{n}]", n

    def _abstain(self, trace: Trace, reason: str, started: float, *, citations_first: bool = False) -> Iterator[Event]:
        trace.abstained, trace.abstain_reason = True, reason
        trace.citations = []
        message = prompts.template("abstain")
        if not citations_first:
            trace.streamed = message
            yield events.token(message)
        yield events.citations([], trace.dropped_citations)
        trace.timings["total"] = round((time.perf_counter() - started) * 1000, 1)
        done = self._done(trace)
        done["answer"] = message
        done["replaced"] = message != trace.streamed
        yield events.done(done)

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
            abstained=trace.abstained,
            reason=trace.abstain_reason,
            answer=trace.answer,
            replaced=trace.answer != trace.streamed,
            usage={"prompt_tokens": trace.prompt_tokens, "completion_tokens": trace.completion_tokens},
            timings=dict(trace.timings),
            backend=trace.backend,
            model=trace.model,
        )
