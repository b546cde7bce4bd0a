"""The Celery application, configured from Django settings (``CELERY_*``).

Tasks live in ``workers/tasks.py`` and are found the way a worker finds them at start-up
(``autodiscover_tasks``, run by the loader's ``import_default_modules``), so importing this module
never imports the platform's models.
"""

from __future__ import annotations

import os

from celery import Celery

from resolvo.observability import celery_signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resolvo.settings")

app = Celery("resolvo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(lambda: ["workers"], related_name="tasks")
# The request id travels in task headers; task outcomes are counted (docs/observability.md).
celery_signals.connect(app)
