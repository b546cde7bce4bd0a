"""Serving a blocking event source (the answer engine) as an async stream under ASGI.

Django consumes a synchronous iterator given to ``StreamingHttpResponse`` whole before sending
anything under ASGI; an async iterator streams event by event (``shared/FACTS.md``). The engine is
synchronous, so a thread of its own runs it and hands each frame to the event loop through a
queue. When the client goes away, the ASGI server cancels the async side; the thread sees the stop
flag before its next frame and closes the generator, which stops generation.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from django.db import close_old_connections, connections

_DONE = object()


async def frames_from_thread(produce: Callable[[], Iterator[str]]) -> AsyncIterator[str]:
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()
    stop = threading.Event()

    def run() -> None:
        close_old_connections()
        frames = produce()
        try:
            for frame in frames:
                if stop.is_set():
                    break
                loop.call_soon_threadsafe(queue.put_nowait, frame)
        except BaseException as exc:  # handed to the async side, which re-raises it
            loop.call_soon_threadsafe(queue.put_nowait, exc)
        finally:
            close = getattr(frames, "close", None)
            if close is not None:
                close()  # a generator's finally blocks run here: the engine stops generating
            connections.close_all()
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    thread = threading.Thread(target=run, name="sse-producer", daemon=True)
    thread.start()
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
