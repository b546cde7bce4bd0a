"""``manage.py tuning_run``: start, follow, cancel, promote and roll back fine-tuning runs.

tuning_run start --org SLUG DATASET_DIR [--hparams '{"max_steps": 50}'] [--eval-kb NAME
                 --eval-questions FILE.jsonl [--eval-limit N]] [--wait]
tuning_run status --org SLUG [RUN_ID]
tuning_run cancel --org SLUG RUN_ID
tuning_run promote --org SLUG RUN_ID
tuning_run rollback --org SLUG
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.knowledge.management.commands._common import scope_from_options
from resolvo.organizations.selectors import OrganizationNotFound, organization_get
from resolvo.tuning import jobs, services
from resolvo.tuning.gate import METRICS
from resolvo.tuning.models import TuningRun
from resolvo.tuning.selectors import run_in_organization, runs_for_organization


class Command(BaseCommand):
    help = "Start, follow, cancel, promote and roll back LoRA tuning runs."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("action", choices=["start", "status", "cancel", "promote", "rollback"])
        parser.add_argument("target", nargs="?", help="DATASET_DIR for start, RUN_ID otherwise")
        parser.add_argument("--org", required=True, help="Organization slug")
        parser.add_argument("--hparams", default="{}", help="JSON object of hyper-parameters and limits")
        parser.add_argument("--eval-kb", help="Knowledge base of the fixed evaluation set")
        parser.add_argument("--eval-questions", type=Path, help="The fixed evaluation set (evaluate's JSONL)")
        parser.add_argument("--eval-limit", type=int, default=0, help="Questions of the fixed set to use")
        parser.add_argument("--wait", action="store_true", help="start: train and evaluate in this process")
        parser.add_argument("--json", action="store_true", help="status: print the run as JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        try:
            organization = organization_get(slug=opts["org"])
        except OrganizationNotFound as exc:
            raise CommandError(str(exc)) from None
        action, target = opts["action"], opts["target"]
        try:
            if action == "start":
                if not target:
                    raise CommandError("start needs the dataset folder (manage.py tuning_dataset makes one)")
                try:
                    hparams = json.loads(opts["hparams"])
                except json.JSONDecodeError as exc:
                    raise CommandError(f"--hparams is not JSON: {exc}") from None
                kb = scope_from_options(opts["org"], opts["eval_kb"]) if opts["eval_kb"] else None
                run = services.tuning_run_create(
                    organization=organization,
                    dataset=Path(target),
                    hparams=hparams,
                    eval_knowledge_base=kb,
                    eval_questions=opts["eval_questions"],
                    eval_limit=opts["eval_limit"],
                    start=not opts["wait"],
                )
                self.stdout.write(f"Run {run.pk} queued: {run.dataset['train']} training examples.")
                if opts["wait"]:
                    jobs.tuning_run_execute(run_id=run.pk)
                    self._show(run_in_organization(organization=organization, run_id=run.pk), opts["json"])
            elif action == "rollback":
                n = services.tuning_rollback(organization=organization)
                self.stdout.write("Answers use the base model now." if n else "Answers already use the base model.")
            elif action == "status" and not target:
                for run in runs_for_organization(organization=organization)[:20]:
                    flag = " (promoted)" if run.promoted else ""
                    self.stdout.write(f"{run.pk:>5} {run.status:<11} step {run.step}/{run.total_steps}{flag}")
            else:
                run = self._run(organization, target)
                if action == "cancel":
                    services.tuning_run_cancel(run=run)
                    self.stdout.write(f"Run {run.pk}: cancel requested.")
                elif action == "promote":
                    services.tuning_run_promote(run=run)
                    self.stdout.write(f"Run {run.pk} promoted: answers use {run.adapter_name}.")
                else:
                    self._show(run, opts["json"])
        except services.TuningRefused as exc:
            raise CommandError(str(exc)) from None

    @staticmethod
    def _run(organization: Any, target: str | None) -> TuningRun:
        try:
            return run_in_organization(organization=organization, run_id=int(target or ""))
        except (ValueError, TuningRun.DoesNotExist):
            raise CommandError(f"no tuning run {target!r} in this organization") from None

    def _show(self, run: TuningRun, as_json: bool) -> None:
        data = {
            "id": run.pk,
            "status": run.status,
            "error": run.error,
            "step": run.step,
            "total_steps": run.total_steps,
            "metrics": {k: v for k, v in run.metrics.items() if k != "losses"},
            "evaluation": run.evaluation,
            "adapter": run.adapter_path,
            "promoted": run.promoted,
        }
        self.stdout.write(json.dumps(data, indent=2) if as_json else _summary(data))


def _summary(data: dict[str, Any]) -> str:
    lines = [f"Run {data['id']}: {data['status']} (step {data['step']}/{data['total_steps']})"]
    if data["error"]:
        lines.append(f"  error: {data['error'].splitlines()[0]}")
    for name, sides in (data["evaluation"].get("sets") or {}).items():
        lines.append(f"  {name}:")
        for metric in METRICS:
            lines.append(f"    {metric:<25} {sides['before'].get(metric)!s:>8} -> {sides['after'].get(metric)!s:>8}")
    decision = data["evaluation"].get("decision")
    if decision:
        lines.append(f"  gate: {'promote' if decision['promote'] else 'refused'}: {decision['reason']}")
    return "\n".join(lines)
