"""LoRA fine-tuning of a causal LM on chat examples, with PEFT over transformers. No Django.

The loss is taken on the assistant's turn only: the prompt (system prompt, conversation and
numbered passages) is encoded with the model's chat template exactly as the transformers backend
encodes it when answering, so the model learns to continue precisely the prompts it is served.

The loop is plain PyTorch (AdamW, linear warm-up then decay, gradient clipping, gradient
accumulation), so every step can report progress, obey a cancel, and respect the run's limits:
steps, wall-clock seconds and resident memory. Checkpoints (adapter weights, optimiser and
scheduler state, step) are written every ``checkpoint_every`` steps; a run that finds one resumes
from it, so a worker that died mid-run loses at most that many steps.
"""

from __future__ import annotations

import json
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

from resolvo.answers.llm.hf_loading import load_tokenizer, load_weights, resolve_device

DEFAULT_TARGET_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
"""Every linear layer of a Llama block (attention and MLP), PEFT's usual choice for Llama."""

StopReason = Literal["steps", "time", "cancelled"]


class TrainingError(Exception):
    """Training cannot go on (no usable example, a limit that is not a time limit); readable."""


class MemoryLimitExceeded(TrainingError):
    pass


@dataclass(frozen=True)
class HParams:
    rank: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: tuple[str, ...] = DEFAULT_TARGET_MODULES
    learning_rate: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 5
    epochs: float = 2.0
    gradient_accumulation: int = 4
    """Examples per optimiser step (one example per forward pass, so no padding is wasted)."""
    max_seq_tokens: int = 2048
    """Longer examples are skipped (and counted), never cut: a cut prompt would lose passages."""
    seed: int = 0
    max_steps: int = 200
    max_seconds: float = 1800.0
    """Wall-clock budget for training; when it runs out the adapter so far is saved and evaluated."""
    max_memory_mb: int = 12000
    """Resident memory of the training process (and CUDA memory on a GPU); over it, the run fails."""
    checkpoint_every: int = 25

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> HParams:
        """Hyper-parameters from JSON; ValueError names an unknown or invalid one."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown hyper-parameter(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        data = dict(values)
        if "target_modules" in data:
            data["target_modules"] = tuple(str(m) for m in data["target_modules"])
        try:
            hp = cls(**data)
        except TypeError as exc:
            raise ValueError(str(exc)) from None
        hp.validate()
        return hp

    def validate(self) -> None:
        checks = {
            "rank": self.rank >= 1,
            "alpha": self.alpha >= 1,
            "dropout": 0 <= self.dropout < 1,
            "learning_rate": 0 < self.learning_rate < 1,
            "epochs": self.epochs > 0,
            "gradient_accumulation": self.gradient_accumulation >= 1,
            "max_seq_tokens": self.max_seq_tokens >= 16,
            "max_steps": self.max_steps >= 1,
            "max_seconds": self.max_seconds > 0,
            "max_memory_mb": self.max_memory_mb >= 256,
            "checkpoint_every": self.checkpoint_every >= 1,
            "target_modules": bool(self.target_modules),
        }
        bad = [name for name, ok in checks.items() if not ok]
        if bad:
            raise ValueError(f"invalid hyper-parameter(s): {', '.join(f'{b}={getattr(self, b)!r}' for b in bad)}")

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["target_modules"] = list(self.target_modules)
        return data


@dataclass
class Progress:
    step: int
    total_steps: int
    loss: float
    learning_rate: float
    tokens: int
    """Tokens trained on so far (prompt and answer: every token goes through forward and backward)."""
    elapsed_s: float
    memory_mb: float


@dataclass
class TrainResult:
    adapter_dir: Path
    steps: int
    total_steps: int
    stopped_by: StopReason
    examples: int
    skipped_too_long: int
    tokens: int
    answer_tokens: int
    seconds: float
    tokens_per_s: float
    peak_memory_mb: float
    loss_first: float | None
    loss_last: float | None
    losses: list[float] = field(default_factory=list)
    resumed_from: int = 0
    trainable_parameters: int = 0

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["adapter_dir"] = str(self.adapter_dir)
        data["losses"] = [round(x, 4) for x in self.losses[-200:]]
        return data


@dataclass(frozen=True)
class Encoded:
    input_ids: list[int]
    prompt_len: int


def encode(tokenizer: Any, messages: Sequence[dict[str, str]]) -> Encoded:
    """Token ids of a chat example and where its answer starts. The prompt is encoded exactly as
    ``TransformersBackend`` encodes it for generation; the answer is what the template adds after
    it (the assistant's text and the end of its turn)."""
    prompt = tokenizer.apply_chat_template(
        list(messages[:-1]), add_generation_prompt=True, tokenize=True, return_dict=True, sanitize_control_tokens=True
    )["input_ids"]
    full = tokenizer.apply_chat_template(list(messages), tokenize=True, return_dict=True, sanitize_control_tokens=True)[
        "input_ids"
    ]
    prompt, full = list(prompt), list(full)
    if full[: len(prompt)] == prompt and len(full) > len(prompt):
        return Encoded(full, len(prompt))
    # A template whose full rendering does not start with the generation prompt: answer + EOS.
    answer = tokenizer(messages[-1]["content"], add_special_tokens=False)["input_ids"]
    return Encoded(prompt + list(answer) + [tokenizer.eos_token_id], len(prompt))


def memory_mb(device: str = "cpu") -> float:
    import psutil

    rss = float(psutil.Process(os.getpid()).memory_info().rss) / 2**20
    if device.startswith("cuda"):
        import torch

        return max(rss, float(torch.cuda.max_memory_allocated()) / 2**20)
    return rss


CHECKPOINT_DIR, ADAPTER_DIR = "checkpoint", "adapter"


def train(
    *,
    model_name: str,
    examples: Sequence[Sequence[dict[str, str]]],
    hparams: HParams,
    out_dir: Path,
    device: str = "cpu",
    on_step: Callable[[Progress], bool] | None = None,
    threads: int | None = None,
) -> TrainResult:
    """Train a LoRA adapter on ``examples`` (chat messages, the last one the assistant's answer)
    and save it in ``out_dir/adapter``. ``on_step`` sees every step's progress and returns False
    to cancel (nothing is saved then). Raises ``TrainingError`` (``MemoryLimitExceeded``)."""
    import torch
    from peft import LoraConfig, get_peft_model, set_peft_model_state_dict
    from safetensors.torch import load_file
    from transformers import get_linear_schedule_with_warmup

    hparams.validate()
    device = resolve_device(device)
    if threads:
        torch.set_num_threads(threads)
    started = time.monotonic()
    tokenizer = load_tokenizer(model_name)
    encoded: list[Encoded] = []
    skipped = 0
    for messages in examples:
        if not messages or messages[-1].get("role") != "assistant":
            raise TrainingError("every example must end with the assistant's answer")
        e = encode(tokenizer, messages)
        if len(e.input_ids) > hparams.max_seq_tokens:
            skipped += 1
            continue
        encoded.append(e)
    if not encoded:
        raise TrainingError(
            f"no example fits in max_seq_tokens={hparams.max_seq_tokens} ({skipped} longer)"
            if skipped
            else "the dataset has no training example"
        )

    random.seed(hparams.seed)
    torch.manual_seed(hparams.seed)
    per_epoch = math.ceil(len(encoded) / hparams.gradient_accumulation)
    total_steps = max(1, min(hparams.max_steps, math.ceil(per_epoch * hparams.epochs)))
    order: list[int] = []
    epoch = 0
    while len(order) < total_steps * hparams.gradient_accumulation:
        shuffled = list(range(len(encoded)))
        random.Random(hparams.seed + epoch).shuffle(shuffled)
        order += shuffled
        epoch += 1

    model = load_weights(model_name, device)
    model.config.use_cache = False
    lora = LoraConfig(
        task_type="CAUSAL_LM",
        r=hparams.rank,
        lora_alpha=hparams.alpha,
        lora_dropout=hparams.dropout,
        target_modules=list(hparams.target_modules),
    )
    model = get_peft_model(model, lora)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=hparams.learning_rate, weight_decay=hparams.weight_decay)
    warmup = min(hparams.warmup_steps, total_steps // 2)
    scheduler = get_linear_schedule_with_warmup(optimizer, warmup, total_steps)  # type: ignore[no-untyped-call]

    checkpoint = out_dir / CHECKPOINT_DIR
    step, tokens, answer_tokens, losses, resumed_from = 0, 0, 0, [], 0
    if (checkpoint / "state.pt").is_file():
        state = torch.load(checkpoint / "state.pt", weights_only=False)
        set_peft_model_state_dict(model, load_file(str(checkpoint / "adapter_model.safetensors")))
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        step, tokens, answer_tokens, losses = state["step"], state["tokens"], state["answer_tokens"], state["losses"]
        resumed_from = step
    model.train()
    peak = memory_mb(device)
    stopped_by: StopReason = "steps"
    train_started = time.monotonic()
    trained_before = tokens
    while step < total_steps:
        step_loss = 0.0
        for micro in range(hparams.gradient_accumulation):
            e = encoded[order[step * hparams.gradient_accumulation + micro]]
            ids = torch.tensor([e.input_ids], device=model.device)
            labels = ids.clone()
            labels[0, : e.prompt_len] = -100
            out = model(input_ids=ids, attention_mask=torch.ones_like(ids), labels=labels)
            (out.loss / hparams.gradient_accumulation).backward()
            step_loss += out.loss.item() / hparams.gradient_accumulation
            tokens += len(e.input_ids)
            answer_tokens += len(e.input_ids) - e.prompt_len
        torch.nn.utils.clip_grad_norm_(trainable, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        step += 1
        losses.append(step_loss)
        used = memory_mb(device)
        peak = max(peak, used)
        elapsed = time.monotonic() - started
        if used > hparams.max_memory_mb:
            raise MemoryLimitExceeded(
                f"memory limit exceeded at step {step}: {used:,.0f} MB in use, max_memory_mb={hparams.max_memory_mb:,}"
            )
        progress = Progress(step, total_steps, step_loss, scheduler.get_last_lr()[0], tokens, elapsed, used)
        if on_step is not None and not on_step(progress):
            stopped_by = "cancelled"
            break
        if step % hparams.checkpoint_every == 0 and step < total_steps:
            _save_checkpoint(model, optimizer, scheduler, checkpoint, step, tokens, answer_tokens, losses)
        if elapsed >= hparams.max_seconds:
            stopped_by = "time"
            break
    seconds = time.monotonic() - train_started
    adapter_dir = out_dir / ADAPTER_DIR
    if stopped_by != "cancelled":
        if adapter_dir.exists():
            shutil.rmtree(adapter_dir)
        model.save_pretrained(str(adapter_dir))
        (adapter_dir / "resolvo.json").write_text(
            json.dumps({"base_model": model_name, "steps": step, "hparams": hparams.as_dict()}, indent=2)
        )
        shutil.rmtree(checkpoint, ignore_errors=True)
    return TrainResult(
        adapter_dir=adapter_dir,
        steps=step,
        total_steps=total_steps,
        stopped_by=stopped_by,
        examples=len(encoded),
        skipped_too_long=skipped,
        tokens=tokens,
        answer_tokens=answer_tokens,
        seconds=round(seconds, 2),
        tokens_per_s=round((tokens - trained_before) / seconds, 1) if seconds > 0 else 0.0,
        peak_memory_mb=round(peak, 1),
        loss_first=losses[0] if losses else None,
        loss_last=sum(losses[-5:]) / len(losses[-5:]) if losses else None,
        losses=losses,
        resumed_from=resumed_from,
        trainable_parameters=sum(p.numel() for p in trainable),
    )


def _save_checkpoint(
    model: Any,
    optimizer: Any,
    scheduler: Any,
    path: Path,
    step: int,
    tokens: int,
    answer_tokens: int,
    losses: list[float],
) -> None:
    import torch

    tmp = path.with_name(path.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(str(tmp))
    torch.save(
        {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "step": step,
            "tokens": tokens,
            "answer_tokens": answer_tokens,
            "losses": losses,
        },
        tmp / "state.pt",
    )
    shutil.rmtree(path, ignore_errors=True)
    os.replace(tmp, path)
