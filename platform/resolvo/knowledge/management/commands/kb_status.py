"""``manage.py kb_status --org SLUG --kb NAME [--json]``"""

from __future__ import annotations

import dataclasses
import json
from typing import IO, Any, cast

from django.core.management.base import BaseCommand, CommandParser
from rich.console import Console
from rich.table import Table

from resolvo.knowledge.management.commands._common import add_scope_arguments, scope_from_options
from resolvo.knowledge.selectors import document_as_dict, documents_for_kb, knowledge_base_summary


class Command(BaseCommand):
    help = "Show every document of a knowledge base with its status, chunk count and error."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("--json", action="store_true", help="Print one JSON object")

    def handle(self, *args: Any, **opts: Any) -> None:
        kb = scope_from_options(opts["org"], opts["kb"])
        docs = [document_as_dict(d) for d in documents_for_kb(knowledge_base=kb)]
        summary = dataclasses.asdict(knowledge_base_summary(knowledge_base=kb))
        if opts["json"]:
            self.stdout.write(
                json.dumps(
                    {
                        "organization": kb.organization.slug,
                        "knowledge_base": kb.name,
                        "summary": summary,
                        "documents": docs,
                    },
                    indent=2,
                )
            )
            return
        console = Console(file=cast(IO[str], self.stdout._out))
        table = Table(title=f"{kb}")
        for column in ("Source", "Status", "Chunks", "Version", "Error"):
            table.add_column(column)
        for d in docs:
            style = {"failed": "red", "indexed": "green"}.get(str(d["status"]), "yellow")
            chunks = (
                f"{d['chunks_done']}/{d['chunks']}" if d["status"] not in ("indexed", "failed") else str(d["chunks"])
            )
            table.add_row(str(d["source"]), f"[{style}]{d['status']}[/]", chunks, str(d["version"]), str(d["error"]))
        console.print(table)
        console.print(", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in summary.items()))
