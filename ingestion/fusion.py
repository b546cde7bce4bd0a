"""Weighted reciprocal rank fusion of ranked candidate lists.

``score(c) = sum_i weight_i / (k + rank_i(c))`` with ranks from 1; a candidate missing from a
list gets nothing from it. Done here rather than inside Qdrant because it is measured to be
better on our data with unequal weights (BM25 carries most of the signal on product manuals),
and because both qdrant-client's local mode and qdrant-edge 0.9 apply ``Rrf(weights=...)``
so that a larger weight on the second prefetch favours the first (see docs/answering.md):
relying on it would make ranking depend on an engine detail.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def weighted_rrf(lists: Sequence[Sequence[T]], weights: Sequence[float], *, k: float) -> list[tuple[T, float]]:
    """Fused (item, score) pairs, best first; ties keep first-seen order."""
    if len(lists) != len(weights):
        raise ValueError("one weight per list")
    scores: dict[T, float] = {}
    for items, weight in zip(lists, weights, strict=True):
        for rank, item in enumerate(items, start=1):
            scores[item] = scores.get(item, 0.0) + weight / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
