"""Operability: health and readiness probes, Prometheus metrics, request ids and structured logs.

``requestid`` and ``logs`` import no Django (the LLM backends and the Celery signals use them);
``health`` and ``metrics`` are the HTTP side. See docs/observability.md.
"""
