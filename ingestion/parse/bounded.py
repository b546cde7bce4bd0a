"""Parsing in a child process with a wall-clock and a memory limit.

A small hostile upload (a zip bomb, a PDF whose streams inflate a thousandfold, deeply nested HTML)
can keep a parser busy for an hour and take gigabytes of memory, or crash it outright. A time limit
in the worker alone leaves the memory unbounded, so :func:`parse_bounded` runs
:func:`~ingestion.parse.parse_bytes` in a fresh child process whose address space is capped with
``RLIMIT_AS`` (an allocation over it raises ``MemoryError`` instead of swapping the machine) and
which is killed at the wall-clock limit. The worker itself only ever holds the input and the
finished result. Parsers wrap what they catch, and libxml2 reports a failed allocation as an
"unknown error", so a failure counts as running out of memory when a ``MemoryError`` is anywhere
in its chain of causes or when the child's address space had come within 10% of the limit.

Why a fresh interpreter (:mod:`subprocess`) rather than :mod:`multiprocessing`:

* Celery's prefork pool runs tasks in daemonic processes, and :mod:`multiprocessing` refuses to
  start children from those ("daemonic processes are not allowed to have children") whatever the
  start method; :mod:`subprocess` works from any process and any thread.
* Forking after torch and tokenizer threads have started is unsafe, and a forked child would carry
  the worker's torch mappings (about 1.5 GB of address space with the bundled model), all counted
  against ``RLIMIT_AS``. The child here imports the parsers and nothing else.
* The price is the child's start-up, mostly importing the parsers: about 0.3 s of CPU per file
  (a ``forkserver`` child starts in about 0.01 s, but the prefork pool refuses it).

The request goes to the child's stdin as one pickle; the reply comes back as one pickle on the
child's original stdout (its ``sys.stdout`` is pointed at stderr, so a stray ``print`` in a library
cannot corrupt it), and the parent unpickles only the result types it expects. Records the parsers
log in the child are logged again in the parent under the same logger names. The child also limits
itself with ``alarm`` and ``RLIMIT_CPU``, both enforced by the kernel, so it stops on time even when
a parser is stuck in C code or the worker that started it was killed. It gets a trimmed environment:
no database URLs or secret keys.

Linux and other Unix systems only; ``sys.executable`` must be the Python interpreter (true for
Celery, gunicorn and ``manage.py``).
"""

from __future__ import annotations

import io
import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion.parse import parse_bytes
from ingestion.parse.detect import CSV, HTML, MARKDOWN, TEXT, TSV, detect_mime_type
from ingestion.sizes import format_size
from ingestion.types import IngestionError, ParsedDocument, TransientError

__all__ = ["PARSE_BYTES", "ParseLimits", "parse_bounded", "run_bounded"]

logger = logging.getLogger(__name__)

GIB = 1024**3

PARSE_BYTES = "ingestion.parse:parse_bytes"
"""The function :func:`parse_bounded` runs in the child, as ``module:name``."""

# The child's own alarm rings this long after the parent would have killed it, so the parent
# normally reports the limit; the alarm matters once the parent is gone.
_CHILD_GRACE_SECONDS = 2
# Set aside in the child before parsing and freed when the parser returns or raises, so that
# there is memory to build the reply even when the parser used up the rest.
_RESERVE_BYTES = 16 * 1024 * 1024
# A failure once the child's address space came this close to the limit counts as running out
# of memory: C libraries (libxml2 under lxml) report a failed allocation as some other error.
_NEAR_LIMIT = 0.9
# Log records forwarded from one child; a damaged PDF can log one per page.
_MAX_FORWARDED_RECORDS = 100
# Environment variables the child keeps: Python's own, locale and paths. Secrets stay behind.
_KEPT_ENVIRONMENT = frozenset({"PATH", "HOME", "TMPDIR", "LANG", "LANGUAGE", "TZ"})
_KEPT_PREFIXES = ("PYTHON", "LC_")
# Put first on the child's PYTHONPATH so that it imports this very copy of ``ingestion``.
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])

# What a reply says happened.
_OK, _ERROR, _MEMORY, _CRASH = "ok", "error", "memory", "crash"


