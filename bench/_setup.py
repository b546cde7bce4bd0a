"""Run a bench script against a throw-away embedded platform (SQLite + embedded Qdrant)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATASET = REPO.parent / "shared" / "datasets" / "emanual"
MTRAG = REPO.parent / "shared" / "datasets" / "mtrag-dev"


def django_embedded(data_dir: str | None = None) -> Path:
    """Configure Django in embedded mode in a fresh data directory and migrate it."""
    target = Path(data_dir or tempfile.mkdtemp(prefix="resolvo-bench-"))
    target.mkdir(parents=True, exist_ok=True)
    for var in ("DATABASE_URL", "REDIS_URL", "QDRANT_URL"):
        os.environ.pop(var, None)
    os.environ["RESOLVO_DATA_DIR"] = str(target)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "resolvo.settings"
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    return target
