"""Running a tuning job: the ``TuningRun`` row is the job (claimed with a conditional update,
heart-beaten while it trains, finished by one wrapper that records success or the reason for
failure). Called by the ``tuning`` queue's task; idempotent: a run already finished is left
alone, and a run whose worker died (its heartbeat went stale) is claimed again and resumes
from its last checkpoint.
"""

from __future__ import annotations

import logging
import socket
import traceback
from datetime import timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from resolvo.answers.engine import model_label
from resolvo.answers.services import Adapter, answer_engine, answer_engine_for
from resolvo.knowledge.models import KnowledgeBase
from resolvo.tuning import gate, trainer
from resolvo.tuning.dataset import HELDOUT_FILE, TRAIN_FILE, read_examples
from resolvo.tuning.models import TuningRun

log = logging.getLogger(__name__)
Status = TuningRun.Status


def run_dir(run: TuningRun) -> Path:
    return Path(settings.TUNING_DIR) / f"org-{run.organization_id}" / f"run-{run.pk}"


def _claim(run_id: int) -> TuningRun | None:
    """Take the run for this worker: a queued one, or one whose worker stopped beating."""
    stale = timezone.now() - timedelta(seconds=settings.TUNING_HEARTBEAT_STALE_SECONDS)
    now = timezone.now()
    claimed = (
        TuningRun.objects.filter(pk=run_id)
        .filter(
            Q(status=Status.QUEUED)
            | Q(status__in=[Status.TRAINING, Status.EVALUATING], heartbeat_at__lt=stale)
            | Q(status__in=[Status.TRAINING, Status.EVALUATING], heartbeat_at__isnull=True)
        )
        .update(worker=f"{socket.gethostname()}", heartbeat_at=now)
    )
    if not claimed:
        return None
    run = TuningRun.objects.select_related("organization").get(pk=run_id)
    if run.status == Status.QUEUED:
        if run.cancel_requested:
            _finish(run, Status.CANCELLED)
            return None
        run.status, run.started_at = Status.TRAINING, now
        run.save(update_fields=["status", "started_at"])
    return run


def _finish(run: TuningRun, status: str, error: str = "") -> None:
    run.status, run.error, run.finished_at = status, error[:5000], timezone.now()
    run.save(update_fields=["status", "error", "finished_at"])


def tuning_run_execute(*, run_id: int) -> str:
    """Train, evaluate and decide; returns the run's status. Never raises for a failed run:
    the failure is recorded on the row."""
    run = _claim(run_id)
    if run is None:
        return TuningRun.objects.filter(pk=run_id).values_list("status", flat=True).first() or "missing"
    try:
        if run.status == Status.TRAINING:
            if not _train(run):
                return run.status
        _evaluate(run)
    except (trainer.TrainingError, ValueError, OSError) as exc:
        log.warning("tuning run %s failed: %s", run.pk, exc)
        _finish(run, Status.FAILED, str(exc))
    except Exception as exc:  # recorded for the admin, and logged with its traceback
        log.exception("tuning run %s failed", run.pk)
        _finish(run, Status.FAILED, f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=5)}")
    return run.status


def _train(run: TuningRun) -> bool:
    """Train the adapter; False when the run was cancelled (and is finished)."""
    hparams = trainer.HParams.from_dict(run.hparams)
    folder = run_dir(run)
    examples = [e["messages"] for e in read_examples(folder / "dataset" / TRAIN_FILE)]

    def on_step(p: trainer.Progress) -> bool:
        metrics = dict(run.metrics)
        metrics.update(
            loss=round(p.loss, 4),
            learning_rate=p.learning_rate,
            tokens=p.tokens,
            elapsed_s=round(p.elapsed_s, 1),
            memory_mb=round(p.memory_mb),
        )
        TuningRun.objects.filter(pk=run.pk).update(
            step=p.step, total_steps=p.total_steps, metrics=metrics, heartbeat_at=timezone.now()
        )
        run.metrics = metrics
        return not TuningRun.objects.filter(pk=run.pk, cancel_requested=True).exists()

    result = trainer.train(
        model_name=run.base_model,
        examples=examples,
        hparams=hparams,
        out_dir=folder,
        device=settings.TUNING_DEVICE,
        on_step=on_step,
        threads=settings.TUNING_THREADS or None,
    )
    run.refresh_from_db()
    run.metrics = {**run.metrics, **result.as_dict()}
    run.step, run.total_steps = result.steps, result.total_steps
    if result.stopped_by == "cancelled":
        run.save(update_fields=["metrics", "step", "total_steps"])
        _finish(run, Status.CANCELLED)
        return False
    run.adapter_path = str(result.adapter_dir.resolve())
    run.adapter_name = f"resolvo-{run.organization.slug}-run{run.pk}"[:100]
    run.status = Status.EVALUATING
    run.heartbeat_at = timezone.now()
    run.save(update_fields=["metrics", "step", "total_steps", "adapter_path", "adapter_name", "status", "heartbeat_at"])
    return True