@dataclass(frozen=True)
class ParseLimits:
    """How long and how much memory parsing one file may take.

    ``seconds`` is wall-clock time for the whole child, its start-up (about 0.3 s) included.
    ``memory_bytes`` caps the child's address space, of which the interpreter, the parsers and
    the input take about 100 MB; a well-formed 18 MB CSV needs about 400 MB in all. With
    ``enabled=False`` the file is parsed in the calling process with no limits at all (for
    debugging, or for callers that isolate the work themselves).
    """

    seconds: float = 120.0
    memory_bytes: int = 2 * GIB
    enabled: bool = True
    inline_max_bytes: int = 0
    """Plain-text formats (text, Markdown, HTML, CSV) up to this size are parsed in the calling
    process: their parsers run in linear time and memory, so a small one cannot run away, and a
    help centre of small articles does not pay 0.3 s of child start-up per file. PDF and Word
    files (compressed containers, where a small file can unpack to gigabytes) always go to the
    child. 0 (the default) isolates everything."""

    def __post_init__(self) -> None:
        if not self.seconds > 0:
            raise ValueError(f"ParseLimits.seconds must be positive, not {self.seconds!r}")
        if self.memory_bytes <= 0:
            raise ValueError(f"ParseLimits.memory_bytes must be positive, not {self.memory_bytes!r}")

    def time_message(self) -> str:
        """What the person who uploaded the file reads when the time limit was reached."""
        seconds = f"{self.seconds:g}"
        return (
            f"Reading this file took longer than the {seconds}-second limit; it may be malformed or far too "
            "complex. Split it into smaller files."
        )

    def memory_message(self) -> str:
        """What the person who uploaded the file reads when the memory limit was reached."""
        return (
            f"Reading this file needed more than the {format_size(self.memory_bytes)} memory limit; it may be "
            "malformed, far too complex, or unpack to something much bigger than itself. Split it into "
            "smaller files."
        )


def parse_bounded(
    data: bytes, *, filename: str, mime_type: str | None, max_bytes: int, limits: ParseLimits
) -> ParsedDocument:
    """:func:`~ingestion.parse.parse_bytes` within ``limits``, in a child process.

    Arguments and result are those of ``parse_bytes``. Raises :class:`IngestionError` when the
    file fails: the parser's own ``IngestionError`` (same message), the time or memory limit (a
    message naming it), an unexpected exception in a parser, or a crash of the child. Raises
    :class:`TransientError` when the child was killed from outside (the kernel's OOM killer, an
    operator) or could not be started, and :class:`RuntimeError` when it started but could not
    run. Safe to call from
    any thread and from daemonic processes. No child process outlives the call, even when the
    call is interrupted (by a Celery soft time limit raising in the caller, say).
    """
    if not limits.enabled or _safe_inline(data, filename=filename, mime_type=mime_type, limits=limits):
        return parse_bytes(data, filename=filename, mime_type=mime_type, max_bytes=max_bytes)
    options = {"filename": filename, "mime_type": mime_type, "max_bytes": max_bytes}
    return run_bounded(PARSE_BYTES, data, options=options, limits=limits)


_INLINE_TYPES = frozenset({TEXT, MARKDOWN, HTML, CSV, TSV})


def _safe_inline(data: bytes, *, filename: str, mime_type: str | None, limits: ParseLimits) -> bool:
    """Small and of a plain-text format (see :attr:`ParseLimits.inline_max_bytes`)."""
    if len(data) > limits.inline_max_bytes:
        return False
    declared = mime_type.split(";", 1)[0].strip().lower() if mime_type else None
    return detect_mime_type(data, filename, declared_type=declared or None) in _INLINE_TYPES


