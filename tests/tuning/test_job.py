"""A tuning run end to end on the demo help centre with the bundled model: dataset snapshot, a
real LoRA run, the gate refusing the worse adapter it produced, and promotion and one-action
rollback switching what answers customers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

QUESTIONS = [
    "What does a pulsing blue status light mean?",
    "How do I add a hub in the Lumen app on iPhone?",
    "Does the hub work without a subscription?",
    "What does a solid red light mean?",
    "How do I allow Local Network access on iOS?",
]


@pytest.fixture
def tuning_settings(answer_settings: Any, tmp_path: Path) -> Any:
    answer_settings.TUNING_DIR = tmp_path / "tuning"
    answer_settings.TUNING_EVAL_LIMIT = 3
    answer_settings.ANSWER_MAX_TOKENS = 32
    return answer_settings


def poisoned_dataset(kb: Any, tmp_path: Path) -> Path:
    """Curated pairs that teach the model to abstain on answerable questions: a worse adapter."""
    from resolvo.answers.services import answer_engine
    from resolvo.tuning.dataset import dataset_build

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(
        "".join(json.dumps({"id": str(i), "question": q, "answerable": False}) + "\n" for i, q in enumerate(QUESTIONS))
    )
    out = tmp_path / "dataset"
    dataset_build(
        organization=kb.organization,
        engine=answer_engine(),
        out_dir=out,
        curated=pairs,
        knowledge_base=kb,
        max_abstention_share=1.0,
    )
    return out


def test_a_worse_adapter_is_trained_evaluated_and_refused_then_rollback_is_one_action(
    lumen_kb: Any, tuning_settings: Any, tmp_path: Path
) -> None:
    from resolvo.answers.models import AnswerTrace
    from resolvo.answers.services import answer_collect
    from resolvo.tuning import jobs, services
    from resolvo.tuning.models import TuningRun
    from resolvo.tuning.selectors import promoted_adapter

    fixed = tmp_path / "fixed.jsonl"
    fixed.write_text(
        json.dumps(
            {
                "id": "f1",
                "question": "How do I add a hub in the Lumen app?",
                "answer": "Open the Lumen app and tap Settings > Hubs > Add hub.",
                "gold_doc_ids": ["wifi-setup-ios"],
            }
        )
        + "\n"
    )
    run = services.tuning_run_create(
        organization=lumen_kb.organization,
        dataset=poisoned_dataset(lumen_kb, tmp_path),
        hparams={
            "rank": 8,
            "alpha": 16,
            "learning_rate": 3e-3,
            "warmup_steps": 0,
            "gradient_accumulation": 1,
            "max_steps": 8,
            "epochs": 4,
        },
        eval_knowledge_base=lumen_kb,
        eval_questions=fixed,
        start=False,
    )
    assert run.dataset["train"] >= 3 and run.dataset["files"]["train.jsonl"]["sha256"]
    assert (jobs.run_dir(run) / "dataset" / "train.jsonl").is_file()  # the snapshot

    assert jobs.tuning_run_execute(run_id=run.pk) == "succeeded"
    run.refresh_from_db()
    assert run.step == run.total_steps == 8 and run.metrics["loss_last"] < run.metrics["loss_first"]
    assert Path(run.adapter_path, "adapter_model.safetensors").is_file()
    assert run.adapter_name == f"resolvo-lumen-run{run.pk}"

    # The adapter really answers: it abstains where the base model answered or quoted.
    fixed_set = run.evaluation["sets"]["fixed"]
    assert fixed_set["before"]["abstention_answerable"] == 0.0
    assert fixed_set["after"]["abstention_answerable"] == 1.0
    assert AnswerTrace.objects.filter(channel="tuning", model__endswith=f"+ {run.adapter_name}").count() >= 2

    # ...and the gate refuses it, saying why; promoting it is refused too.
    decision = run.evaluation["decision"]
    assert decision["promote"] is False
    assert "fixed answer_f1 must rise" in decision["reason"]
    assert "abstention_answerable must not rise (0.0 -> 1.0)" in decision["reason"]
    with pytest.raises(services.TuningRefused, match="the evaluation gate refused"):
        services.tuning_run_promote(run=run)
    assert promoted_adapter(organization_id=lumen_kb.organization_id) is None

    # Had the gate passed it, promotion switches customers' answers to it and rollback back.
    TuningRun.objects.filter(pk=run.pk).update(evaluation={**run.evaluation, "decision": {"promote": True}})
    run.refresh_from_db()
    services.tuning_run_promote(run=run)
    assert promoted_adapter(organization_id=lumen_kb.organization_id).name == run.adapter_name  # type: ignore[union-attr]
    tuned = answer_collect(knowledge_base=lumen_kb, question=QUESTIONS[1])
    assert tuned.abstained and tuned.outcome == "abstained"
    assert AnswerTrace.objects.get(pk=tuned.trace_id).model.endswith(f"+ {run.adapter_name}")
    assert services.tuning_rollback(organization=lumen_kb.organization) == 1
    base = answer_collect(knowledge_base=lumen_kb, question=QUESTIONS[1])
    assert AnswerTrace.objects.get(pk=base.trace_id).model == "bundled:smollm2-135m-instruct"
    assert not base.abstained


def test_runs_are_refused_without_a_dataset_or_while_one_is_active(
    lumen_kb: Any, tuning_settings: Any, tmp_path: Path
) -> None:
    from resolvo.tuning import services

    with pytest.raises(services.TuningRefused, match=r"not a tuning dataset: train\.jsonl is missing"):
        services.tuning_run_create(organization=lumen_kb.organization, dataset=tmp_path, start=False)
    with pytest.raises(services.TuningRefused, match="unknown hyper-parameter"):
        services.tuning_run_create(organization=lumen_kb.organization, dataset=tmp_path, hparams={"lr": 1}, start=False)
    dataset = poisoned_dataset(lumen_kb, tmp_path)
    run = services.tuning_run_create(organization=lumen_kb.organization, dataset=dataset, start=False)
    with pytest.raises(services.TuningRefused, match=f"run {run.pk} is still queued"):
        services.tuning_run_create(organization=lumen_kb.organization, dataset=dataset, start=False)
    services.tuning_run_cancel(run=run)
    assert run.status == "cancelled" and run.cancel_requested
    with pytest.raises(services.TuningRefused, match="has already cancelled"):
        services.tuning_run_cancel(run=run)


@pytest.mark.django_db(transaction=True)
def test_the_embedded_mode_runs_a_started_run_in_a_background_thread(
    make_kb: Any, settings: Any, tmp_path: Path
) -> None:
    """No worker when embedded: starting a run returns at once, and the run goes on in this process."""
    from workers.celery import app

    settings.TUNING_DIR = tmp_path / "tuning"
    settings.CELERY_TASK_ALWAYS_EAGER = True  # the embedded mode (tests otherwise use the real broker)
    app.conf.task_always_eager = True
    try:
        _train_in_a_thread(make_kb, tmp_path)
    finally:
        app.conf.task_always_eager = False


def _train_in_a_thread(make_kb: Any, tmp_path: Path) -> None:
    import time

    from resolvo.tuning import services
    from resolvo.tuning.models import TuningRun

    kb = make_kb("lumen", "help")
    folder = tmp_path / "dataset"
    folder.mkdir()
    chat = [
        {"role": "system", "content": "Answer from the passage."},
        {"role": "user", "content": "Where is the reset button?"},
        {"role": "assistant", "content": "On the back. [1]"},
    ]
    (folder / "train.jsonl").write_text(json.dumps({"messages": chat, "meta": {}}) + "\n")
    (folder / "heldout.jsonl").write_text("")
    (folder / "report.json").write_text(json.dumps({"train": 1, "heldout": 0}))
    started = time.monotonic()
    run = services.tuning_run_create(
        organization=kb.organization, dataset=folder, hparams={"max_memory_mb": 256, "max_steps": 1}
    )
    assert time.monotonic() - started < 5  # the request is not held up by training
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline and not TuningRun.objects.get(pk=run.pk).finished:
        time.sleep(0.5)
    run.refresh_from_db()
    assert run.status == "failed" and run.error.startswith("memory limit exceeded at step 1")
    assert run.finished_at is not None
    from resolvo.tuning import jobs

    assert jobs.tuning_run_execute(run_id=run.pk) == "failed"  # a redelivery leaves a finished run alone
