"""Live fan-out shared by the backends: hand each appended entry to the topic's subscribers.

A backend calls :meth:`LiveHub.publish` for every entry, in id order per topic (in practice: while
holding the lock under which it assigned the id), after the entry became visible to its readers.
:func:`follow` turns that into the gap-free iterator behind :meth:`EventLog.subscribe`.

Why no entry is lost or repeated:

* a subscriber registers *before* it reads stored entries. An entry published before registration
  was already readable, so the read returns it; an entry published afterwards is buffered. The
  buffer may repeat the tail of what was read; :func:`follow` drops ids it already yielded;
* each subscriber has its own buffer, appended to in id order from the publishing thread (whatever
  that thread is) and drained in bulk by the subscriber's event loop, which is woken at most once
  per drain. Ordering thus never depends on how callbacks from several threads interleave;
* a buffer is bounded. When a slow subscriber lets it fill up, the subscriber is marked *lagged*:
  its buffer is dropped, and it reads the missed entries back from the log, which still has them,
  before it goes live again exactly as it did when it started.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import AsyncGenerator, Awaitable, Callable

from .base import EventLogClosed, LogEntry

__all__ = ["DEFAULT_LIVE_QUEUE_SIZE", "LiveHub", "follow", "resolve_threadsafe"]

DEFAULT_LIVE_QUEUE_SIZE = 10_000
"""How many entries a subscriber may fall behind before it catches up from the log instead."""

_PAGE_SIZE = 1_000
"""Entries per read when a subscriber catches up from the log."""

ReadPage = Callable[[str, int, int], Awaitable[list[LogEntry]]]
"""``read_page(topic, after, limit)``: the log's read, awaitable so it can run off the loop."""


class _Lagged:
    """Returned by :meth:`_Subscriber.next_batch` after the subscriber's buffer overflowed."""


_LAGGED = _Lagged()


class _Subscriber:
    """The live buffer of one subscription, fed from any thread, drained on one event loop."""

    __slots__ = (
        "_buffer",
        "_closed",
        "_lagged",
        "_lock",
        "_loop",
        "_maxsize",
        "_thread",
        "_waiter",
    )

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self._loop = loop
        self._thread = threading.get_ident()
        self._maxsize = maxsize
        self._lock = threading.Lock()
        self._buffer: deque[LogEntry] = deque()
        self._lagged = False
        self._closed = False
        self._waiter: asyncio.Future[None] | None = None

    def push(self, entry: LogEntry) -> bool:
        """Buffer ``entry`` and wake the consumer; return ``False`` if the buffer overflowed."""
        overflow = False
        with self._lock:
            if self._closed or self._lagged:
                # A lagged subscriber rereads from the log anyway: buffering would only cost memory.
                return True
            if len(self._buffer) >= self._maxsize:
                self._lagged = overflow = True
                self._buffer.clear()
            else:
                self._buffer.append(entry)
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._wake(waiter)
        return not overflow

    def close(self) -> None:
        """End the subscription once the consumer has drained what is buffered."""
        with self._lock:
            self._closed = True
            waiter, self._waiter = self._waiter, None
        if waiter is not None:
            self._wake(waiter)

    def _wake(self, waiter: asyncio.Future[None]) -> None:
        try:
            if threading.get_ident() == self._thread:
                _resolve(waiter)
            else:
                self._loop.call_soon_threadsafe(_resolve, waiter)
        except RuntimeError:
            # The subscriber's loop is closed: nobody is left to wake.
            pass

    async def next_batch(self) -> list[LogEntry] | _Lagged | None:
        """Wait for buffered entries; ``_LAGGED`` means the buffer overflowed, ``None`` the end."""
        while True:
            with self._lock:
                if self._lagged:
                    self._lagged = False
                    return _LAGGED
                if self._buffer:
                    batch = list(self._buffer)
                    self._buffer.clear()
                    return batch
                if self._closed:
                    return None
                waiter = self._waiter = self._loop.create_future()
            try:
                await waiter
            finally:
                with self._lock:
                    if self._waiter is waiter:
                        self._waiter = None


def _resolve(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def resolve_threadsafe(loop: asyncio.AbstractEventLoop, waiter: asyncio.Future[None]) -> None:
    """Complete ``waiter`` from any thread, unless it is already done or its loop is closed."""
    # RuntimeError: the loop is closed, so nobody is left to wake.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_resolve, waiter)


class LiveHub:
    """The registry of live subscribers of one log, by topic."""

    def __init__(self, queue_size: int = DEFAULT_LIVE_QUEUE_SIZE) -> None:
        if queue_size < 1:
            raise ValueError(f"queue_size must be >= 1, got {queue_size}")
        self._queue_size = queue_size
        self._lock = threading.Lock()
        self._by_topic: dict[str, list[_Subscriber]] = {}
        self._closed = False
        self.lag_count = 0
        """How many times a subscriber overflowed its buffer and fell back to reading the log."""

    def publish(self, entry: LogEntry) -> None:
        """Hand ``entry`` to the subscribers of its topic.

        Call it in id order for each topic, after ``entry`` became visible to readers.
        """
        if not self._by_topic:
            # Unlocked, so appends cost nothing while nobody listens. A subscriber registering
            # concurrently doesn't need this entry: it was readable before this call, and the
            # subscriber reads the log after registering.
            return
        with self._lock:
            for subscriber in self._by_topic.get(entry.topic, ()):
                if not subscriber.push(entry):
                    self.lag_count += 1

    def close(self) -> None:
        """End every subscription, present and future."""
        with self._lock:
            self._closed = True
            subscribers = [s for subs in self._by_topic.values() for s in subs]
            self._by_topic.clear()
        for subscriber in subscribers:
            subscriber.close()

    def _register(self, topic: str) -> _Subscriber:
        subscriber = _Subscriber(asyncio.get_running_loop(), self._queue_size)
        with self._lock:
            if self._closed:
                raise EventLogClosed("event log is closed")
            self._by_topic.setdefault(topic, []).append(subscriber)
        return subscriber

    def _unregister(self, topic: str, subscriber: _Subscriber) -> None:
        with self._lock:
            subscribers = self._by_topic.get(topic)
            if subscribers is not None and subscriber in subscribers:
                subscribers.remove(subscriber)
                if not subscribers:
                    del self._by_topic[topic]


async def follow(
    hub: LiveHub, read_page: ReadPage, topic: str, after: int
) -> AsyncGenerator[LogEntry, None]:
    """Yield ``topic``'s entries after ``after``, from the log then from ``hub``; see the module."""
    try:
        subscriber = hub._register(topic)
    except EventLogClosed:
        return
    try:
        last = after
        while True:
            # Catch up from the log: at the start, and whenever the live buffer can't be trusted.
            while True:
                try:
                    page = await read_page(topic, last, _PAGE_SIZE)
                except EventLogClosed:
                    return
                for entry in page:
                    last = entry.id
                    yield entry
                if len(page) < _PAGE_SIZE:
                    break
            # Go live until the buffer overflows or shows a gap.
            in_sync = True
            while in_sync:
                batch = await subscriber.next_batch()
                if batch is None:
                    return
                if isinstance(batch, _Lagged):
                    break
                for entry in batch:
                    if entry.id <= last:
                        continue
                    if entry.id != last + 1:
                        # Cannot happen if the backend publishes as documented; rereading the
                        # log is cheaper than reasoning about why it did.
                        in_sync = False
                        break
                    last = entry.id
                    yield entry
    finally:
        hub._unregister(topic, subscriber)