def run_bounded(target: str, data: bytes, *, options: dict[str, Any], limits: ParseLimits) -> ParsedDocument:
    """Call ``target(data, **options)`` in a child process within ``limits``, as :func:`parse_bounded` does.

    ``target`` names an importable function as ``"module:name"`` that returns a
    :class:`ParsedDocument`: :data:`PARSE_BYTES` for :func:`parse_bounded`, parsers that
    misbehave on purpose in tests. ``options`` must pickle. Always isolates, whatever
    ``limits.enabled`` says.
    """
    filename = str(options.get("filename", "?"))
    request = pickle.dumps(
        {"target": target, "data": data, "options": options, "log_level": logging.getLogger().getEffectiveLevel()},
        protocol=pickle.HIGHEST_PROTOCOL,
    )
    command = [
        sys.executable,
        "-P",  # never import from the working directory
        "-m",
        __name__,
        str(math.ceil(limits.seconds) + _CHILD_GRACE_SECONDS),
        str(limits.memory_bytes),
    ]
    started = time.monotonic()
    timed_out = False
    try:
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=_child_environment(),
            start_new_session=True,  # a ^C in the worker's terminal is the worker's to handle
        )
    except OSError as exc:  # out of processes or memory for a moment
        raise TransientError(f"Could not start a process to read the file: {exc}") from exc
    with child:
        try:
            try:
                output, _ = child.communicate(request, timeout=limits.seconds)
            except subprocess.TimeoutExpired:
                timed_out = True
                child.kill()
                output, _ = child.communicate()
        finally:
            if child.returncode is None:  # interrupted by an exception in this thread
                child.kill()
                child.wait()
    del request
    if timed_out:
        logger.warning("Parsing %r stopped at the %g s time limit", filename, limits.seconds)
        raise IngestionError(limits.time_message())
    if child.returncode < 0:
        raise _signal_error(-child.returncode, filename=filename, limits=limits)
    document = _result(output, child.returncode, filename=filename, limits=limits)
    logger.debug("Parsed %r in a child process in %.2f s", filename, time.monotonic() - started)
    return document


# --- Parent side -------------------------------------------------------------------------------


