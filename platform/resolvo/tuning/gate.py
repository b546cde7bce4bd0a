"""The promotion gate: a run's adapter is measured against what answers customers now, on the
run's held-out split and on a fixed evaluation set, and is promotable only if answer quality
improves without worse citation precision or abstention.

Both sides run the whole answer engine (retrieval, the sentence gate, the quote fallback), so the
numbers are those of real answers: token-F1 against the approved (or gold) answer, citation
precision against the documents the approved answer cites (or the set's gold documents), the
share of answerable questions that fell back to a quote, and abstention on answerable and on
unanswerable questions.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resolvo.answers.engine import AnswerEngine, Turn
from resolvo.answers.evaluation import EvalQuestion, EvalTurn, Report, load_questions
from resolvo.knowledge.models import KnowledgeBase

METRICS = ("answer_f1", "citation_precision", "quoted_answerable", "abstention_answerable", "abstention_unanswerable")


@dataclass(frozen=True)
class GateRules:
    min_gain: float = 0.01
    """How much the held-out token-F1 must rise for the adapter to count as better."""
    tolerance: float = 0.0
    """How much worse any other measure may get (0: not at all)."""


def heldout_questions(examples: Sequence[dict[str, Any]]) -> list[tuple[int, EvalQuestion]]:
    """(knowledge base id, question) for each held-out example, from its ``meta``."""
    out = []
    for i, e in enumerate(examples):
        meta = e["meta"]
        out.append(
            (
                int(meta["knowledge_base"]),
                EvalQuestion(
                    id=str(meta.get("record", i)),
                    question=str(meta["question"]),
                    gold_doc_ids=tuple(meta.get("gold_doc_ids") or ()),
                    answer=str(meta["answer"]) if meta.get("answerable", True) else "",
                    answerable=bool(meta.get("answerable", True)),
                    answerability="answerable" if meta.get("answerable", True) else "unanswerable",
                    history=tuple(EvalTurn(t["role"], t["content"]) for t in meta.get("history") or ()),
                ),
            )
        )
    return out


def fixed_questions(path: Path, knowledge_base: KnowledgeBase, limit: int = 0) -> list[tuple[int, EvalQuestion]]:
    questions = load_questions(path)
    return [(knowledge_base.pk, q) for q in (questions[:limit] if limit else questions)]


def measure(engine: AnswerEngine, questions: Sequence[tuple[int, EvalQuestion]]) -> dict[str, Any]:
    """Answer every question with ``engine`` and summarise (the ``METRICS``, outcomes, time)."""
    from resolvo.answers.services import answer_collect

    kbs = {
        kb.pk: kb
        for kb in KnowledgeBase.objects.filter(pk__in={k for k, _ in questions}).select_related("organization")
    }
    report = Report(k=5)
    outcomes: Counter[str] = Counter()
    started = time.perf_counter()
    for kb_id, q in questions:
        result = answer_collect(
            knowledge_base=kbs[kb_id],
            question=q.typed,
            history=[Turn(t.role, t.content) for t in q.history],
            channel="tuning",
            engine=engine,
        )
        cited = [c["source"].rsplit(".", 1)[0] for c in result.citations]
        report.add_answer(q, answer=result.answer, abstained=result.abstained, cited_docs=cited, timings=result.timings)
        outcome = result.outcome or "error"
        outcomes[("answerable" if q.answerable else "unanswerable") + ":" + outcome] += 1
    data = report.as_dict()
    answerable = sum(n for k, n in outcomes.items() if k.startswith("answerable:"))
    return {
        "questions": len(questions),
        "answer_f1": data["answer_f1"],
        "citation_precision": data["citation_precision"],
        "quoted_answerable": round(outcomes["answerable:quoted"] / answerable, 4) if answerable else None,
        "abstention_answerable": data["abstention_answerable"],
        "abstention_unanswerable": data["abstention_unanswerable"],
        "outcomes": dict(sorted(outcomes.items())),
        "seconds": round(time.perf_counter() - started, 1),
    }


def decide(comparison: dict[str, dict[str, dict[str, Any]]], rules: GateRules) -> dict[str, Any]:
    """Whether to promote, with every check spelled out. ``comparison`` is
    ``{set name: {"before": metrics, "after": metrics}}``; the held-out set carries the quality
    requirement, every set the no-regression ones."""
    checks: list[dict[str, Any]] = []

    def check(name: str, metric: str, ok: bool, before: float | None, after: float | None, rule: str) -> None:
        checks.append({"set": name, "metric": metric, "before": before, "after": after, "rule": rule, "passed": ok})

    # Quality is judged where it can be measured: the held-out split, else the fixed set (a
    # held-out split of unanswerable questions only has no answer to compare with).
    measured = [
        name
        for name, sides in comparison.items()
        if sides["before"].get("answer_f1") is not None and sides["after"].get("answer_f1") is not None
    ]
    quality_set = "heldout" if "heldout" in measured else next(iter(measured), None)
    for name, sides in comparison.items():
        before, after = sides["before"], sides["after"]
        for metric in METRICS:
            b, a = before.get(metric), after.get(metric)
            if b is None or a is None:
                continue
            if metric == "answer_f1" and name == quality_set:
                check(name, metric, a >= b + rules.min_gain, b, a, f"must rise by at least {rules.min_gain:g}")
            elif metric in ("answer_f1", "citation_precision", "abstention_unanswerable"):
                check(name, metric, a >= b - rules.tolerance, b, a, "must not fall")
            elif metric == "abstention_answerable":
                check(name, metric, a <= b + rules.tolerance, b, a, "must not rise")
            # quoted_answerable is reported, not gated: fewer quotes is the hope, not a rule.
    has_quality = any(c["metric"] == "answer_f1" and c["set"] == quality_set for c in checks)
    failed = [c for c in checks if not c["passed"]]
    if not has_quality:
        reason = "no answer quality could be measured (no held-out example with an answer)"
    elif failed:
        reason = "; ".join(f"{c['set']} {c['metric']} {c['rule']} ({c['before']} -> {c['after']})" for c in failed)
    else:
        reason = "answer quality improved and nothing got worse"
    return {"promote": has_quality and not failed, "reason": reason, "checks": checks}
