"""parse_bounded: parsing in a child process under a wall-clock and a memory limit.

The misbehaving parsers below are real functions the child imports from this module by name
(``run_bounded``'s ``target``); the hostile files come from tests/hostile.py. Time budgets are
generous: the machine is shared and slow, and a child starts in about 0.3 s on a quiet one.
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import re
import resource
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import billiard
import docx
import pytest

from ingestion.parse import parse_bytes
from ingestion.parse.bounded import ParseLimits, parse_bounded, run_bounded
from ingestion.types import IngestionError, ParsedDocument, Section, TransientError
from tests import hostile
from tests.documents import pdf_bytes

MB = 1024 * 1024
GIB = 1024 * MB
DEMO = Path(__file__).resolve().parents[2] / "demo" / "helpcentre"
HERE = __name__  # the child imports the parsers below from this module
LIMITS = ParseLimits(seconds=60, memory_bytes=GIB)
# How late a limit may be reported on a loaded machine: child start-up, kill and clean-up.
MARGIN_S = 15


# --- Parsers that misbehave on purpose (run in the child) ------------------------------------


def sleeping_parser(data: bytes, **options: Any) -> ParsedDocument:
    time.sleep(3600)
    raise AssertionError("woke up")


def backtracking_parser(data: bytes, **options: Any) -> ParsedDocument:
    # Catastrophic backtracking: hours inside the regex engine's C loop, which no Python-level
    # timeout (signal handler, thread) can interrupt.
    re.fullmatch(r"(a+)+b", "a" * 64)
    raise AssertionError("matched")


def memory_hog(data: bytes, **options: Any) -> ParsedDocument:
    chunks = []
    while True:
        chunks.append(b"x" * (16 * MB))  # written, so really resident


def wrapping_memory_hog(data: bytes, **options: Any) -> ParsedDocument:
    try:
        memory_hog(data)
    except Exception as exc:  # as parse.docx and parse.pdf wrap every failure
        raise IngestionError(f"The Word document could not be read: {type(exc).__name__}.") from exc
    raise AssertionError("unreachable")


def silent_memory_hog(data: bytes, **options: Any) -> ParsedDocument:
    # As libxml2 does under lxml: C allocations fail, and the error says nothing about memory.
    import ctypes

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    while libc.malloc(MB):  # never freed
        pass
    raise IngestionError("The Word document could not be read: unknown error (<string>, line 0).")


def refusing_parser(data: bytes, **options: Any) -> ParsedDocument:
    raise IngestionError("The PDF is encrypted with a password. Remove the password and upload it again.")


def buggy_parser(data: bytes, **options: Any) -> ParsedDocument:
    return {"not": "a document"}["/Root"]  # type: ignore[return-value]


def crashing_parser(data: bytes, **options: Any) -> ParsedDocument:
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)
    raise AssertionError("survived")


def killed_parser(data: bytes, **options: Any) -> ParsedDocument:
    os.kill(os.getpid(), signal.SIGKILL)  # as the kernel's OOM killer would
    time.sleep(10)
    raise AssertionError("survived")


def pid_writing_sleeper(data: bytes, **options: Any) -> ParsedDocument:
    Path(data.decode()).write_text(str(os.getpid()))
    time.sleep(3600)
    raise AssertionError("woke up")


def chatty_parser(data: bytes, **options: Any) -> ParsedDocument:
    print("a library printing to stdout")
    logging.getLogger("ingestion.parse.pdf").warning("Could not extract text from PDF page %d", 3)
    logging.getLogger("ingestion.parse.pdf").debug("not forwarded: below the parent's level")
    return ParsedDocument(title="Chatty", sections=[Section(path=(), text=data.decode())], mime_type="text/plain")


def environment_parser(data: bytes, **options: Any) -> ParsedDocument:
    """Report what the child process looks like, as the document's metadata."""
    return ParsedDocument(
        title="Environment",
        sections=[Section(path=(), text="x")],
        mime_type="text/plain",
        metadata={
            "modules": sorted(name for name in ("torch", "transformers", "django", "celery") if name in sys.modules),
            "environment": sorted(os.environ),
            "address_space": resource.getrlimit(resource.RLIMIT_AS)[0],
            "cpu": resource.getrlimit(resource.RLIMIT_CPU)[0],
            "threads": threading.active_count(),
        },
    )


# --- Helpers and fixtures ---------------------------------------------------------------------


def bounded(data: bytes, filename: str, *, limits: ParseLimits = LIMITS) -> ParsedDocument:
    return parse_bounded(data, filename=filename, mime_type=None, max_bytes=25 * MB, limits=limits)


