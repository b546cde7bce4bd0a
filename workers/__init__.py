"""Celery app and thin tasks. Start a worker with ``python -m celery -A workers worker -Q ingest,ingest-bulk``."""

from workers.celery import app

__all__ = ["app"]
