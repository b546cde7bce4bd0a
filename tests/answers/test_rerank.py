"""LLM-assisted retrieval (ANSWER_RERANK=llm): the model's order of the candidates is applied."""

from __future__ import annotations

from typing import Any

from tests.answers.scripted import Scripted

QUESTION = "What does a blinking amber status light on the hub mean?"


def candidates(kb: Any) -> list[Any]:
    from resolvo.knowledge.selectors import chunks_search

    return chunks_search(knowledge_base=kb, query=QUESTION, limit=8)


def test_the_models_order_is_kept_and_filled_up_from_retrieval(lumen_kb: Any) -> None:
    from resolvo.answers.rerank import rerank

    chunks = candidates(lumen_kb)
    picked, applied = rerank(QUESTION, chunks, backend=Scripted("4, 2"), keep=3, timeout_s=5)
    assert applied and [c.chunk_id for c in picked] == [chunks[3].chunk_id, chunks[1].chunk_id, chunks[0].chunk_id]


def test_a_reply_naming_nothing_usable_keeps_the_retrieval_order(lumen_kb: Any) -> None:
    from resolvo.answers.rerank import rerank

    chunks = candidates(lumen_kb)
    for reply in ("I think the first one.", "0, 99", ""):
        picked, applied = rerank(QUESTION, chunks, backend=Scripted(reply), keep=3, timeout_s=5)
        assert not applied and [c.chunk_id for c in picked] == [c.chunk_id for c in chunks[:3]]


def test_the_engine_reranks_only_when_configured(lumen_kb: Any, settings: Any) -> None:
    from resolvo.answers.engine import Trace
    from tests.answers.scripted import engine_with

    engine = engine_with(Scripted("2"))
    trace = Trace(question=QUESTION)
    engine._retrieve(lumen_kb, QUESTION, trace)
    assert not trace.reranked and "rerank" not in trace.timings  # off by default
    settings.ANSWER_RERANK = "llm"
    engine = engine_with(Scripted("2"))
    trace = Trace(question=QUESTION)
    passages = engine._retrieve(lumen_kb, QUESTION, trace)
    assert trace.reranked and passages[0].chunk.chunk_id == candidates(lumen_kb)[1].chunk_id
    assert [p.n for p in passages] == list(range(1, len(passages) + 1))
