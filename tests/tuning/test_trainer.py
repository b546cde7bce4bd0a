"""The LoRA trainer on the bundled model: a few real steps, checkpoints a cancelled or dead run
resumes from, and the limits (steps, time, memory)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from resolvo.answers.llm.hf_loading import BUNDLED_SMOLLM2, load_tokenizer
from resolvo.tuning.trainer import HParams, MemoryLimitExceeded, Progress, TrainingError, encode, train

pytestmark = pytest.mark.slow


def example(i: int) -> list[dict[str, str]]:
    return [
        {"role": "system", "content": "Answer from the passage only."},
        {"role": "user", "content": f'<passage n="1">Hold the reset button for {i + 5} seconds.</passage>\nHow?'},
        {"role": "assistant", "content": f"Hold the reset button for {i + 5} seconds. [1]"},
    ]


EXAMPLES = [example(i) for i in range(6)]
FAST = {"rank": 4, "alpha": 8, "gradient_accumulation": 1, "warmup_steps": 0, "max_memory_mb": 16000}


def test_the_loss_covers_the_answer_only_and_the_prompt_is_encoded_as_served() -> None:
    tokenizer = load_tokenizer(BUNDLED_SMOLLM2)
    e = encode(tokenizer, example(0))
    served = tokenizer.apply_chat_template(
        example(0)[:-1], add_generation_prompt=True, tokenize=True, return_dict=True, sanitize_control_tokens=True
    )["input_ids"]
    assert e.input_ids[: e.prompt_len] == list(served)
    answer = tokenizer.decode(e.input_ids[e.prompt_len :])
    assert answer.startswith("Hold the reset button for 5 seconds. [1]") and answer.endswith("<|im_end|>\n")


def test_a_cancelled_run_keeps_its_checkpoint_and_the_next_one_resumes(tmp_path: Path) -> None:
    seen: list[Progress] = []

    def cancel_at_three(p: Progress) -> bool:
        seen.append(p)
        return p.step < 3

    hp = HParams(**FAST, max_steps=4, checkpoint_every=2, epochs=1)
    first = train(model_name=BUNDLED_SMOLLM2, examples=EXAMPLES, hparams=hp, out_dir=tmp_path, on_step=cancel_at_three)
    assert first.stopped_by == "cancelled" and first.steps == 3
    assert [p.step for p in seen] == [1, 2, 3] and all(p.total_steps == 4 and p.loss > 0 for p in seen)
    assert (tmp_path / "checkpoint" / "state.pt").is_file()
    assert not (tmp_path / "adapter").exists()

    second = train(model_name=BUNDLED_SMOLLM2, examples=EXAMPLES, hparams=hp, out_dir=tmp_path)
    assert second.resumed_from == 2 and second.steps == 4 and second.stopped_by == "steps"
    assert len(second.losses) == 4  # the two checkpointed steps' losses and the two trained now
    assert (tmp_path / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((tmp_path / "adapter" / "resolvo.json").read_text())["base_model"] == BUNDLED_SMOLLM2
    assert not (tmp_path / "checkpoint").exists()
    assert second.trainable_parameters > 0 and second.tokens_per_s > 0


def test_the_time_limit_stops_and_saves_what_was_learnt(tmp_path: Path) -> None:
    hp = HParams(**{**FAST, "max_seconds": 0.001}, max_steps=50)
    result = train(model_name=BUNDLED_SMOLLM2, examples=EXAMPLES, hparams=hp, out_dir=tmp_path)
    assert result.stopped_by == "time" and result.steps == 1
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()


def test_the_memory_limit_fails_the_run_readably(tmp_path: Path) -> None:
    hp = HParams(**{**FAST, "max_memory_mb": 256}, max_steps=3)
    with pytest.raises(MemoryLimitExceeded, match=r"memory limit exceeded at step 1: .* max_memory_mb=256"):
        train(model_name=BUNDLED_SMOLLM2, examples=EXAMPLES, hparams=hp, out_dir=tmp_path)


def test_examples_that_do_not_fit_are_skipped_never_cut(tmp_path: Path) -> None:
    hp = HParams(**FAST, max_seq_tokens=16, max_steps=1)
    with pytest.raises(TrainingError, match=r"no example fits in max_seq_tokens=16 \(6 longer\)"):
        train(model_name=BUNDLED_SMOLLM2, examples=EXAMPLES, hparams=hp, out_dir=tmp_path)


def test_hyper_parameters_are_checked_by_name() -> None:
    with pytest.raises(ValueError, match="unknown hyper-parameter"):
        HParams.from_dict({"lr": 0.1})
    with pytest.raises(ValueError, match=r"invalid hyper-parameter\(s\): rank=0, max_steps=0"):
        HParams.from_dict({"rank": 0, "max_steps": 0})
    assert HParams.from_dict({"target_modules": ["q_proj"]}).target_modules == ("q_proj",)
