"""The Celery application, configured from Django settings (``CELERY_*``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery import Celery

_PLATFORM = str(Path(__file__).resolve().parents[1] / "platform")
if _PLATFORM not in sys.path:
    sys.path.insert(1, _PLATFORM)
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resolvo.settings")

app = Celery("resolvo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["workers"], related_name="tasks", force=True)
app.conf.beat_schedule = {
    "recover-stalled-documents": {"task": "workers.tasks.documents_recover_stalled", "schedule": 300.0},
}
