"""``manage.py documents_recover [--orphaned]``: send again the documents nobody is working on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.knowledge import jobs


class Command(BaseCommand):
    help = (
        "Send again the documents nobody is working on (what beat's sweeper does every "
        "INGEST_SWEEP_SECONDS). --orphaned, for the embedded mode's start-up, treats every "
        "unfinished document as abandoned."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--orphaned",
            action="store_true",
            help="Every unfinished document is abandoned (embedded mode only: no other process works)",
        )

    def handle(self, *args: Any, **opts: Any) -> None:
        if opts["orphaned"] and not settings.CELERY_TASK_ALWAYS_EAGER:
            raise CommandError("--orphaned is for the embedded mode; with workers, run it without --orphaned.")
        count = jobs.documents_recover_stalled(orphaned="all" if opts["orphaned"] else "none")
        self.stdout.write(f"{count} document(s) sent again.")
