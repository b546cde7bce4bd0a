"""Log records with the request id: a filter that adds it, and a JSON-lines formatter.

``LOG_FORMAT=json`` (the default when DEBUG is off) writes one JSON object per line; ``text`` is
the readable form for development. Both carry ``request_id`` (``-`` outside a request or task).
Plain Python: no Django import (settings.LOGGING names these classes).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any

from resolvo.observability.requestid import get_request_id

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"

# Attributes every LogRecord has; anything else on a record came from ``extra=`` and is kept.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id``. Attach it to handlers, so records from every logger get it."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "request_id", None):
            # django.request logs a 4xx/5xx response after the middleware has returned; such
            # records carry the request itself, which the middleware labelled.
            labelled = getattr(getattr(record, "request", None), "request_id", None)
            record.request_id = get_request_id() or labelled or "-"
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, message, request_id,
    process, the ``extra=`` fields, and the traceback as ``exc_info`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or get_request_id() or None,
            "process": record.process,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        return json.dumps(entry, default=str, ensure_ascii=False)
