"""``manage.py evaluate --org SLUG --kb NAME QUESTIONS.jsonl [--k 5] [--retrieval-only] [--json]``"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.answers.evaluation import Report, distinct, load_questions
from resolvo.knowledge.management.commands._common import add_scope_arguments, scope_from_options
from resolvo.knowledge.selectors import chunks_search


class Command(BaseCommand):
    help = "Measure retrieval and answer quality on a JSONL question set."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("questions", type=Path)
        parser.add_argument("--k", type=int, default=5, help="Passages given to the model and the MRR cut-off")
        parser.add_argument("--retrieval-only", action="store_true", help="Skip generation (fast retrieval tuning)")
        parser.add_argument("--limit", type=int, default=0, help="Only the first N questions")
        parser.add_argument("--mode", choices=["hybrid", "dense"], default="hybrid")
        parser.add_argument("--json", action="store_true", help="Print one JSON object")

    def handle(self, *args: Any, **opts: Any) -> None:
        kb = scope_from_options(opts["org"], opts["kb"])
        try:
            questions = load_questions(opts["questions"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if opts["limit"]:
            questions = questions[: opts["limit"]]
        report = Report(k=opts["k"])
        engine = None
        if not opts["retrieval_only"]:
            from resolvo.answers.services import answer_engine

            engine = answer_engine()
        for i, q in enumerate(questions, start=1):
            t0 = time.perf_counter()
            chunks = chunks_search(knowledge_base=kb, query=q.question, limit=max(30, 3 * opts["k"]), mode=opts["mode"])
            report.add_retrieval(q, distinct(c.doc_key for c in chunks), (time.perf_counter() - t0) * 1000)
            if engine is not None:
                from resolvo.answers.services import answer_collect

                result = answer_collect(knowledge_base=kb, question=q.question, channel="evaluate")
                report.add_answer(
                    q,
                    answer=result.answer,
                    abstained=result.abstained,
                    cited_docs=[c["source"].rsplit(".", 1)[0] for c in result.citations],
                    timings=result.timings,
                )
            if not opts["json"] and i % 25 == 0:
                self.stderr.write(f"{i}/{len(questions)}")
        data = report.as_dict()
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        for key, value in data.items():
            if isinstance(value, dict):
                for sub, v in value.items():
                    self.stdout.write(f"{key + '.' + sub:<34} {v}")
            else:
                self.stdout.write(f"{key:<34} {value}")
