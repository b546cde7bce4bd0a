"""In-process generation with Hugging Face transformers (the embedded mode's LLM).

``model.generate`` runs in a background thread and hands text to the caller through a
``TextIteratorStreamer``. The streamer's queue timeout is the stall budget (``timeout_s``): when no
text arrives for that long, including before the first token, the stream raises ``LLMUnavailable``.
Whenever the caller stops reading (stall, stop sequence, ``close()``, an exception in the caller),
a stopping criterion tells the generation thread to stop at its next token, so abandoned answers do
not keep burning CPU.

Stop sequences are applied to the decoded text here, with the OpenAI semantics: the stop sequence
itself is not part of the output. Text that could be the start of a stop sequence is held back until
it is known not to be one.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from resolvo.answers.llm.base import (
    ChatMessage,
    FinishReason,
    GenerationParams,
    LLMRequestRejected,
    LLMUnavailable,
    TextStream,
    Usage,
)
from resolvo.answers.llm.hf_loading import BUNDLED_SMOLLM2, LoadedModel, load_model

GENERATION_THREAD_NAME = "resolvo-llm-generate"


class TransformersBackend:
    """A causal LM loaded into this process. Thread-safe; the model loads on first use.

    ``threads`` sets torch's intra-op threads when the model loads. That setting is process-wide
    (the embedding model in the same process shares it). A value above the available CPUs is
    lowered to them. ``None`` means half the CPUs this process may use, at least one (llama.cpp's
    default), which suits a library caller sharing a busy machine. The platform does not rely on
    that default: it passes ``LLM_THREADS``, whose default 0 means every available CPU, because on
    an idle machine that halves the time to the first token (``settings.py``, docs/answering.md).
    """

    name = "transformers"
    tokens_exact = True

    def __init__(
        self,
        model: str = BUNDLED_SMOLLM2,
        *,
        device: str = "cpu",
        threads: int | None = None,
        repetition_penalty: float = 1.1,
        adapter: str | None = None,
    ) -> None:
        self.model = model
        self.adapter = adapter
        """A LoRA adapter folder (PEFT format) applied on top of ``model``, or ``None``."""
        self.device = device
        generation_threads(threads)  # fail loudly on a bad value at configuration time
        self.threads = threads
        self.repetition_penalty = repetition_penalty
        self._threads_set = False

    def with_adapter(self, name: str, path: str) -> TransformersBackend:
        """The same model with the LoRA adapter saved in ``path`` applied (``name`` is for the
        trace). The adapted weights load on first use and are cached per adapter."""
        backend = TransformersBackend(
            self.model,
            device=self.device,
            threads=self.threads,
            repetition_penalty=self.repetition_penalty,
            adapter=path,
        )
        backend.adapter_name = name
        return backend

    adapter_name: str = ""

    def load(self) -> None:
        """Load the model now (e.g. when a worker starts) instead of on the first answer."""
        self._loaded()

    @property
    def tokenizer(self) -> Any:
        """The model's own Hugging Face tokenizer, for building token budgets."""
        return self._loaded().tokenizer

    @property
    def context_window(self) -> int | None:
        """The model's ``max_position_embeddings``; loads the model on first use."""
        return self._loaded().context_window

    def count_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def count_chat_tokens(self, messages: Sequence[ChatMessage]) -> int:
        return len(self._encode_chat(messages))

    def stream(self, messages: Sequence[ChatMessage], params: GenerationParams) -> TextStream:
        messages = list(messages)
        return TextStream(lambda out: self._generate(messages, params, out))

    # --- internals ------------------------------------------------------------------------------

    def _loaded(self) -> LoadedModel:
        loaded = load_model(self.model, self.device, adapter=self.adapter)
        if not self._threads_set:
            _limit_torch_threads(self.threads)
            self._threads_set = True
        return loaded

    def _encode_chat(self, messages: Sequence[ChatMessage]) -> list[int]:
        """Prompt token ids with the model's chat template.

        Control tokens typed into a message (say ``<|im_start|>system`` in a customer's question or
        a document) are encoded as plain text, so only the template itself can open or close turns.
        """
        encoded = self.tokenizer.apply_chat_template(
            [asdict(m) for m in messages],
            add_generation_prompt=True,
            tokenize=True,
            return_dict=True,
            sanitize_control_tokens=True,
        )
        return list(encoded["input_ids"])

    def _generate(self, messages: Sequence[ChatMessage], params: GenerationParams, out: TextStream) -> Iterator[str]:
        import torch
        from transformers import StoppingCriteria, StoppingCriteriaList, TextIteratorStreamer

        loaded = self._loaded()
        tokenizer, model = loaded.tokenizer, loaded.model
        prompt_ids = self._encode_chat(messages)
        prompt_len = len(prompt_ids)
        if loaded.context_window and prompt_len + params.max_tokens > loaded.context_window:
            raise LLMRequestRejected(
                f"prompt of {prompt_len} tokens plus max_tokens={params.max_tokens} exceeds the "
                f"{loaded.context_window}-token context of {self.model!r}"
            )

        cancel = threading.Event()
        progress = _Progress(prompt_len)

        class _Watch(StoppingCriteria):
            """Records progress after every token and stops generation once the reader has gone."""

            def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
                progress.update(input_ids.shape[1], int(input_ids[0, -1]))
                return torch.full((input_ids.shape[0],), cancel.is_set(), dtype=torch.bool, device=input_ids.device)

        streamer: Any = TextIteratorStreamer(
            tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=params.timeout_s
        )
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": params.temperature} if params.temperature > 0 else {"do_sample": False}
        )
        input_ids = torch.tensor([prompt_ids], device=model.device)
        generate_kwargs: dict[str, Any] = {
            "input_ids": input_ids,
            "attention_mask": torch.ones_like(input_ids),
            "max_new_tokens": params.max_tokens,
            "repetition_penalty": self.repetition_penalty,
            "pad_token_id": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id,
            "streamer": streamer,
            "stopping_criteria": StoppingCriteriaList([_Watch()]),
            **sampling,
        }
        failure: list[BaseException] = []

        def run() -> None:
            try:
                model.generate(**generate_kwargs)
            except BaseException as exc:  # reported to the reader below
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name=GENERATION_THREAD_NAME, daemon=True)
        stops = _StopScanner(params.stop)
        hit_stop = False
        worker.start()
        try:
            while True:
                try:
                    text = next(streamer)
                except StopIteration:
                    break
                except queue.Empty:
                    raise LLMUnavailable(
                        f"the local model {self.model!r} produced no text for {params.timeout_s:g} s "
                        f"({progress.generated} tokens generated so far)"
                    ) from None
                if failure:
                    break
                emit, hit_stop = stops.feed(text)
                if emit:
                    yield emit
                if hit_stop:
                    break
            if failure:
                raise LLMUnavailable(f"local generation with {self.model!r} failed: {failure[0]}") from failure[0]
            if not hit_stop and (tail := stops.flush()):
                yield tail
            cancel.set()
            worker.join(timeout=params.timeout_s)
            out.usage = Usage(prompt_tokens=prompt_len, completion_tokens=progress.generated)
            out.finish_reason = _finish_reason(hit_stop, progress, params.max_tokens, _eos_ids(model, tokenizer))
        finally:
            cancel.set()


