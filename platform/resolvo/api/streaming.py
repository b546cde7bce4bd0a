"""Serving a blocking event source (the answer engine) as an async stream under ASGI.

Django consumes a synchronous iterator given to ``StreamingHttpResponse`` whole before sending
anything under ASGI; an async iterator streams event by event (``shared/FACTS.md``). The engine is
synchronous, so it runs on a bounded pool of threads (``API_STREAM_THREADS``) and hands each frame
to the event loop through a queue. The pool bounds the database connections that concurrent
answers hold; streams beyond it wait their turn. The CPU-bound model work (embedding questions
and answer sentences) is not bounded here: every thread hands it to one coalescing worker
(``ingestion.embed.CoalescingEmbedder``), questions first. When the client goes away, the ASGI
server cancels the async side; the producer sees the stop flag before its next frame (or before
it starts) and closes the generator, which stops generation.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections
from django.http import StreamingHttpResponse

_DONE = object()
_pool_lock = threading.Lock()
_pool: ThreadPoolExecutor | None = None


def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=settings.API_STREAM_THREADS, thread_name_prefix="sse-producer")
        return _pool


async def frames_from_thread(produce: Callable[[], Iterator[str]]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def put(item: object) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone (server shutting down)
            stop.set()

    def run() -> None:
        if stop.is_set():  # the client left while this stream waited for a thread
            put(_DONE)
            return
        close_old_connections()
        frames = produce()
        try:
            for frame in frames:
                if stop.is_set():
                    break
                put(frame)
        except BaseException as exc:  # handed to the async side, which re-raises it
            put(exc)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # a generator's finally blocks run here: the engine stops generating
            close_old_connections()
            put(_DONE)

    # The request id (and other context variables) follow the answer into the pool's thread.
    _executor().submit(contextvars.copy_context().run, run)
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            assert isinstance(item, str)
            yield item
    finally:
        stop.set()


def sse_response(frames: AsyncIterator[str]) -> StreamingHttpResponse:
    """A ``text/event-stream`` response that no cache or proxy buffers."""
    response = StreamingHttpResponse(frames, content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: do not buffer the stream
    return response