def _evaluate(run: TuningRun) -> None:
    """Before (what answers the organization's customers now) and after (this adapter), on the
    held-out split and the fixed set; then the gate's decision."""
    folder = run_dir(run)
    limit = settings.TUNING_EVAL_LIMIT
    sets: dict[str, list[Any]] = {}
    heldout = read_examples(folder / "dataset" / HELDOUT_FILE)
    if heldout:
        sets["heldout"] = gate.heldout_questions(sample(heldout, limit))
    fixed = run.eval_set or {}
    if fixed.get("questions"):
        kb = KnowledgeBase.objects.get(pk=fixed["knowledge_base"], organization_id=run.organization_id)
        sets["fixed"] = gate.fixed_questions(Path(fixed["questions"]), kb, int(fixed.get("limit") or limit))
    before_engine = answer_engine_for(run.organization_id)
    adapter = Adapter(name=run.adapter_name, path=run.adapter_path)
    adapter_serve(before_engine.backend, adapter)
    after_engine = answer_engine(adapter=adapter)
    comparison: dict[str, dict[str, Any]] = {}
    for name, questions in sets.items():
        comparison[name] = {"before": gate.measure(before_engine, questions)}
        TuningRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
        comparison[name]["after"] = gate.measure(after_engine, questions)
        TuningRun.objects.filter(pk=run.pk).update(heartbeat_at=timezone.now())
    rules = gate.GateRules(min_gain=settings.TUNING_GATE_MIN_GAIN, tolerance=settings.TUNING_GATE_TOLERANCE)
    decision = gate.decide(comparison, rules)
    run.evaluation = {
        "baseline": model_label(before_engine.backend),
        "sets": comparison,
        "decision": decision,
        "rules": {"min_gain": rules.min_gain, "tolerance": rules.tolerance},
    }
    run.save(update_fields=["evaluation"])
    _finish(run, Status.SUCCEEDED)
    if decision["promote"] and settings.TUNING_AUTO_PROMOTE:
        from resolvo.tuning.services import tuning_run_promote

        tuning_run_promote(run=run, by=None)


def sample(examples: list[dict[str, Any]], limit: int) -> list[dict[str, Any]]:
    """Up to ``limit`` examples, taken in turn from each (knowledge base, answerable) group, so a
    small evaluation still sees every kind of question the split holds."""
    if not limit or len(examples) <= limit:
        return examples
    buckets: dict[tuple[Any, Any], list[dict[str, Any]]] = {}
    for e in examples:
        buckets.setdefault((e["meta"]["knowledge_base"], e["meta"].get("answerable", True)), []).append(e)
    out: list[dict[str, Any]] = []
    queues = list(buckets.values())
    while len(out) < limit:
        for q in queues:
            if q and len(out) < limit:
                out.append(q.pop(0))
    return out


def adapter_serve(backend: Any, adapter: Adapter) -> None:
    """An OpenAI-compatible server must serve the adapter before it can be evaluated: load it at
    run time, or find it among the models the server was started with (``--lora-modules``)."""
    if not hasattr(backend, "load_adapter"):
        return
    if settings.LLM_LORA_RUNTIME_LOADING:
        backend.load_adapter(adapter.name, adapter.path)
    elif adapter.name not in backend.served_models():
        raise ValueError(
            f"the LLM server does not serve {adapter.name!r}: set LLM_LORA_RUNTIME_LOADING=1 (vLLM with "
            f"--enable-lora and VLLM_ALLOW_RUNTIME_LORA_UPDATING=True), or restart vLLM with "
            f"--lora-modules {adapter.name}={adapter.path}, then run the evaluation again"
        )


def tuning_runs_recover_stalled() -> int:
    """Send again the runs whose worker stopped beating (it died); the claim resumes them."""
    from resolvo import background

    stale = timezone.now() - timedelta(seconds=settings.TUNING_HEARTBEAT_STALE_SECONDS)
    ids = list(
        TuningRun.objects.filter(status__in=[Status.TRAINING, Status.EVALUATING], heartbeat_at__lt=stale).values_list(
            "pk", flat=True
        )
    )
    for run_id in ids:
        background.send(background.TUNING_RUN, run_id)
    return len(ids)
