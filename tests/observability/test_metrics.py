"""/metrics: request, answer, handoff, ingestion and queue metrics, access control, and the
multi-process mode (several processes writing, one scrape summing)."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
import redis
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from resolvo.answers import services as answer_services
from resolvo.answers.engine import Trace
from resolvo.answers.models import AnswerTrace
from resolvo.observability import metrics
from tests.conftest import REPO
from tests.observability.stubs import closed_port

pytestmark = pytest.mark.django_db


def scrape(client: Client, **headers: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_route_name_not_path(client: Client) -> None:
    before = scrape(client)
    assert client.get("/").status_code == 200
    assert client.get("/cited/some-unguessable-token/").status_code in (400, 404)
    assert client.get("/no/such/page/12345").status_code == 404
    after = scrape(client)
    key = "resolvo_http_requests_total"
    assert (
        value(after, key, route="home", method="GET", status="200")
        == value(before, key, route="home", method="GET", status="200") + 1
    )
    assert value(after, key, route="<unmatched>", method="GET", status="404") >= 1
    routes = {dict(labels).get("route") for (name, labels) in after if name == key}
    assert "knowledge-section" in routes
    assert not any("12345" in r or "unguessable" in r for r in routes if r)
    assert value(after, "resolvo_http_request_duration_seconds_count", route="home", method="GET") >= 1


def test_a_saved_answer_trace_records_outcome_stages_and_tokens(client: Client, make_kb: Any) -> None:
    kb = make_kb()
    before = scrape(client)
    answered = Trace(question="How do I reset it?", answer="Hold the button. [1]", backend="openai")
    answered.prompt_tokens, answered.completion_tokens = 420, 17
    answered.timings = {"retrieve": 12.5, "generate": 830.0, "total": 900.0}
    quoted = Trace(question="q", answer="quote [1]", draft="model text", abstain_reason="quoted", backend="openai")
    abstained = Trace(question="q", abstained=True, abstain_reason="no_relevant_passages", backend="openai")
    failed = Trace(question="q", error="LLM server unreachable", abstained=True, backend="openai")
    for trace in (answered, quoted, abstained, failed):
        answer_services._save(kb, trace, "widget")  # the one place traces are written
    assert AnswerTrace.objects.count() == 4
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    for outcome in ("answered", "quoted", "abstained", "error"):
        assert delta("resolvo_answers_total", outcome=outcome, channel="widget") == 1, outcome
    assert delta("resolvo_llm_tokens_total", kind="prompt", backend="openai") == 420
    assert delta("resolvo_llm_tokens_total", kind="completion", backend="openai") == 17
    assert delta("resolvo_answer_stage_seconds_count", stage="generate") == 1
    assert delta("resolvo_answer_stage_seconds_sum", stage="generate") == pytest.approx(0.83)


def test_handoffs_are_counted_by_trigger(client: Client, make_kb: Any, django_capture_on_commit_callbacks: Any) -> None:
    from resolvo.conversations import services

    kb = make_kb()
    conversation = services.conversation_start(organization=kb.organization, knowledge_bases=[kb], visitor_id="v")
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        services.conversation_handoff(conversation=conversation, trigger="customer_asked")
    assert (
        value(scrape(client), "resolvo_handoffs_total", trigger="customer_asked")
        == value(before, "resolvo_handoffs_total", trigger="customer_asked") + 1
    )


def test_documents_are_counted_by_final_status(
    client: Client, make_kb: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from resolvo.knowledge import jobs
    from resolvo.knowledge.models import Document

    doc = Document.objects.create(knowledge_base=make_kb(), source="broken.pdf")
    before = scrape(client)
    with django_capture_on_commit_callbacks(execute=True):
        jobs.document_fail(document_id=doc.pk, message="not a PDF")
    key = "resolvo_ingest_documents_total"
    assert value(scrape(client), key, status="failed") == value(before, key, status="failed") + 1


def test_celery_queue_lengths_are_read_from_redis(client: Client, settings: Any) -> None:
    r = redis.Redis.from_url(settings.REDIS_URL)
    r.delete("webhooks", "ingest-bulk", "ingest-bulk\x06\x163")
    try:
        r.rpush("webhooks", b"m1", b"m2")
        r.rpush("ingest-bulk", b"m")
        r.rpush("ingest-bulk\x06\x163", b"m")  # a message sent with a priority
        samples = scrape(client)
    finally:
        r.delete("webhooks", "ingest-bulk", "ingest-bulk\x06\x163")
    assert value(samples, "resolvo_celery_broker_up") == 1
    assert value(samples, "resolvo_celery_queue_length", queue="webhooks") == 2
    assert value(samples, "resolvo_celery_queue_length", queue="ingest-bulk") == 2
    assert {dict(labels)["queue"] for (name, labels) in samples if name == "resolvo_celery_queue_length"} == {
        "ingest",
        "ingest-bulk",
        "webhooks",
        "answer",
        "tuning",
    }


def test_an_unreachable_broker_is_reported_not_raised(client: Client, settings: Any) -> None:
    settings.REDIS_URL = f"redis://127.0.0.1:{closed_port()}/0"
    samples = scrape(client)
    assert value(samples, "resolvo_celery_broker_up") == 0
    assert not any(name == "resolvo_celery_queue_length" for name, _ in samples)


def test_metrics_with_a_token_need_the_bearer(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = "scrape-secret"
    refused = client.get("/metrics")
    assert refused.status_code == 401 and refused["WWW-Authenticate"].startswith("Bearer")
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    assert b"resolvo_" not in client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").content
    # With the token, any address may scrape (Prometheus outside the private network, a proxy).
    ok = client.get("/metrics", HTTP_AUTHORIZATION="Bearer scrape-secret", REMOTE_ADDR="203.0.113.9")
    assert ok.status_code == 200 and b"resolvo_http_requests_total" in ok.content


def test_metrics_without_a_token_only_for_direct_private_clients(client: Client, settings: Any) -> None:
    settings.METRICS_TOKEN = ""
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.0.3.7").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="203.0.113.9").status_code == 403
    # Through a reverse proxy on the same host, the internet would look like loopback.
    assert client.get("/metrics", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="203.0.113.9").status_code == 403


def test_multiprocess_mode_sums_every_process(tmp_path: Any) -> None:
    """Two processes record (as uvicorn workers or Celery pool processes would), a third scrapes."""
    env = {
        **os.environ,
        "PROMETHEUS_MULTIPROC_DIR": str(tmp_path),
        "DJANGO_SETTINGS_MODULE": "resolvo.settings_test",
        "REDIS_URL": "",
    }
    record = (
        "import django; django.setup()\n"
        "from resolvo.observability import metrics\n"
        "metrics.handoff_recorded(trigger='rule'); metrics.document_finished(status='indexed')\n"
    )
    for _ in range(2):
        subprocess.run([sys.executable, "-c", record], cwd=REPO, env=env, check=True, timeout=120)
    assert list(tmp_path.iterdir())
    scrape_code = (
        "import django; django.setup()\n"
        "from prometheus_client import generate_latest\n"
        "from resolvo.observability.metrics import scrape_registry\n"
        "print(generate_latest(scrape_registry()).decode())\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", scrape_code], cwd=REPO, env=env, check=True, capture_output=True, text=True, timeout=120
    ).stdout
    assert 'resolvo_handoffs_total{trigger="rule"} 2.0' in out
    assert 'resolvo_ingest_documents_total{status="indexed"} 2.0' in out


def test_answer_outcome_precedence() -> None:
    assert metrics.answer_outcome(error="", abstained=True, abstain_reason="quoted") == "quoted"
    assert metrics.answer_outcome(error="x", abstained=True, abstain_reason="") == "error"
