"""``manage.py tuning_dataset --org SLUG [--since DATE] [--pairs FILE.jsonl --kb NAME] [--out DIR]
[--heldout 0.2]``: build the organization's fine-tuning dataset and print its report."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from resolvo.knowledge.management.commands._common import scope_from_options
from resolvo.organizations.selectors import OrganizationNotFound, organization_get
from resolvo.tuning.dataset import DatasetError, dataset_build


class Command(BaseCommand):
    help = "Build a chat-format fine-tuning dataset from the organization's approved answers."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--org", required=True, help="Organization slug")
        parser.add_argument("--since", help="Only records decided or rated from this date (YYYY-MM-DD or ISO time)")
        parser.add_argument("--pairs", type=Path, help="A JSONL file of curated pairs (question, answer, ...)")
        parser.add_argument("--kb", help="Knowledge base for curated pairs that do not name one")
        parser.add_argument("--out", type=Path, help="Output folder (default: under TUNING_DIR)")
        parser.add_argument("--heldout", type=float, default=0.2, help="Share of conversations held out (0.2)")
        parser.add_argument(
            "--max-abstention-share",
            type=float,
            default=0.15,
            help="Most of the examples that may teach the abstention (0.15)",
        )
        parser.add_argument("--json", action="store_true", help="Print the whole report as JSON")

    def handle(self, *args: Any, **opts: Any) -> None:
        from resolvo.answers.services import answer_engine

        try:
            organization = organization_get(slug=opts["org"])
        except OrganizationNotFound as exc:
            raise CommandError(str(exc)) from None
        kb = scope_from_options(opts["org"], opts["kb"]) if opts["kb"] else None
        since = None
        if opts["since"]:
            try:
                since = datetime.fromisoformat(opts["since"])
            except ValueError:
                raise CommandError(f"--since: not a date: {opts['since']!r} (YYYY-MM-DD)") from None
            if timezone.is_naive(since):
                since = timezone.make_aware(since)
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        out = opts["out"] or Path(settings.TUNING_DIR) / f"org-{organization.pk}" / "datasets" / stamp
        try:
            dataset = dataset_build(
                organization=organization,
                engine=answer_engine(),
                out_dir=out,
                since=since,
                curated=opts["pairs"],
                knowledge_base=kb,
                heldout_fraction=opts["heldout"],
                max_abstention_share=opts["max_abstention_share"],
            )
        except DatasetError as exc:
            raise CommandError(str(exc)) from None
        report = dataset.report.as_dict()
        if opts["json"]:
            self.stdout.write(json.dumps(report, indent=2, ensure_ascii=False))
            return
        self.stdout.write(f"Dataset in {dataset.directory}")
        self.stdout.write(f"  read:    {report['sources']}")
        self.stdout.write(f"  kept:    {report['kept_total']} {report['kept']}")
        self.stdout.write(f"  dropped: {report['dropped_total']} {report['dropped']}")
        self.stdout.write(f"  personal data replaced: {report['personal_data_replaced']}")
        self.stdout.write(
            f"  split:   {report['train']} train / {report['heldout']} held out "
            f"({report['groups'].get('train', 0)} / {report['groups'].get('heldout', 0)} conversations)"
        )
        self.stdout.write(f"  report:  {dataset.directory / 'report.json'}")
