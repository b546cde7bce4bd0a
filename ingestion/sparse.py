"""Sparse lexical (BM25-style) vectors for hybrid retrieval.

Term weights come from Qdrant's own BM25 implementation as shipped in ``qdrant-edge-py``
(Snowball stemming, English stop words, k/b saturation). The collection stores them with the IDF
modifier, so inverse document frequency is computed by the engine over the live corpus and never
goes stale as documents come and go. The same encoder serves the embedded store and the Qdrant
server, so the two rank identically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import qdrant_edge


@dataclass(frozen=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@dataclass(frozen=True)
class Bm25Params:
    k: float = 1.2
    b: float = 0.75
    avg_len: float = 120.0
    """Average chunk length in tokens after stop-word removal; our chunks are ~200 word pieces."""
    language: str = "english"


class SparseEncoder:
    """BM25 document/query encoder. Cheap to build; thread-safe."""

    def __init__(self, params: Bm25Params | None = None) -> None:
        self.params = params or Bm25Params()
        self._local = threading.local()

    def _model(self) -> qdrant_edge.Bm25:
        model: qdrant_edge.Bm25 | None = getattr(self._local, "model", None)
        if model is None:
            p = self.params
            model = qdrant_edge.Bm25(qdrant_edge.Bm25Config(k=p.k, b=p.b, avg_len=p.avg_len, language=p.language))
            self._local.model = model
        return model

    def embed_document(self, text: str) -> SparseVector:
        v = self._model().embed_document(text)
        return SparseVector(list(v.indices), list(v.values))

    def embed_query(self, text: str) -> SparseVector:
        v = self._model().embed_query(text)
        return SparseVector(list(v.indices), list(v.values))