def run(
    target: Callable[..., ParsedDocument], data: bytes = b"data", *, limits: ParseLimits = LIMITS
) -> ParsedDocument:
    return run_bounded(f"{HERE}:{target.__name__}", data, options={"filename": "upload.bin"}, limits=limits)


def error_of(call: Callable[[], object]) -> tuple[str, float]:
    started = time.monotonic()
    with pytest.raises(IngestionError) as caught:
        call()
    return str(caught.value), time.monotonic() - started


def process_tree() -> dict[int, int]:
    """Every process on the machine, mapped to its parent."""
    parents = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parents[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return parents


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, zombies included."""
    parents = process_tree()
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def is_running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def memory_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(field)


def leftovers() -> set[int]:
    """Parse children still running below this process, and its children that nobody reaped."""
    found = set()
    for pid in descendants(os.getpid()):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if not is_running(pid) or b"ingestion.parse.bounded" in command:
            found.add(pid)
    return found


@pytest.fixture(autouse=True)
def no_child_is_left_behind() -> Iterator[None]:
    before = leftovers()
    yield
    assert leftovers() - before == set()


def docx_file() -> bytes:
    document = docx.Document()
    document.add_heading("Pairing the remote", level=1)
    document.add_paragraph("Hold the button for five seconds.")
    table = document.add_table(rows=2, cols=2)
    for row, values in zip(table.rows, (("Light", "Meaning"), ("Green", "Paired")), strict=True):
        for cell, value in zip(row.cells, values, strict=True):
            cell.text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


def normal_files() -> list[tuple[str, bytes]]:
    """One small, well-formed file of every supported format."""
    return [
        ("connect-hub-wifi.md", (DEMO / "connect-hub-wifi.md").read_bytes()),
        ("dimmer-switch-setup.html", (DEMO / "dimmer-switch-setup.html").read_bytes()),
        ("faq.csv", (DEMO / "faq.csv").read_bytes()),
        ("motion-sensor-setup.txt", (DEMO / "motion-sensor-setup.txt").read_bytes()),
        ("remote.docx", docx_file()),
        ("manual.pdf", pdf_bytes(["Setup\nPlug the hub in.", "Reset\nHold the button."], title="Hub manual")),
    ]


# --- Normal files ----------------------------------------------------------------------------


NORMAL = normal_files()


@pytest.mark.parametrize(("filename", "data"), NORMAL, ids=[name for name, _ in NORMAL])
def test_a_normal_file_parses_as_it_does_in_process(filename: str, data: bytes) -> None:
    expected = parse_bytes(data, filename=filename, max_bytes=25 * MB)
    assert bounded(data, filename) == expected


def test_a_25_mb_file_travels_to_the_child_and_back() -> None:
    data = (b"Lorem ipsum dolor sit amet.\n" * (25 * MB // 28 + 1))[: 25 * MB]
    document = bounded(data, "big.txt")
    assert document == parse_bytes(data, filename="big.txt", max_bytes=25 * MB)


def test_disabled_limits_parse_in_this_process(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_child(*args: object, **kwargs: object) -> None:
        raise AssertionError("started a child process")

    monkeypatch.setattr("subprocess.Popen", no_child)
    data = (DEMO / "warranty.md").read_bytes()
    assert bounded(data, "warranty.md", limits=ParseLimits(enabled=False)) == parse_bytes(
        data, filename="warranty.md", max_bytes=25 * MB
    )


def test_small_plain_text_parses_inline_and_office_files_never_do(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    started: list[object] = []
    real = subprocess.Popen

    def counting(*args: Any, **kwargs: Any) -> Any:
        started.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr("subprocess.Popen", counting)
    limits = ParseLimits(inline_max_bytes=64 * 1024)
    markdown = (DEMO / "warranty.md").read_bytes()
    assert bounded(markdown, "warranty.md", limits=limits) == parse_bytes(
        markdown, filename="warranty.md", max_bytes=25 * MB
    )
    assert started == []  # small Markdown: no child
    word = docx.Document()
    word.add_paragraph("Hold the bulb switch three times to pair it.")
    buffer = io.BytesIO()
    word.save(buffer)
    small_docx = buffer.getvalue()
    assert len(small_docx) < 64 * 1024
    bounded(small_docx, "pairing.docx", limits=limits)
    assert len(started) == 1  # a Word file, however small, is a zip: always in the child
    bounded(b"# Big\n" + b"word " * 20_000, "big.md", limits=limits)
    assert len(started) == 2  # over the inline size: in the child


def test_the_child_has_only_the_parsers_and_no_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SECRET_KEY", "do-not-leak")
    monkeypatch.setenv("DATABASE_URL", "postgres://user:password@db/resolvo")
    metadata = run(environment_parser, limits=ParseLimits(seconds=30, memory_bytes=768 * MB)).metadata
    assert metadata["modules"] == []
    assert "SECRET_KEY" not in metadata["environment"] and "DATABASE_URL" not in metadata["environment"]
    assert metadata["address_space"] == 768 * MB
    assert 30 <= metadata["cpu"] <= 40
    assert metadata["threads"] == 1


def test_log_records_come_back_and_prints_do_not_spoil_the_result(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    document = run(chatty_parser, b"Hello")
    assert document.text == "Hello"
    forwarded = [r for r in caplog.records if r.name == "ingestion.parse.pdf"]
    assert [r.getMessage() for r in forwarded] == ["Could not extract text from PDF page 3"]
    assert forwarded[0].levelno == logging.WARNING and forwarded[0].process != os.getpid()


# --- Errors ----------------------------------------------------------------------------------


def test_an_ingestion_error_in_the_child_keeps_its_message() -> None:
    message, _ = error_of(lambda: run(refusing_parser))
    assert message == "The PDF is encrypted with a password. Remove the password and upload it again."
    message, _ = error_of(lambda: bounded(b"  \n ", "empty.txt"))
    assert message == "The file is empty."


def test_an_unexpected_exception_becomes_a_readable_error(caplog: pytest.LogCaptureFixture) -> None:
    message, _ = error_of(lambda: run(buggy_parser))
    assert message.startswith("This file could not be read: the reader failed unexpectedly (KeyError: '/Root').")
    assert "Traceback" not in message
    assert "buggy_parser" in caplog.text  # the traceback is in the log for whoever fixes the parser


def test_a_crash_of_the_child_is_reported_with_its_signal() -> None:
    message, _ = error_of(lambda: run(crashing_parser))
    assert message.startswith("This file could not be read: the reader crashed (SIGSEGV).")


def test_a_child_killed_from_outside_is_a_transient_failure() -> None:
    with pytest.raises(TransientError, match=r"stopped from outside \(SIGKILL\)"):
        run(killed_parser)


# --- The time limit --------------------------------------------------------------------------


@pytest.mark.parametrize("parser", [sleeping_parser, backtracking_parser])
def test_a_parse_past_the_time_limit_stops_with_a_readable_message(parser: Callable[..., ParsedDocument]) -> None:
    message, elapsed = error_of(lambda: run(parser, limits=ParseLimits(seconds=3)))
    assert message == (
        "Reading this file took longer than the 3-second limit; it may be malformed or far too complex. "
        "Split it into smaller files."
    )
    assert 3 <= elapsed < 3 + MARGIN_S


def test_an_interrupted_call_takes_its_child_down() -> None:
    class SoftTimeLimitExceeded(Exception):
        """As Celery's soft time limit raises it in the task's thread, from a signal handler."""

    def interrupt(signum: int, frame: object) -> None:
        raise SoftTimeLimitExceeded

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, 2)
    try:
        with pytest.raises(SoftTimeLimitExceeded):
            run(sleeping_parser)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    # The autouse fixture checks that no parse child is left running.


def test_a_child_left_behind_by_a_killed_worker_stops_itself(tmp_path: Path) -> None:
    pid_file = tmp_path / "child.pid"
    limits = ParseLimits(seconds=8)
    worker = multiprocessing.get_context("spawn").Process(
        target=run_bounded,
        args=(f"{HERE}:pid_writing_sleeper", str(pid_file).encode()),
        kwargs={"options": {}, "limits": limits},
        daemon=True,
    )
    worker.start()
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.1)
    child = int(pid_file.read_text())
    assert worker.is_alive() and worker.pid is not None
    os.kill(worker.pid, signal.SIGKILL)  # the worker dies without cleaning up
    worker.join()
    assert is_running(child)
    # The child's own alarm rings at the limit plus a 2 s grace, counted from its start.
    deadline = time.monotonic() + limits.seconds + 2 + MARGIN_S
    while is_running(child):
        assert time.monotonic() < deadline, "the orphaned child is still running"
        time.sleep(0.2)


# --- The memory limit ------------------------------------------------------------------------


@pytest.mark.parametrize("parser", [memory_hog, wrapping_memory_hog, silent_memory_hog])
def test_a_memory_hog_stops_with_a_readable_message_and_this_process_is_untouched(
    parser: Callable[..., ParsedDocument],
) -> None:
    peak_before = memory_kb("VmHWM")
    message, elapsed = error_of(lambda: run(parser, limits=ParseLimits(seconds=60, memory_bytes=512 * MB)))
    assert message.startswith("Reading this file needed more than the 512 MB memory limit;")
    assert elapsed < 60
    assert memory_kb("VmHWM") - peak_before < 64 * 1024  # the hog's ~500 MB were the child's alone


def test_a_pdf_bomb_stops_at_the_memory_limit() -> None:
    message, _ = error_of(
        lambda: bounded(hostile.pdf_bomb(60, pages=3), "bomb.pdf", limits=ParseLimits(memory_bytes=300 * MB))
    )
    assert message.startswith("Reading this file needed more than the 300 MB memory limit;")


# --- Hostile files through the real parsers --------------------------------------------------

HOSTILE = [
    ("nested.html", lambda: hostile.nested_divs_html(20_000)),
    ("bomb.docx", lambda: hostile.docx_bomb(20, letters_per_paragraph=4)),
    ("zip-bomb.docx", lambda: hostile.zip_bomb_docx(64)),
    ("laughs.docx", hostile.billion_laughs_docx),
    ("laughs.xhtml", hostile.billion_laughs_xml),
    ("rows.csv", lambda: hostile.big_csv(200_000)),
    ("one-word.txt", lambda: hostile.long_word_text(5_000_000)),
    ("heading.md", lambda: hostile.long_heading_markdown(20_000)),
    ("bomb.pdf", lambda: hostile.pdf_bomb(60, pages=3)),
    ("utf16.txt", hostile.utf16_text),
    ("junk.bin", lambda: hostile.binary_junk(MB)),
]


@pytest.mark.parametrize(("filename", "make"), HOSTILE, ids=[name for name, _ in HOSTILE])
def test_a_hostile_file_ends_within_the_limits(filename: str, make: Callable[[], bytes]) -> None:
    limits = ParseLimits(seconds=10, memory_bytes=768 * MB)
    started = time.monotonic()
    try:
        document = bounded(make(), filename, limits=limits)
    except IngestionError as exc:
        assert "Traceback" not in str(exc) and str(exc).endswith(".")
    else:
        assert document.sections
    assert time.monotonic() - started < limits.seconds + MARGIN_S


def test_the_docx_bomb_compresses_about_a_thousandfold() -> None:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(hostile.docx_bomb(10))) as archive:
        part = archive.getinfo("word/document.xml")
    assert part.file_size >= 10 * MB and part.file_size / part.compress_size > 900


def test_the_zip_bomb_docx_understates_its_size() -> None:
    import zipfile

    with zipfile.ZipFile(io.BytesIO(hostile.zip_bomb_docx(16))) as archive:
        image = archive.getinfo("word/media/image1.png")
    assert image.file_size == 1024 and image.compress_size > 10_000


# --- Where it is called from -----------------------------------------------------------------


def parse_demo_page(name: str) -> str:
    """Run in another process: parse one demo page within the limits, return its text."""
    return bounded((DEMO / name).read_bytes(), name).text


def test_it_works_from_threads() -> None:
    names = ["warranty.md", "faq.csv", "dimmer-switch-setup.html"]
    results: dict[str, str] = {}

    def parse(name: str) -> None:
        results[name] = parse_demo_page(name)

    threads = [threading.Thread(target=parse, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert results == {name: bounded((DEMO / name).read_bytes(), name).text for name in names}


def test_it_works_from_a_daemonic_multiprocessing_child() -> None:
    context = multiprocessing.get_context("spawn")
    with context.Pool(1) as pool:  # pool workers are daemonic, as Celery's prefork children are
        text = pool.apply(parse_demo_page, ("warranty.md",))
    assert text == bounded((DEMO / "warranty.md").read_bytes(), "warranty.md").text


def test_it_works_from_a_celery_prefork_pool_child() -> None:
    # billiard is the pool library under Celery's prefork workers.
    with billiard.get_context("spawn").Pool(1) as pool:
        text = pool.apply(parse_demo_page, ("faq.csv",))
    assert text == bounded((DEMO / "faq.csv").read_bytes(), "faq.csv").text


# --- Limits ----------------------------------------------------------------------------------


def test_limits_have_sensible_defaults_and_readable_messages() -> None:
    limits = ParseLimits()
    assert (limits.seconds, limits.memory_bytes, limits.enabled) == (120.0, 2 * GIB, True)
    assert limits.time_message().startswith("Reading this file took longer than the 120-second limit;")
    assert limits.memory_message().startswith("Reading this file needed more than the 2 GB memory limit;")
    assert "0.5-second" in ParseLimits(seconds=0.5).time_message()
    with pytest.raises(ValueError, match="seconds"):
        ParseLimits(seconds=0)
    with pytest.raises(ValueError, match="memory_bytes"):
        ParseLimits(memory_bytes=-1)
