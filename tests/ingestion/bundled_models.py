"""The real bundled models, loaded once per test session."""

from __future__ import annotations

from functools import lru_cache

from ingestion.embed import Embedder, get_embedder
from ingestion.split import SplitConfig, Splitter


@lru_cache(maxsize=1)
def embedder() -> Embedder:
    return get_embedder()


@lru_cache(maxsize=1)
def splitter() -> Splitter:
    model = embedder()
    return Splitter(model.tokenizer, SplitConfig(max_tokens=model.max_tokens))