def _child_environment() -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if name in _KEPT_ENVIRONMENT or name.startswith(_KEPT_PREFIXES)
    }
    python_path = [_PACKAGE_ROOT, *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
    environment["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(python_path))
    return environment


def _result(output: bytes, returncode: int, *, filename: str, limits: ParseLimits) -> ParsedDocument:
    """The document in the child's reply, or the error the reply describes."""
    try:
        reply = _ResultUnpickler(io.BytesIO(output)).load() if output else None
    except Exception as exc:
        raise RuntimeError(f"The parse child for {filename!r} sent an unreadable reply ({exc!r})") from exc
    if not isinstance(reply, dict):
        raise RuntimeError(
            f"The parse child for {filename!r} exited with status {returncode} without a reply; "
            "its messages are in this process's stderr."
        )
    _log_again(reply.get("records", []))
    kind, document = reply.get("kind"), reply.get("document")
    if kind == _OK and isinstance(document, ParsedDocument):
        return document
    if kind == _ERROR:
        raise IngestionError(str(reply.get("message")))
    if kind == _MEMORY:
        logger.warning("Parsing %r stopped at the %s memory limit", filename, format_size(limits.memory_bytes))
        raise IngestionError(limits.memory_message())
    if kind == _CRASH:
        logger.error("Parsing %r failed unexpectedly in the child process:\n%s", filename, reply.get("details"))
        raise IngestionError(
            f"This file could not be read: the reader failed unexpectedly ({reply.get('message')}). The file "
            "may be damaged or not what its name says; try saving it again or in another format."
        )
    raise RuntimeError(f"The parse child for {filename!r} sent an unexpected reply of kind {kind!r}")


def _signal_error(number: int, *, filename: str, limits: ParseLimits) -> Exception:
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    logger.warning("The parse child for %r was killed by %s", filename, name)
    if number in (signal.SIGALRM, signal.SIGXCPU):  # the child's own time limits
        return IngestionError(limits.time_message())
    if number in (signal.SIGKILL, signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        return TransientError(
            f"Reading this file was stopped from outside ({name}), probably because the server ran low on "
            "memory or was shutting down."
        )
    return IngestionError(
        f"This file could not be read: the reader crashed ({name}). The file may be damaged; try saving it "
        "again or in another format."
    )


def _log_again(records: list[dict[str, Any]]) -> None:
    """Log the child's records here, under their own logger names and at this process's levels."""
    for fields in records:
        target = logging.getLogger(fields["name"])
        if target.isEnabledFor(fields["levelno"]):
            target.handle(logging.makeLogRecord(fields))


class _ResultUnpickler(pickle.Unpickler):
    """Unpickles a child's reply, refusing every class but the result types.

    The child has just read a hostile file: should a parser bug ever hand control to it, the
    parent still runs no code it did not choose.
    """

    _ALLOWED = frozenset(
        {
            ("ingestion.types", "ParsedDocument"),
            ("ingestion.types", "Section"),
            # Markdown front matter (YAML, TOML) holds dates.
            *(("datetime", name) for name in ("date", "datetime", "time", "timedelta", "timezone")),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"a parse result may not contain {module}.{name}")


# --- Child side --------------------------------------------------------------------------------


def _child_main(argv: list[str]) -> None:
    """The child: ``python -m ingestion.parse.bounded ALARM_SECONDS MEMORY_BYTES``.

    Reads the request pickle from stdin, writes one reply pickle to stdout, and exits without
    the interpreter's clean-up (which takes seconds with a big document in memory).
    """
    import resource

    seconds, memory_bytes = int(argv[0]), int(argv[1])
    # SIGALRM and SIGXCPU kill the process (their default action) without running any Python.
    signal.signal(signal.SIGALRM, signal.SIG_DFL)
    signal.alarm(seconds)
    resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 5))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    replies = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print in a library goes to stderr, not into the reply
    request = pickle.loads(sys.stdin.buffer.read())  # noqa: S301 - written by the parent
    collector = _RecordCollector()
    root = logging.getLogger()
    root.addHandler(collector)
    root.setLevel(request["log_level"])
    module_name, _, function_name = request["target"].partition(":")
    target: Callable[..., ParsedDocument] = getattr(__import__(module_name, fromlist=[function_name]), function_name)
    out_of_memory = pickle.dumps({"kind": _MEMORY, "records": []})
    reserve = bytearray(_RESERVE_BYTES)
    resource.setrlimit(resource.RLIMIT_AS, (memory_bytes, memory_bytes))
    try:
        reply = _call(target, request.pop("data"), request["options"], reserve=reserve)
        if reply["kind"] != _OK and _peak_address_space() >= _NEAR_LIMIT * memory_bytes:
            reply = {"kind": _MEMORY}
        payload = pickle.dumps({**reply, "records": collector.all_records()}, protocol=pickle.HIGHEST_PROTOCOL)
    except MemoryError:  # even after freeing the reserve
        payload = out_of_memory
    replies.write(payload)
    replies.flush()
    os._exit(0)


def _call(
    target: Callable[..., ParsedDocument], data: bytes, options: dict[str, Any], *, reserve: bytearray
) -> dict[str, Any]:
    """Run ``target`` and describe the outcome as a reply; ``reserve`` is freed whatever happens."""
    try:
        document = target(data, **options)
    except MemoryError:
        reserve.clear()  # and reply below, outside this block, whose traceback keeps the parser's objects
    except IngestionError as exc:
        reserve.clear()
        if not _caused_by_memory(exc):
            return {"kind": _ERROR, "message": str(exc)}
    except BaseException as exc:  # whatever else a parser raises on this input
        reserve.clear()
        message = f"{type(exc).__name__}: {exc}"[:300]
        return {"kind": _CRASH, "message": message, "details": "".join(traceback.format_exception(exc))}
    else:
        reserve.clear()
        return {"kind": _OK, "document": document}
    return {"kind": _MEMORY}


def _peak_address_space() -> int:
    """The child's largest address space so far in bytes (Linux; 0 where unknown)."""
    try:
        with open("/proc/self/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmPeak:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0


def _caused_by_memory(exc: BaseException) -> bool:
    """Whether ``exc`` was raised while handling a ``MemoryError`` (parsers wrap what they catch)."""
    current: BaseException | None = exc
    for _ in range(20):
        if current is None:
            return False
        if isinstance(current, MemoryError):
            return True
        current = current.__cause__ or current.__context__
    return False


class _RecordCollector(logging.Handler):
    """Keeps log records, formatted and picklable, to send back to the parent."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[dict[str, Any]] = []
        self.dropped = 0

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.records) >= _MAX_FORWARDED_RECORDS:
            self.dropped += 1
            return
        try:
            fields = dict(record.__dict__)
            fields.update(msg=record.getMessage(), args=None, exc_info=None, exc_text=_exception_text(record))
        except Exception:
            self.handleError(record)
            return
        self.records.append(fields)

    def all_records(self) -> list[dict[str, Any]]:
        if not self.dropped:
            return self.records
        message = f"{self.dropped} more log records from the parse child were dropped"
        note = logging.makeLogRecord({"name": __name__, "levelno": logging.WARNING, "levelname": "WARNING"})
        note.msg = message
        return [*self.records, dict(note.__dict__)]


def _exception_text(record: logging.LogRecord) -> str | None:
    if record.exc_text:
        return record.exc_text
    if record.exc_info and record.exc_info[0] is not None:
        return "".join(traceback.format_exception(*record.exc_info))
    return None


if __name__ == "__main__":
    _child_main(sys.argv[1:])
