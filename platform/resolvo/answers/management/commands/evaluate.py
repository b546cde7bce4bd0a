"""``manage.py evaluate --org SLUG --kb NAME QUESTIONS.jsonl [--k 5] [--retrieval-only] [--json]
[--query last|condensed|rewrite] [--condense off|concat|carry|llm]``"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from resolvo.answers import condense, gate
from resolvo.answers.evaluation import QUERY_MODES, EvalQuestion, Report, distinct, load_questions
from resolvo.knowledge.management.commands._common import add_scope_arguments, scope_from_options
from resolvo.knowledge.models import KnowledgeBase
from resolvo.knowledge.selectors import RetrievedChunk, chunks_search


class Command(BaseCommand):
    help = "Measure retrieval and answer quality on a JSONL question set (one-shot questions or conversations)."

    def add_arguments(self, parser: CommandParser) -> None:
        add_scope_arguments(parser)
        parser.add_argument("questions", type=Path)
        parser.add_argument("--k", type=int, default=5, help="Passages given to the model and the MRR cut-off")
        parser.add_argument("--retrieval-only", action="store_true", help="Skip generation (fast retrieval tuning)")
        parser.add_argument("--limit", type=int, default=0, help="Only the first N questions")
        parser.add_argument("--mode", choices=["hybrid", "dense"], default="hybrid")
        parser.add_argument(
            "--query",
            choices=QUERY_MODES,
            default="condensed",
            help="For conversations: retrieve with the last turn alone, the engine's condensing over the "
            "conversation (default), or the set's human rewrite where it has one",
        )
        parser.add_argument(
            "--condense",
            choices=condense.MODES,
            default=None,
            help="Condensing mode for this run (default: the ANSWER_CONDENSE setting)",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object")

    def handle(self, *args: Any, **opts: Any) -> None:
        kb = scope_from_options(opts["org"], opts["kb"])
        try:
            questions = load_questions(opts["questions"])
        except (OSError, ValueError) as exc:
            raise CommandError(str(exc)) from None
        if opts["limit"]:
            questions = questions[: opts["limit"]]
        k, query_mode = opts["k"], opts["query"]
        condense_mode = opts["condense"] or settings.ANSWER_CONDENSE
        report = Report(k=k)
        gate_config = gate.GateConfig.from_settings()
        engine = None
        if not opts["retrieval_only"]:
            from resolvo.answers.services import answer_engine, answer_engine_reset

            if condense_mode != settings.ANSWER_CONDENSE:
                settings.ANSWER_CONDENSE = condense_mode  # this process only: the engine reads it once
                answer_engine_reset()
            engine = answer_engine()
        search_cache: dict[str, list[RetrievedChunk]] = {}

        def search(query: str) -> list[RetrievedChunk]:
            if query not in search_cache:
                search_cache[query] = chunks_search(
                    knowledge_base=kb, query=query, limit=max(30, 3 * k), mode=opts["mode"]
                )
            return search_cache[query]

        for i, q in enumerate(questions, start=1):
            search_cache.clear()  # only the queries of one task repeat
            queries = self._queries(q, condense_mode)
            query = queries[query_mode]
            t0 = time.perf_counter()
            chunks = search(query)
            report.add_retrieval(q, distinct(c.doc_key for c in chunks), (time.perf_counter() - t0) * 1000)
            if q.rewrite:
                ranked = {m: distinct(c.doc_key for c in search(text)) for m, text in queries.items()}
                report.add_query_recall(q, ranked)
            assessment = gate.assess(query, chunks[:k], history=q.history, config=gate_config)
            report.add_gate(q, assessment.outcome)
            if engine is not None:
                self._answer(kb, q, query_mode, report)
            if not opts["json"] and i % 25 == 0:
                self.stderr.write(f"{i}/{len(questions)}")
        data = report.as_dict()
        data["query"], data["condense"] = query_mode, condense_mode
        if opts["json"]:
            self.stdout.write(json.dumps(data, indent=2))
            return
        self._print(data)

    @staticmethod
    def _queries(q: EvalQuestion, condense_mode: str) -> dict[str, str]:
        """The retrieval query of each mode. A one-shot record (no conversation) has one query; a
        task without a human rewrite falls back to the record's ``question``."""
        if not q.last_turn:
            return dict.fromkeys(QUERY_MODES, q.question)
        condensed = q.last_turn
        if q.history:
            backend = None
            if condense_mode == "llm":
                from resolvo.answers.services import llm_backend

                backend = llm_backend()
            condensed = condense.condense(
                q.last_turn, q.history, mode=condense_mode, backend=backend, timeout_s=settings.LLM_TIMEOUT
            )
        return {"last": q.last_turn, "condensed": condensed, "rewrite": q.rewrite or q.question}

    @staticmethod
    def _answer(kb: KnowledgeBase, q: EvalQuestion, query_mode: str, report: Report) -> None:
        from resolvo.answers.engine import Turn
        from resolvo.answers.models import AnswerTrace
        from resolvo.answers.services import answer_collect

        history: list[Turn] = []
        question = q.typed
        if query_mode == "condensed":
            history = [Turn(t.role, t.content) for t in q.history]
        elif query_mode == "rewrite" and q.rewrite:
            question = q.rewrite
        result = answer_collect(knowledge_base=kb, question=question, history=history, channel="evaluate")
        if not result.error:  # what the customer watched appear must be what stands
            report.answers += 1
            report.withdrawn += result.streamed != result.answer.strip()
        report.add_answer(
            q,
            answer=result.answer,
            abstained=result.abstained,
            cited_docs=[c["source"].rsplit(".", 1)[0] for c in result.citations],
            timings=result.timings,
        )
        outcome = ""
        if result.trace_id is not None:
            outcome = AnswerTrace.objects.filter(pk=result.trace_id).values_list("outcome", flat=True).first() or ""
        if not outcome:  # an engine that does not record outcomes yet
            outcome = "error" if result.error else "abstained" if result.abstained else result.reason or "answered"
        report.add_outcome(q, outcome)

    def _print(self, data: dict[str, Any], prefix: str = "") -> None:
        for key, value in data.items():
            if isinstance(value, dict):
                self._print(value, prefix + key + ".")
            else:
                self.stdout.write(f"{prefix + key:<34} {value}")
