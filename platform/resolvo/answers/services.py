"""Answering entry points: build the engine from settings, stream an answer, store its trace."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from django.conf import settings

from resolvo.answers.engine import AnswerConfig, AnswerEngine, Trace, Turn
from resolvo.answers.events import Citation, Event, Source, Usage
from resolvo.answers.gate import GateConfig
from resolvo.answers.llm.base import LLMBackend
from resolvo.answers.llm.factory import make_backend
from resolvo.answers.llm.transformers_backend import available_cpus
from resolvo.answers.models import AnswerTrace
from resolvo.answers.verify import Thresholds
from resolvo.knowledge.models import KnowledgeBase
from resolvo.observability.metrics import answer_trace_saved

_lock = threading.Lock()
_engine: AnswerEngine | None = None
_adapted: dict[str, AnswerEngine] = {}


@dataclass(frozen=True)
class Adapter:
    """A LoRA adapter an organization's answers use (``tuning``): the name an OpenAI-compatible
    server serves it under, and the folder it was saved in."""

    name: str
    path: str


def answer_config() -> AnswerConfig:
    return AnswerConfig(
        top_k=settings.ANSWER_TOP_K,
        max_answer_tokens=settings.ANSWER_MAX_TOKENS,
        context_tokens=settings.ANSWER_CONTEXT_TOKENS,
        min_retrieval_similarity=settings.ANSWER_MIN_RETRIEVAL_SIMILARITY,
        extract_min_similarity=settings.ANSWER_EXTRACT_SIMILARITY,
        extract_multilingual_similarity=settings.ANSWER_EXTRACT_MULTILINGUAL_SIMILARITY,
        thresholds=Thresholds(
            cite_similarity=settings.ANSWER_CITE_SIMILARITY,
            cite_containment=settings.ANSWER_CITE_CONTAINMENT,
            support_fraction=settings.ANSWER_SUPPORT_FRACTION,
        ),
        condense=cast(Literal["carry", "llm", "concat", "off"], settings.ANSWER_CONDENSE),
        timeout_s=settings.LLM_TIMEOUT,
        gate=GateConfig.from_settings(),
        rerank=cast(Literal["off", "llm"], settings.ANSWER_RERANK),
        rerank_candidates=settings.ANSWER_RERANK_CANDIDATES,
    )


def llm_backend() -> LLMBackend:
    return make_backend(
        backend=settings.LLM_BACKEND,
        model=settings.LLM_MODEL,
        base_url=settings.LLM_BASE_URL or None,
        api_key=settings.LLM_API_KEY,
        device=settings.LLM_DEVICE,
        tokenizer=settings.LLM_TOKENIZER,
        context_window=settings.LLM_CONTEXT_WINDOW,
        threads=settings.LLM_THREADS or available_cpus(),
    )


def answer_engine(*, adapter: Adapter | None = None) -> AnswerEngine:
    """The process-wide engine (the model loads on first use, not here); with ``adapter``, the
    same engine generating with that LoRA adapter applied to the configured model."""
    base = _base_engine()
    if adapter is None:
        return base
    with _lock:
        engine = _adapted.get(adapter.path)
        if engine is None:
            with_adapter = getattr(base.backend, "with_adapter", None)
            if with_adapter is None:
                raise ValueError(f"the {base.backend.name} backend cannot apply a LoRA adapter")
            engine = _adapted[adapter.path] = base.with_backend(with_adapter(adapter.name, adapter.path))
        return engine


def answer_engine_for(organization_id: int) -> AnswerEngine:
    """The engine an organization's answers use: with its promoted adapter, if it has one."""
    from resolvo.tuning.selectors import promoted_adapter

    return answer_engine(adapter=promoted_adapter(organization_id=organization_id))


def _base_engine() -> AnswerEngine:
    global _engine
    with _lock:
        if _engine is None:
            from resolvo.knowledge import vectors

            embedder = vectors.answer_embedder()
            _engine = AnswerEngine(
                backend=llm_backend(),
                config=answer_config(),
                embed=embedder.embed_documents,
                embed_known=embedder.embed_known,
                multilingual=vectors.multilingual_embedder(),
            )
        return _engine


def answer_engine_reset() -> None:
    """Forget the engine so the next call rebuilds it from settings (tests, reconfiguration).

    The backend's loaded model is cached separately by the backend module, so this is cheap."""
    global _engine
    with _lock:
        _engine = None
        _adapted.clear()


