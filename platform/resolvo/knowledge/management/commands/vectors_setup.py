"""``manage.py vectors_setup [--wait SECONDS] [--json]``: the vector store's migration."""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingestion.types import TransientError
from resolvo.knowledge import vectors


class Command(BaseCommand):
    help = (
        "Create the chunks collection for the configured embedding model, or bring an existing one "
        "to the QDRANT_* settings (on-disk vectors, quantization, HNSW), with its payload indexes. "
        "Idempotent: run it with every deployment, after migrate and before the web and workers start."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--wait", type=float, default=0.0, metavar="SECONDS", help="Retry this long while Qdrant is unreachable"
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object")

    def handle(self, *args: Any, **opts: Any) -> None:
        deadline = time.monotonic() + opts["wait"]
        while True:
            try:
                report = vectors.store_setup()
                break
            except TransientError as exc:
                if time.monotonic() >= deadline:
                    raise CommandError(str(exc)) from None
                time.sleep(2)
            except ValueError as exc:  # a collection this adapter did not make, or a bad setting
                raise CommandError(str(exc)) from None
        if opts["json"]:
            self.stdout.write(json.dumps(dataclasses.asdict(report), indent=2))
            return
        if report.engine == "embedded":
            state = "created" if report.created else "present"
            self.stdout.write(
                f"{report.collection}: {state} (embedded engine; the QDRANT_* layout settings apply to a server)"
            )
        elif report.created:
            self.stdout.write(self.style.SUCCESS(f"{report.collection}: created with {report.config}"))
        elif report.changed:
            self.stdout.write(
                self.style.WARNING(
                    f"{report.collection}: updated {', '.join(report.changed)} to {report.config} "
                    "(the server rebuilds its segments in the background)"
                )
            )
        else:
            self.stdout.write(f"{report.collection}: up to date")
