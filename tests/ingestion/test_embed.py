"""The coalescing embedder: the same vectors as direct calls, shared model calls under
concurrency, questions ahead of background work, and the knowledge-text cache."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from ingestion.embed import CoalescingEmbedder
from tests.ingestion.bundled_models import embedder as minilm

QUESTIONS = [f"How do I reset device number {i} to its factory settings?" for i in range(24)]


def test_same_vectors_as_direct_calls() -> None:
    model = minilm()
    coalescing = CoalescingEmbedder(model)
    direct = model.embed_documents(QUESTIONS)
    with ThreadPoolExecutor(8) as pool:
        rows = list(pool.map(coalescing.embed_query, QUESTIONS))
    assert np.allclose(np.stack(rows), direct, atol=1e-5)
    long = coalescing.embed_documents(QUESTIONS)  # background, in parts of max_texts // 8
    assert long.shape == (24, model.dimension)
    assert np.allclose(long, direct, atol=1e-5)
    assert coalescing.embed_documents([]).shape == (0, model.dimension)


def test_concurrent_requests_share_model_calls() -> None:
    coalescing = CoalescingEmbedder(minilm(), wait_s=0.05)
    start = threading.Barrier(12)

    def one(text: str) -> np.ndarray:
        start.wait()
        return coalescing.embed_query(text)

    with ThreadPoolExecutor(12) as pool:
        list(pool.map(one, QUESTIONS[:12]))
    assert coalescing.batches < 12


def test_questions_go_before_background_work() -> None:
    model = minilm()
    coalescing = CoalescingEmbedder(model, max_texts=4, wait_s=0, max_background_wait_s=60)
    order: list[str] = []
    release = threading.Event()
    real = model.embed_documents

    class Recording:
        dimension = model.dimension

        def embed_documents(self, texts: list[str]) -> np.ndarray:
            release.wait(5)
            order.append("question" if texts[0] == "urgent question" else "background")
            return real(texts)

    coalescing.embedder = Recording()  # type: ignore[assignment]
    with ThreadPoolExecutor(2) as pool:
        background = pool.submit(coalescing.embed_documents, QUESTIONS[:8])  # 8 parts of 1 text
        time.sleep(0.2)  # the worker holds the first part
        question = pool.submit(coalescing.embed_query, "urgent question")
        time.sleep(0.2)
        release.set()
        question.result(10), background.result(10)
    assert order.index("question") <= 1, order


def test_known_texts_are_embedded_once() -> None:
    model = minilm()
    coalescing = CoalescingEmbedder(model, known_texts=3)
    first = coalescing.embed_known(QUESTIONS[:3])
    calls = coalescing.batches
    again = coalescing.embed_known(list(reversed(QUESTIONS[:3])))
    assert coalescing.batches == calls
    assert np.array_equal(again, first[::-1])
    coalescing.embed_known(QUESTIONS[3:5])  # evicts the two least recently used
    assert len(coalescing._known) == 3


def test_a_failed_call_reaches_every_caller() -> None:
    class Broken:
        dimension = 4

        def embed_documents(self, texts: list[str]) -> np.ndarray:
            raise RuntimeError("model gone")

    coalescing = CoalescingEmbedder(Broken())  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="model gone"):
        coalescing.embed_query("anything")


def test_background_work_that_waited_too_long_goes_next() -> None:
    model = minilm()
    coalescing = CoalescingEmbedder(model, max_texts=8, wait_s=0, max_background_wait_s=0)
    order: list[str] = []
    real = model.embed_documents

    class Recording:
        dimension = model.dimension

        def embed_documents(self, texts: list[str]) -> np.ndarray:
            order.append("question" if texts[0].startswith("urgent") else "background")
            time.sleep(0.05)
            return real(texts)

    coalescing.embedder = Recording()  # type: ignore[assignment]
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(coalescing.embed_query, "urgent 0")
        time.sleep(0.02)  # the worker is busy with it
        questions = [pool.submit(coalescing.embed_query, f"urgent {i}") for i in range(1, 4)]
        time.sleep(0.005)
        background = pool.submit(coalescing.embed_documents, QUESTIONS[:2])  # one part, overdue at once
        for future in (first, background, *questions):
            future.result(10)
    assert order[:2] == ["question", "background"], order
