"""The assistant-model page (owners and admins): train on approved answers, follow runs, see the
gate's before/after comparison, promote an adapter, roll back to the base model. Thin adapters
over ``tuning.services``."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from resolvo.dashboard.context import Desk, desk_for
from resolvo.tuning import services
from resolvo.tuning.dataset import DatasetError, dataset_build
from resolvo.tuning.gate import METRICS
from resolvo.tuning.models import TuningRun
from resolvo.tuning.selectors import run_in_organization, runs_for_organization

LABELS = {
    "answer_f1": "Answer token-F1",
    "citation_precision": "Citation precision",
    "quoted_answerable": "Fell back to quoting",
    "abstention_answerable": "Abstained, answerable",
    "abstention_unanswerable": "Abstained, unanswerable",
}


def _manager(request: HttpRequest) -> Desk:
    desk = desk_for(request)
    if not desk.can_manage:
        raise PermissionDenied("Only owners and admins manage the assistant's model.")
    return desk


SETS = {"heldout": "Held-out answers", "fixed": "Fixed evaluation set"}


def _tables(run: TuningRun) -> list[dict[str, object]]:
    """The comparison, one table per set: a row per measure with the change and the gate's check."""
    checks = {(c["set"], c["metric"]): c for c in run.evaluation.get("decision", {}).get("checks", [])}
    tables = []
    for name, sides in (run.evaluation.get("sets") or {}).items():
        rows = []
        for metric in METRICS:
            before, after = sides["before"].get(metric), sides["after"].get(metric)
            if before is None and after is None:
                continue
            delta = round(after - before, 4) if before is not None and after is not None else None
            rows.append(
                {
                    "metric": LABELS[metric],
                    "before": before,
                    "after": after,
                    "delta": delta,
                    "check": checks.get((name, metric)),
                }
            )
        tables.append({"name": SETS.get(name, name), "questions": sides["before"].get("questions"), "rows": rows})
    return tables


def _failures(run: TuningRun) -> list[str]:
    """The checks the adapter failed, in words."""
    out = []
    for c in run.evaluation.get("decision", {}).get("checks", []):
        if not c["passed"]:
            where = SETS.get(c["set"], c["set"]).lower()
            out.append(f"{LABELS[c['metric']]} on the {where} {c['rule']} ({c['before']:.3f} → {c['after']:.3f})")
    return out


def _context(desk: Desk) -> dict[str, object]:
    runs = list(runs_for_organization(organization=desk.organization)[:20])
    for run in runs:
        run.tables = _tables(run)  # type: ignore[attr-defined]
        run.failures = _failures(run)  # type: ignore[attr-defined]
        run.percent = round(100 * run.step / run.total_steps) if run.total_steps else 0  # type: ignore[attr-defined]
    return {
        "desk": desk,
        "nav": "assistant",
        "runs": runs,
        "active": any(not r.finished for r in runs),
        "promoted": next((r for r in runs if r.promoted), None)
        or TuningRun.objects.filter(organization=desk.organization, promoted=True).first(),
        "base_model": settings.LLM_MODEL,
    }


@login_required
@require_http_methods(["GET", "POST"])
def assistant(request: HttpRequest) -> HttpResponse:
    desk = _manager(request)
    if request.method == "POST":
        return _start(request, desk)
    return render(request, "dashboard/assistant.html", _context(desk))


@login_required
@require_GET
def assistant_runs(request: HttpRequest) -> HttpResponse:
    """The runs panel alone, polled by htmx while a run is active."""
    return render(request, "dashboard/_assistant_runs.html", _context(_manager(request)))


def _start(request: HttpRequest, desk: Desk) -> HttpResponse:
    from pathlib import Path

    from resolvo.answers.services import answer_engine

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    out = Path(settings.TUNING_DIR) / f"org-{desk.organization.pk}" / "datasets" / stamp
    try:
        dataset = dataset_build(organization=desk.organization, engine=answer_engine(), out_dir=out)
        if not dataset.report.train:
            kept = sum(dataset.report.kept.values())
            dropped = sum(dataset.report.dropped.values())
            messages.error(
                request,
                f"Not enough approved answers to train on yet: {kept} usable, {dropped} dropped "
                f"({', '.join(f'{n} {why}' for why, n in dataset.report.dropped.items()) or 'none found'}). "
                "Sent and edited drafts, and answers customers rated up, count.",
            )
            return redirect("dashboard:assistant")
        run = services.tuning_run_create(organization=desk.organization, dataset=out, by=request.user)
    except (DatasetError, services.TuningRefused) as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            f"Run {run.pk} started on {dataset.report.train} approved answers ({dataset.report.heldout} held out).",
        )
    return redirect("dashboard:assistant")


def _run(request: HttpRequest, run_id: int) -> tuple[Desk, TuningRun]:
    desk = _manager(request)
    try:
        return desk, run_in_organization(organization=desk.organization, run_id=run_id)
    except TuningRun.DoesNotExist:
        raise Http404("No such run.") from None


@login_required
@require_POST
def run_action(request: HttpRequest, run_id: int) -> HttpResponse:
    _, run = _run(request, run_id)
    try:
        if "promote" in request.POST:
            services.tuning_run_promote(run=run, by=request.user)
            messages.success(request, f"Run {run.pk} promoted: answers use its adapter from the next question.")
        elif "cancel" in request.POST:
            services.tuning_run_cancel(run=run, by=request.user)
            messages.success(request, f"Run {run.pk}: stopping at its next step.")
    except services.TuningRefused as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:assistant")


@login_required
@require_POST
def rollback(request: HttpRequest) -> HttpResponse:
    desk = _manager(request)
    if services.tuning_rollback(organization=desk.organization, by=request.user):
        messages.success(request, "Rolled back: answers use the base model from the next question.")
    return redirect("dashboard:assistant")