class _Progress:
    """What the generation thread has produced so far (written by it, read by the reader)."""

    def __init__(self, prompt_len: int) -> None:
        self.prompt_len = prompt_len
        self.generated = 0
        self.last_token: int | None = None

    def update(self, total_len: int, last_token: int) -> None:
        self.generated = total_len - self.prompt_len
        self.last_token = last_token


def _eos_ids(model: Any, tokenizer: Any) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    if configured is None:
        configured = tokenizer.eos_token_id
    if configured is None:
        return set()
    return {int(configured)} if isinstance(configured, int) else {int(i) for i in configured}


def _finish_reason(hit_stop: bool, progress: _Progress, max_tokens: int, eos_ids: set[int]) -> FinishReason:
    if hit_stop or progress.last_token in eos_ids:
        return "stop"
    return "length" if progress.generated >= max_tokens else "stop"


class _StopScanner:
    """Cuts a stream of text at the first stop sequence, which is not emitted."""

    def __init__(self, stops: Sequence[str]) -> None:
        self.stops = tuple(stops)
        self.pending = ""

    def feed(self, text: str) -> tuple[str, bool]:
        """Text that is safe to emit now, and whether a stop sequence was reached."""
        if not self.stops:
            return text, False
        self.pending += text
        found = [i for i in (self.pending.find(s) for s in self.stops) if i >= 0]
        if found:
            emit = self.pending[: min(found)]
            self.pending = ""
            return emit, True
        keep = self._partial_match_length()
        emit = self.pending[: len(self.pending) - keep]
        self.pending = self.pending[len(self.pending) - keep :]
        return emit, False

    def flush(self) -> str:
        rest, self.pending = self.pending, ""
        return rest

    def _partial_match_length(self) -> int:
        """Length of the longest suffix of the pending text that starts some stop sequence."""
        longest = min(len(self.pending), max(len(s) for s in self.stops) - 1)
        for size in range(longest, 0, -1):
            suffix = self.pending[-size:]
            if any(s.startswith(suffix) for s in self.stops):
                return size
        return 0


def available_cpus() -> int:
    """CPUs this process may use: its affinity mask, further capped by a cgroup v2 CPU quota."""
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass
    return max(1, count)


_threads_lock = threading.Lock()


def generation_threads(requested: int | None) -> int:
    """Torch threads for generation: ``requested`` capped at the CPUs available, else half of them."""
    cpus = available_cpus()
    if requested is None:
        return max(1, cpus // 2)
    if requested < 1:
        raise ValueError(f"threads must be at least 1, got {requested}")
    return min(requested, cpus)


def _limit_torch_threads(requested: int | None) -> None:
    import torch

    with _threads_lock:
        wanted = generation_threads(requested)
        if wanted != torch.get_num_threads():
            torch.set_num_threads(wanted)
