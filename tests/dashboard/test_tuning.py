"""The Assistant model page: owners and admins only, the gate's comparison shown, promotion only
of what the gate passed, one-click rollback, tenant isolation of runs."""

from __future__ import annotations

from typing import Any

import pytest

from resolvo.organizations.models import Membership
from resolvo.tuning.gate import GateRules, decide
from resolvo.tuning.models import TuningRun
from tests.dashboard.conftest import Desk, _desk


def metrics(f1: float, abstained: float) -> dict[str, Any]:
    return {
        "questions": 12,
        "answer_f1": f1,
        "citation_precision": 0.6,
        "quoted_answerable": 0.5,
        "abstention_answerable": abstained,
        "abstention_unanswerable": 0.5,
        "outcomes": {},
    }


def finished_run(kb: Any, *, after_f1: float, after_abstained: float, **fields: Any) -> TuningRun:
    sets = {"heldout": {"before": metrics(0.30, 0.2), "after": metrics(after_f1, after_abstained)}}
    return TuningRun.objects.create(
        organization=kb.organization,
        base_model="bundled:smollm2-135m-instruct",
        status=TuningRun.Status.SUCCEEDED,
        step=40,
        total_steps=40,
        dataset={"train": 80, "heldout": 12},
        evaluation={"sets": sets, "decision": decide(sets, GateRules())},
        adapter_path="/data/tuning/org-1/run-1/adapter",
        adapter_name=f"resolvo-{kb.organization.slug}-run",
        **fields,
    )


@pytest.fixture
def admin_desk(make_kb: Any) -> Desk:
    return _desk(make_kb, "acme", "ada", role=Membership.Role.ADMIN)


def test_agents_cannot_manage_the_model(desk: Desk) -> None:
    assert desk.client.get("/app/assistant/").status_code == 403
    assert b"Assistant model" not in desk.client.get("/app/inbox/").content


def test_the_comparison_and_the_verdict_are_shown(admin_desk: Desk, django_assert_max_num_queries: Any) -> None:
    finished_run(admin_desk.kb, after_f1=0.12, after_abstained=0.9)
    good = finished_run(admin_desk.kb, after_f1=0.41, after_abstained=0.1)
    with django_assert_max_num_queries(10):
        page = admin_desk.client.get("/app/assistant/").content.decode()
    assert "Base model" in page and "Answer token-F1" in page and "Abstained, answerable" in page
    assert "The gate refused this adapter:" in page
    assert "Answer token-F1 on the held-out answers must rise by at least 0.01 (0.300 → 0.120)" in page
    assert "Abstained, answerable on the held-out answers must not rise (0.200 → 0.900)" in page
    assert "The gate passed this adapter" in page
    assert page.count("data-promote") == 1 and f'action="/app/assistant/runs/{good.pk}/"' in page
    assert "+0.110" in page  # the change, signed


def test_promotion_follows_the_gate_and_rollback_is_one_click(admin_desk: Desk) -> None:
    refused = finished_run(admin_desk.kb, after_f1=0.12, after_abstained=0.9)
    good = finished_run(admin_desk.kb, after_f1=0.41, after_abstained=0.1)
    page = admin_desk.client.post(f"/app/assistant/runs/{refused.pk}/", {"promote": "1"}, follow=True)
    assert "the evaluation gate refused run" in page.content.decode()
    assert not TuningRun.objects.filter(promoted=True).exists()

    page = admin_desk.client.post(f"/app/assistant/runs/{good.pk}/", {"promote": "1"}, follow=True)
    assert "promoted" in page.content.decode()
    good.refresh_from_db()
    assert good.promoted and "data-rollback" in page.content.decode()

    page = admin_desk.client.post("/app/assistant/rollback/", follow=True)
    assert "Rolled back: answers use the base model" in page.content.decode()
    assert not TuningRun.objects.filter(promoted=True).exists()


def test_another_organizations_runs_are_out_of_reach(admin_desk: Desk, make_kb: Any) -> None:
    other = _desk(make_kb, "globex", "gus", role=Membership.Role.OWNER)
    theirs = finished_run(other.kb, after_f1=0.41, after_abstained=0.1)
    assert admin_desk.client.post(f"/app/assistant/runs/{theirs.pk}/", {"promote": "1"}).status_code == 404
    assert f"Run {theirs.pk}" not in admin_desk.client.get("/app/assistant/").content.decode()
    theirs.refresh_from_db()
    assert not theirs.promoted


def test_training_without_approved_answers_says_what_is_missing(admin_desk: Desk, settings: Any, tmp_path: Any) -> None:
    settings.TUNING_DIR = tmp_path
    page = admin_desk.client.post("/app/assistant/", follow=True).content.decode()
    assert "Not enough approved answers to train on yet: 0 usable" in page
    assert not TuningRun.objects.exists()


def test_a_running_run_shows_progress_and_polls(admin_desk: Desk) -> None:
    TuningRun.objects.create(
        organization=admin_desk.kb.organization,
        base_model="bundled:smollm2-135m-instruct",
        status=TuningRun.Status.TRAINING,
        step=10,
        total_steps=40,
        metrics={"loss": 1.234},
        dataset={"train": 80, "heldout": 12},
    )
    page = admin_desk.client.get("/app/assistant/").content.decode()
    assert "Step 10 of 40, loss 1.234" in page and 'value="25"' in page
    assert 'hx-trigger="every 5s"' in page and "data-train disabled" in page  # one run at a time
    part = admin_desk.client.get("/app/assistant/runs/").content.decode()
    assert part.lstrip().startswith('<section id="tuning-runs"')
