"""The promotion gate's decision, check by check (the end-to-end refusal of a real adapter
trained to abstain is in test_job.py)."""

from __future__ import annotations

from typing import Any

from resolvo.tuning.gate import GateRules, decide


def metrics(**values: Any) -> dict[str, Any]:
    base = {
        "questions": 20,
        "answer_f1": 0.30,
        "citation_precision": 0.60,
        "quoted_answerable": 0.50,
        "abstention_answerable": 0.20,
        "abstention_unanswerable": 0.50,
    }
    return {**base, **values}


def comparison(before: dict[str, Any], after: dict[str, Any], fixed_after: dict[str, Any] | None = None) -> Any:
    sets = {"heldout": {"before": before, "after": after}}
    if fixed_after is not None:
        sets["fixed"] = {"before": metrics(), "after": fixed_after}
    return sets


RULES = GateRules(min_gain=0.01, tolerance=0.0)


def test_better_answers_with_nothing_worse_are_promoted() -> None:
    decision = decide(comparison(metrics(), metrics(answer_f1=0.36, quoted_answerable=0.3), metrics()), RULES)
    assert decision["promote"] is True
    assert all(c["passed"] for c in decision["checks"])


def test_a_worse_adapter_is_refused_with_the_reason() -> None:
    decision = decide(comparison(metrics(), metrics(answer_f1=0.12, abstention_answerable=0.9)), RULES)
    assert decision["promote"] is False
    failed = {(c["set"], c["metric"]) for c in decision["checks"] if not c["passed"]}
    assert failed == {("heldout", "answer_f1"), ("heldout", "abstention_answerable")}
    assert "abstention_answerable must not rise (0.2 -> 0.9)" in decision["reason"]


def test_better_answers_with_worse_citations_are_refused() -> None:
    decision = decide(comparison(metrics(), metrics(answer_f1=0.40, citation_precision=0.55)), RULES)
    assert decision["promote"] is False
    assert "citation_precision must not fall" in decision["reason"]


def test_fewer_abstentions_on_unanswerable_questions_are_refused() -> None:
    decision = decide(comparison(metrics(), metrics(answer_f1=0.40, abstention_unanswerable=0.3)), RULES)
    assert decision["promote"] is False


def test_a_regression_on_the_fixed_set_is_refused() -> None:
    decision = decide(comparison(metrics(), metrics(answer_f1=0.40), metrics(answer_f1=0.25)), RULES)
    assert decision["promote"] is False
    assert "fixed answer_f1 must not fall" in decision["reason"]


def test_no_change_is_not_an_improvement_and_the_tolerance_allows_noise() -> None:
    assert decide(comparison(metrics(), metrics()), RULES)["promote"] is False
    noisy = comparison(metrics(), metrics(answer_f1=0.35, citation_precision=0.58))
    assert decide(noisy, GateRules(min_gain=0.01, tolerance=0.03))["promote"] is True


def test_without_a_measurable_answer_nothing_is_promoted() -> None:
    empty = {"heldout": {"before": metrics(answer_f1=None), "after": metrics(answer_f1=None)}}
    decision = decide(empty, RULES)
    assert decision["promote"] is False
    assert "no answer quality could be measured" in decision["reason"]
