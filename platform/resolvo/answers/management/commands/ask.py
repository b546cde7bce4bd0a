"""``manage.py ask --org SLUG --kb NAME [--json] "question"``"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from resolvo.answers.services import answer_collect
from resolvo.knowledge.management.commands._common import add_scope_arguments, scope_from_options


class Command(BaseCommand):
    help = "Ask the assistant a question, streamed with its sources and verified citations."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("question")
        parser.add_argument("--json", action="store_true", help="Print one JSON object when done")

    def handle(self, *args: Any, **opts: Any) -> None:
        kb = scope_from_options(opts["org"], opts["kb"])

        def show(text: str) -> None:
            self.stdout.write(text, ending="")
            self.stdout.flush()

        result = answer_collect(
            knowledge_base=kb, question=opts["question"], channel="cli", on_token=None if opts["json"] else show
        )
        out: dict[str, Any] = {
            "answer": result.answer,
            "abstained": result.abstained,
            "citations": [{k: c[k] for k in ("n", "source", "title", "section", "url")} for c in result.citations],
            "retrieved": [
                {"source": s["source"], "chunk_id": s["chunk_id"], "score": s["score"]} for s in result.sources
            ],
            "timings": result.timings,
            "usage": result.usage,
        }
        if result.error:
            out.update(error=result.error, handoff=result.handoff)
        elif result.abstained:
            out["reason"] = result.reason
        if opts["json"]:
            self.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
            return
        if result.replaced or result.error:
            # Verification replaced the streamed draft (abstention or a quoted passage), or the
            # message explains why there is no answer.
            self.stdout.write("\n\n" + out["answer"])
        self.stdout.write("")
        for c in out["citations"]:
            where = f" > {c['section']}" if c["section"] else ""
            self.stdout.write(f"[{c['n']}] {c['title']}{where} ({c['url'] or c['source']})")
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in out["timings"].items())
        self.stderr.write(f"{stages}")
