"""The outgoing queue of one connection: a FIFO that tells a slow reader from a burst.

A client is *behind* while more than ``soft_limit`` messages wait for it. Being behind for a moment is
normal (an agent can emit thousands of chunks in a millisecond); being behind for ``grace`` seconds
without catching up is not, and neither is more than ``max_bytes`` waiting at once. Either makes the
queue report an overflow, and the peer closes the connection (the client can come back with
``session/load``) rather than hold the agent, the other clients or unbounded memory hostage.

Bulk senders that the client asked for (a ``session/load`` replay) use :meth:`Outbox.put_wait`, which
waits while the client is at the soft limit instead of pushing it over.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from typing import Final

from ._flag import Flag
from .transport import Outgoing

__all__ = ["DICT_FRAME_ESTIMATE", "Outbox"]

DICT_FRAME_ESTIMATE: Final = 256
"""Bytes a not-yet-encoded message (a dict: responses, requests) is counted as."""


def frame_size(message: Outgoing) -> int:
    """The bytes ``message`` is accounted for."""
    return len(message) if type(message) is bytes else DICT_FRAME_ESTIMATE


class Outbox:
    """FIFO of outgoing frames with a soft count limit, a grace period and a hard byte cap."""

    __slots__ = (
        "_behind_since",
        "_bytes",
        "_closed",
        "_idle",
        "_items",
        "_loop",
        "_on_overflow",
        "_room",
        "_timer",
        "_unfinished",
        "_waiter",
        "grace",
        "max_bytes",
        "soft_limit",
    )

    def __init__(
        self,
        *,
        soft_limit: int,
        grace: float,
        max_bytes: int,
        on_overflow: Callable[[str], None],
    ) -> None:
        if soft_limit < 1:
            raise ValueError("soft_limit must be at least 1")
        self.soft_limit = soft_limit
        self.grace = grace
        self.max_bytes = max_bytes
        self._on_overflow = on_overflow
        # Made on the first put: most connections sit idle, and an empty deque is 600 bytes.
        self._items: deque[Outgoing] | None = None
        self._bytes = 0
        self._unfinished = 0
        self._waiter: asyncio.Future[None] | None = None
        self._room = Flag(True)
        self._idle = Flag(True)
        self._behind_since: float | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return len(self._items) if self._items is not None else 0

    @property
    def queued_bytes(self) -> int:
        """Bytes waiting (encoded frames by length, dicts by :data:`DICT_FRAME_ESTIMATE`)."""
        return self._bytes

    @property
    def behind(self) -> bool:
        """True while more than ``soft_limit`` messages wait."""
        return self._behind_since is not None

    # --- producers -----------------------------------------------------------------------------------

    def put(self, message: Outgoing) -> bool:
        """Queue ``message``; False if the queue is closed or this put overflowed it. Never blocks."""
        if self._closed:
            return False
        items = self._items
        if items is None:
            items = self._items = deque()
        items.append(message)
        return self._queued(
            items, 1, len(message) if type(message) is bytes else DICT_FRAME_ESTIMATE
        )

    def put_many(self, messages: list[bytes]) -> bool:
        """Queue encoded ``messages`` in order, as :meth:`put` would one by one, with one wake-up."""
        if self._closed:
            return False
        if not messages:
            return True
        items = self._items
        if items is None:
            items = self._items = deque()
        items.extend(messages)
        return self._queued(items, len(messages), sum(map(len, messages)))

    def _queued(self, items: deque[Outgoing], count: int, size: int) -> bool:
        """Account for ``count`` messages (``size`` bytes) just queued: wake the writer, then apply
        the byte cap and the soft limit. False if the queue overflowed."""
        self._bytes += size
        if self._unfinished == 0:
            self._idle.clear()
        self._unfinished += count
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        if self._bytes > self.max_bytes:
            self._overflow(f"{self._bytes} bytes queued (limit {self.max_bytes})")
            return False
        queued = len(items)
        if queued >= self.soft_limit:
            self._room.clear()
            if queued > self.soft_limit:
                return self._behind()
        return True

    async def put_wait(self, message: Outgoing) -> bool:
        """Queue ``message`` once fewer than ``soft_limit`` messages wait; False if closed.

        Waiting here is the slow-client clock too: if the reader takes nothing for ``grace``
        seconds while a sender waits, the queue overflows (a stalled reader must not hold a bulk
        sender, and whatever piles up behind it, forever).
        """
        while len(self) >= self.soft_limit and not self._closed:
            self._start_clock()
            await self._room.wait()
        return self.put(message)

    def _start_clock(self) -> None:
        if self._behind_since is not None:
            return
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        self._behind_since = loop.time()
        if self._timer is None:
            self._timer = loop.call_at(self._behind_since + self.grace, self._check)

    def _behind(self) -> bool:
        loop = self._loop or asyncio.get_running_loop()
        self._loop = loop
        now = loop.time()
        if self._behind_since is None:
            self._behind_since = now
        elapsed = now - self._behind_since
        if elapsed >= self.grace:
            self._overflow(
                f"more than {self.soft_limit} messages behind for {elapsed:.1f} s "
                f"(grace {self.grace:g} s)"
            )
            return False
        if self._timer is None:
            self._timer = loop.call_at(self._behind_since + self.grace, self._check)
        return True

    def _check(self) -> None:
        """Timer: still behind when the grace period ends, even if nothing more was sent?"""
        self._timer = None
        if self._closed or self._behind_since is None:
            return
        self._behind()

    def _overflow(self, reason: str) -> None:
        self.close()
        self._on_overflow(reason)

    # --- the writer ----------------------------------------------------------------------------------

    async def take(self, max_count: int, max_bytes: int) -> list[Outgoing]:
        """Wait for at least one message and take up to ``max_count``/about ``max_bytes`` of them.

        Returns an empty list once the queue is closed. Call :meth:`done` with the batch's length
        once it has been written.
        """
        while not self._items:
            if self._closed:
                return []
            waiter = asyncio.get_running_loop().create_future()
            self._waiter = waiter
            try:
                await waiter
            finally:
                if self._waiter is waiter:
                    self._waiter = None
        items = self._items
        first = items.popleft()
        batch = [first]
        size = len(first) if type(first) is bytes else DICT_FRAME_ESTIMATE
        while items and len(batch) < max_count and size < max_bytes:
            message = items.popleft()
            batch.append(message)
            size += len(message) if type(message) is bytes else DICT_FRAME_ESTIMATE
        self._bytes -= size
        remaining = len(items)
        if not remaining:
            self._items = None  # drained: an idle connection keeps no deque
        if remaining < self.soft_limit:
            self._room.set()
        if remaining <= self.soft_limit and self._behind_since is not None:
            self._behind_since = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
        return batch

    def done(self, count: int) -> None:
        """``count`` messages taken with :meth:`take` have been handed to the transport."""
        self._unfinished -= count
        if self._unfinished <= 0:
            self._unfinished = 0
            self._idle.set()

    async def join(self) -> None:
        """Wait until every queued message has been written (or the queue is closed)."""
        await self._idle.wait()

    def close(self) -> None:
        """Drop what is queued; wake every waiter. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._items = None
        self._bytes = 0
        self._unfinished = 0
        self._idle.set()
        self._room.set()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
