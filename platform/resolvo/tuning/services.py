"""Writes for tuning: start a run on a dataset snapshot, cancel it, promote its adapter, and roll
the organization back to the base model (one action)."""

from __future__ import annotations

import hashlib
import json
import shutil
import threading
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections, transaction
from django.utils import timezone

from resolvo import background
from resolvo.knowledge.models import KnowledgeBase
from resolvo.organizations.models import Organization
from resolvo.tuning import jobs, trainer
from resolvo.tuning.dataset import HELDOUT_FILE, REPORT_FILE, TRAIN_FILE
from resolvo.tuning.models import TuningRun


class TuningRefused(ValueError):
    """The action is not allowed now; the message says why, for the admin."""


def _snapshot(source: Path, target: Path) -> dict[str, Any]:
    """Copy the dataset's files into the run's folder; their hashes identify the snapshot."""
    files = {}
    target.mkdir(parents=True, exist_ok=True)
    for name in (TRAIN_FILE, HELDOUT_FILE, REPORT_FILE):
        src = source / name
        if not src.is_file():
            raise TuningRefused(f"{source} is not a tuning dataset: {name} is missing (manage.py tuning_dataset)")
        shutil.copyfile(src, target / name)
        data = (target / name).read_bytes()
        files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    report = json.loads((target / REPORT_FILE).read_text(encoding="utf-8"))
    if not report.get("train"):
        raise TuningRefused(f"the dataset in {source} has no training example (see its report.json)")
    return {
        "source": str(source),
        "files": files,
        "train": report.get("train", 0),
        "heldout": report.get("heldout", 0),
        "report": {k: v for k, v in report.items() if k != "dropped_examples"},
    }


def tuning_run_create(
    *,
    organization: Organization,
    dataset: Path,
    by: Any = None,
    hparams: dict[str, Any] | None = None,
    eval_knowledge_base: KnowledgeBase | None = None,
    eval_questions: Path | None = None,
    eval_limit: int = 0,
    start: bool = True,
) -> TuningRun:
    """A queued run on a snapshot of ``dataset`` (a ``tuning_dataset`` folder), sent to the
    ``tuning`` queue once the transaction commits. In the embedded mode (tasks run in-process) it
    trains in a background thread of this process."""
    try:
        hp = trainer.HParams.from_dict({**settings.TUNING_DEFAULT_HPARAMS, **(hparams or {})})
    except ValueError as exc:
        raise TuningRefused(str(exc)) from None
    if eval_questions is not None:
        if eval_knowledge_base is None or eval_knowledge_base.organization_id != organization.pk:
            raise TuningRefused("the fixed evaluation set needs a knowledge base of this organization")
        if not eval_questions.is_file():
            raise TuningRefused(f"no evaluation set at {eval_questions}")
    busy = TuningRun.objects.filter(organization=organization).exclude(status__in=TuningRun.FINISHED).first()
    if busy is not None:
        raise TuningRefused(f"run {busy.pk} is still {busy.status}; wait for it or cancel it first")
    with transaction.atomic():
        run = TuningRun.objects.create(
            organization=organization,
            created_by=by if getattr(by, "pk", None) else None,
            base_model=settings.LLM_MODEL,
            hparams=hp.as_dict(),
            eval_set=(
                {
                    "knowledge_base": eval_knowledge_base.pk,
                    "questions": str(eval_questions.resolve()),
                    "limit": eval_limit,
                }
                if eval_questions is not None and eval_knowledge_base is not None
                else {}
            ),
        )
        try:
            run.dataset = _snapshot(dataset, jobs.run_dir(run) / "dataset")
        except OSError as exc:
            raise TuningRefused(f"cannot copy the dataset: {exc}") from None
        run.save(update_fields=["dataset"])
        if start:
            transaction.on_commit(lambda: tuning_run_send(run_id=run.pk))
    return run


def tuning_run_send(*, run_id: int) -> None:
    if settings.CELERY_TASK_ALWAYS_EAGER:
        # The embedded mode has no worker; a training run must not hold up the request.
        def run() -> None:
            try:
                background.send(background.TUNING_RUN, run_id)
            finally:
                connections.close_all()  # this thread's own database connection

        threading.Thread(target=run, name="tuning-run", daemon=True).start()
    else:
        background.send(background.TUNING_RUN, run_id)


def tuning_run_cancel(*, run: TuningRun, by: Any = None) -> TuningRun:
    """Ask a queued or running run to stop (training stops at its next step)."""
    if run.finished:
        raise TuningRefused(f"run {run.pk} has already {run.status}")
    run.cancel_requested = True
    run.save(update_fields=["cancel_requested"])
    if run.status == TuningRun.Status.QUEUED:
        TuningRun.objects.filter(pk=run.pk, status=TuningRun.Status.QUEUED).update(
            status=TuningRun.Status.CANCELLED, finished_at=timezone.now()
        )
        run.refresh_from_db()
    return run


def tuning_run_promote(*, run: TuningRun, by: Any = None) -> TuningRun:
    """Answers for the organization use this run's adapter from the next question on. Refused
    unless the run succeeded and the gate said promote."""
    if run.status != TuningRun.Status.SUCCEEDED:
        raise TuningRefused(f"run {run.pk} has not finished evaluating ({run.status})")
    if not run.decision.get("promote"):
        raise TuningRefused(f"the evaluation gate refused run {run.pk}: {run.decision.get('reason', 'not evaluated')}")
    if run.promoted:
        return run
    # An OpenAI-compatible server must serve the adapter before customers' answers ask for it.
    from resolvo.answers.llm.base import LLMUnavailable
    from resolvo.answers.services import Adapter, llm_backend

    try:
        jobs.adapter_serve(llm_backend(), Adapter(name=run.adapter_name, path=run.adapter_path))
    except (ValueError, LLMUnavailable) as exc:
        raise TuningRefused(f"run {run.pk} cannot be promoted: {exc}") from None
    with transaction.atomic():
        TuningRun.objects.filter(organization_id=run.organization_id, promoted=True).update(promoted=False)
        run.promoted, run.promoted_at = True, timezone.now()
        run.save(update_fields=["promoted", "promoted_at"])
    return run


def tuning_rollback(*, organization: Organization, by: Any = None) -> int:
    """Back to the base model for the organization's answers; how many runs were un-promoted."""
    return TuningRun.objects.filter(organization=organization, promoted=True).update(promoted=False)