def answer_stream(
    *,
    knowledge_base: KnowledgeBase,
    question: str,
    history: Sequence[Turn] = (),
    channel: str = "api",
    engine: AnswerEngine | None = None,
    tags: Sequence[str] = (),
    language: str | None = None,
) -> Iterator[Event]:
    """Stream an answer and store its trace when the stream ends (or is abandoned). ``tags``
    scopes retrieval to documents with any of them (checked by the caller); empty: unscoped."""
    trace = Trace(question=question)
    engine = engine or answer_engine_for(knowledge_base.organization_id)
    saved: dict[str, int] = {}
    scope: dict[str, Any] = {"tags": tuple(tags)} if tags else {}  # unscoped calls stay as they were
    if language:
        scope["language"] = language  # the fallback when the question's own language is unclear
    try:
        for event in engine.stream(
            knowledge_base=knowledge_base, question=question, history=history, trace=trace, **scope
        ):
            if event.type == "done" or event.type == "error":
                record = _save(knowledge_base, trace, channel)
                saved["id"] = record.pk
                if event.type == "done":
                    event.as_done()["trace_id"] = record.pk
                else:
                    event.as_error()["trace_id"] = record.pk
            yield event
    finally:
        if "id" not in saved:
            trace.error = trace.error or "stream abandoned by the client"
            _save(knowledge_base, trace, channel)


def _save(kb: KnowledgeBase, trace: Trace, channel: str) -> AnswerTrace:
    record = AnswerTrace.objects.create(
        organization_id=kb.organization_id,
        knowledge_base=kb,
        channel=channel,
        question=trace.question[:20000],
        history=trace.history,
        standalone_query=trace.standalone_query,
        retrieved=trace.retrieved,
        passages=trace.passages,
        answer=trace.answer,
        draft=trace.draft,
        citations=trace.citations,
        dropped_citations=trace.dropped_citations,
        abstained=trace.abstained,
        outcome=trace.outcome,
        language=trace.language,
        gate=trace.gate,
        abstain_reason=trace.abstain_reason,
        error=trace.error,
        backend=trace.backend,
        model=trace.model,
        prompt_tokens=trace.prompt_tokens,
        completion_tokens=trace.completion_tokens,
        timings=trace.timings,
    )
    answer_trace_saved(record)  # metrics: outcome, per-stage latency, tokens (docs/observability.md)
    return record


@dataclass
class AnswerResult:
    answer: str = ""
    abstained: bool = False
    reason: str = ""
    outcome: str = ""
    """``done.outcome``: answered, quoted, abstained or clarified ("" after an error)."""
    language: str = ""
    error: str = ""
    citations: list[Citation] = field(default_factory=list)
    sources: list[Source] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    usage: Usage = field(default_factory=lambda: Usage(prompt_tokens=0, completion_tokens=0))
    trace_id: int | None = None
    streamed: str = ""
    """The token deltas as streamed."""
    replaced: bool = False
    """``done.replaced``: the answer is not the streamed text (show ``answer``)."""
    handoff: bool = False


def answer_collect(
    *,
    knowledge_base: KnowledgeBase,
    question: str,
    history: Sequence[Turn] = (),
    channel: str = "api",
    on_token: Callable[[str], None] | None = None,
    tags: Sequence[str] = (),
    language: str | None = None,
    engine: AnswerEngine | None = None,
) -> AnswerResult:
    """Run the stream to the end and gather it into one result (commands, evaluation).

    ``on_token`` sees each delta as it arrives, for callers that show the answer live; ``engine``
    replaces the organization's (the tuning gate answers with a candidate adapter)."""
    result = AnswerResult()
    streamed: list[str] = []
    for event in answer_stream(
        knowledge_base=knowledge_base,
        question=question,
        history=history,
        channel=channel,
        tags=tags,
        language=language,
        engine=engine,
    ):
        data: Any = event.data
        if event.type == "sources":
            result.sources = data["sources"]
        elif event.type == "token":
            streamed.append(data["text"])
            if on_token:
                on_token(data["text"])
        elif event.type == "citations":
            result.citations = data["citations"]
        elif event.type == "done":
            done = event.as_done()
            result.abstained, result.reason = done["abstained"], done["reason"]
            result.outcome, result.language = done["outcome"], done["language"]
            result.answer, result.replaced = done["answer"], done["replaced"]
            result.timings, result.usage = done["timings"], done["usage"]
            result.trace_id = done.get("trace_id")
        elif event.type == "error":
            error = event.as_error()
            result.error = result.answer = error["message"]
            result.abstained, result.reason = True, "error"
            result.handoff = error["handoff"]
            result.trace_id = error.get("trace_id")
    result.streamed = "".join(streamed).strip()
    return result
