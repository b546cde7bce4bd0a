"""Live notes between processes: "something happened on this channel", for open streams to react.

A note is a small JSON object published on a named channel (``conversation:42``,
``organization:7``). Streams that are open on that channel (the widget's conversation events,
the agent dashboard) wake up and read what changed from the database, which stays the record:
a note carries no state a reader could not find there, except ephemeral ones such as typing.

- **Production** (``REDIS_URL`` set): ``publish`` is a Redis ``PUBLISH``; each process runs one
  listener thread, subscribed to every channel with one pattern, that fans notes out to the
  streams open in that process. Web processes, workers and the dashboard reach each other this way.
- **Embedded** (no Redis): the same fan-out, in process.

Delivery is best effort (a note published while a stream reconnects is not kept), so a stream
subscribes *before* it reads the database and re-reads it when it has heard nothing for a while.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from django.conf import settings
from django.db import transaction

log = logging.getLogger(__name__)

_PREFIX = "resolvo:live:"
_lock = threading.Lock()
_subscribers: dict[str, set[Subscription]] = {}
_listener: _RedisListener | None = None
_publisher: Any = None


class Subscription:
    """Notes for one channel, for one stream on one event loop."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=256)

    def _deliver(self, note: dict[str, Any]) -> None:
        """From any thread."""

        def put() -> None:
            with contextlib.suppress(asyncio.QueueFull):  # a stalled reader re-reads the database anyway
                self._queue.put_nowait(note)

        with contextlib.suppress(RuntimeError):  # the loop has closed: the stream is gone
            self._loop.call_soon_threadsafe(put)

    async def get(self, timeout: float) -> dict[str, Any] | None:
        """The next note, or None when ``timeout`` seconds pass without one."""
        try:
            return await asyncio.wait_for(self._queue.get(), timeout)
        except TimeoutError:
            return None


def _fan_out(channel: str, note: dict[str, Any]) -> None:
    with _lock:
        targets = list(_subscribers.get(channel, ()))
    for subscription in targets:
        subscription._deliver(note)


@contextlib.asynccontextmanager
async def subscribe(channel: str) -> AsyncIterator[Subscription]:
    """Listen to ``channel`` for the duration of the block (call from async code)."""
    if settings.REDIS_URL:
        await asyncio.to_thread(_listener_started)
    subscription = Subscription(channel)
    with _lock:
        _subscribers.setdefault(channel, set()).add(subscription)
    try:
        yield subscription
    finally:
        with _lock:
            listeners = _subscribers.get(channel)
            if listeners is not None:
                listeners.discard(subscription)
                if not listeners:
                    del _subscribers[channel]


def publish(channel: str, note: dict[str, Any]) -> None:
    """Tell every process's open streams on ``channel``. Never raises: a lost note only delays a
    stream until its next re-read."""
    if not settings.REDIS_URL:
        _fan_out(channel, note)
        return
    global _publisher
    try:
        if _publisher is None:
            import redis

            _publisher = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
        _publisher.publish(_PREFIX + channel, json.dumps(note, separators=(",", ":")))
    except Exception:
        log.warning("live note on %s not published", channel, exc_info=True)


def publish_on_commit(channel: str, note: dict[str, Any]) -> None:
    """``publish`` once the current transaction commits (readers must find the change)."""
    transaction.on_commit(lambda: publish(channel, note))


class _RedisListener(threading.Thread):
    """One per process: ``PSUBSCRIBE resolvo:live:*`` and fan out; reconnects on failure."""

    def __init__(self) -> None:
        super().__init__(name="resolvo-live", daemon=True)
        self.ready = threading.Event()

    def run(self) -> None:
        import redis

        while True:
            try:
                client = redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=2, health_check_interval=30)
                pubsub: Any = client.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]
                pubsub.psubscribe(_PREFIX + "*")
                pubsub.get_message(timeout=2)  # the subscription's confirmation
                self.ready.set()
                for message in pubsub.listen():
                    if message.get("type") != "pmessage":
                        continue
                    channel = message["channel"].decode()[len(_PREFIX) :]
                    try:
                        note = json.loads(message["data"])
                    except ValueError:
                        continue
                    _fan_out(channel, note)
            except Exception:
                log.warning("live listener lost Redis; reconnecting", exc_info=True)
                time.sleep(1)


def _listener_started() -> None:
    global _listener
    with _lock:
        if _listener is None or not _listener.is_alive():
            _listener = _RedisListener()
            _listener.start()
        listener = _listener
    listener.ready.wait(timeout=3)
