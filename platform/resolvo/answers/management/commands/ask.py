"""``manage.py ask --org SLUG --kb NAME [--json] "question"``"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from resolvo.answers.services import answer_stream
from resolvo.knowledge.management.commands._common import add_scope_arguments, resolve_scope


class Command(BaseCommand):
    help = "Ask the assistant a question, streamed with its sources and verified citations."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("question")
        parser.add_argument("--json", action="store_true", help="Print one JSON object when done")

    def handle(self, *args: Any, **opts: Any) -> None:
        kb = resolve_scope(opts["org"], opts["kb"])
        out: dict[str, Any] = {
            "answer": "",
            "abstained": False,
            "citations": [],
            "retrieved": [],
            "timings": {},
            "usage": {},
        }
        streamed: list[str] = []
        for event in answer_stream(knowledge_base=kb, question=opts["question"], channel="cli"):
            data = event.data
            if event.type == "sources":
                out["retrieved"] = [
                    {"source": s["source"], "chunk_id": s["chunk_id"], "score": s["score"]} for s in data["sources"]
                ]
            elif event.type == "token":
                streamed.append(data["text"])
                if not opts["json"]:
                    self.stdout.write(data["text"], ending="")
                    self.stdout.flush()
            elif event.type == "citations":
                out["citations"] = [
                    {k: c[k] for k in ("n", "source", "title", "section", "url")} for c in data["citations"]
                ]
            elif event.type == "done":
                out["abstained"] = data["abstained"]
                out["answer"] = data["answer"]
                out["timings"], out["usage"] = data["timings"], data["usage"]
                if data["abstained"]:
                    out["reason"] = data["reason"]
            elif event.type == "error":
                out.update(answer=data["message"], abstained=True, error=data["message"], handoff=data["handoff"])
        if opts["json"]:
            self.stdout.write(json.dumps(out, indent=2, ensure_ascii=False))
            return
        if out["answer"] != "".join(streamed).strip():
            # Verification replaced the streamed draft (abstention or a quoted passage).
            self.stdout.write("\n\n" + out["answer"])
        self.stdout.write("")
        for c in out["citations"]:
            where = f" > {c['section']}" if c["section"] else ""
            self.stdout.write(f"[{c['n']}] {c['title']}{where} ({c['url'] or c['source']})")
        stages = ", ".join(f"{k} {v:.0f} ms" for k, v in out["timings"].items())
        self.stderr.write(f"{stages}")
