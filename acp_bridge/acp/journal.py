"""A session's journal: the one sink a live session has in the registry.

It appends each event to the event log, which gives the event its id, and publishes it to the
session's fan-out once, and only once, the log has committed it: nothing reaches a client that a
crash could take back (an uncommitted id may be lost and handed out again after a restart). Events
are published in id order, on the event loop, whichever thread emitted them.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque

from acp_bridge.events.session_event import SessionEvent
from acp_bridge.sinks import EventLogSink

from .delivery import Attachment, SessionFanout

__all__ = ["SessionJournal"]

_Pending = tuple[int, SessionEvent, Attachment | None]


class SessionJournal:
    """Appends a session's events, then publishes each to its fan-out once the log committed it.

    ``handle_event`` (any thread) appends and queues the event; the log's commit listener reports
    commits through :meth:`committed` (any thread); :meth:`_drain` (the loop only) publishes every
    queued event the commits cover, lowest id first. The append and the queueing happen under one
    lock, so the queue is in id order even when several threads emit for the session. With a log
    that commits on append (memory), an event emitted on the loop is published before
    ``handle_event`` returns, as if there were no queue.
    """

    def __init__(
        self,
        log_sink: EventLogSink,
        fanout: SessionFanout,
        loop: asyncio.AbstractEventLoop,
        loop_thread: int,
    ) -> None:
        self._log_sink = log_sink
        self._fanout = fanout
        self._loop = loop
        self._loop_thread = loop_thread
        self._lock = threading.Lock()  # the append and the queueing; taken on any thread
        # Made on the first event: an idle session keeps no empty deque (600 bytes).
        self._pending: deque[_Pending] | None = None
        self._appended = 0  # the last id appended through this journal
        # Written by the committing thread, read by the loop; guarded by its own lock because the
        # memory log reports a commit from inside append(), while _lock is held.
        self._durable_lock = threading.Lock()
        self._durable = 0
        self._drain_scheduled = False
        self._published = 0  # the last id handed to the fan-out
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    @property
    def topic(self) -> str:
        """The event-log topic the session's events go to."""
        return self._log_sink.topic

    def handle_event(self, event: SessionEvent, exclude: Attachment | None = None) -> None:
        """Append ``event``; it is published to every attachment but ``exclude`` once committed.

        The registry calls it for every event of the session; the session calls it with ``exclude``
        to show a prompt to every client but the one that sent it. An event the log refused (the
        append failed, which is logged) is never published: it is not durable.
        """
        with self._lock:
            event_id = self._log_sink.append(event)
            if event_id is None:
                return
            self._appended = event_id
            pending = self._pending
            if pending is None:
                pending = self._pending = deque()
            pending.append((event_id, event, exclude))
        # Drain here only when the log already committed this event (the memory log commits on
        # append): a commit reported from another thread has scheduled a drain of its own, and an
        # unlocked read that comes too early just leaves the publishing to that drain.
        if self._durable >= event_id and threading.get_ident() == self._loop_thread:
            self._drain()

    def committed(self, head: int) -> None:
        """The log committed the session's topic up to ``head`` (called on the committing thread)."""
        on_loop = threading.get_ident() == self._loop_thread
        with self._durable_lock:
            if head <= self._durable:
                return
            self._durable = head
            # On the loop, the commit comes from an append inside handle_event, which drains
            # right after it: scheduling another drain would only cost a callback per event.
            if on_loop or self._drain_scheduled:
                return
            self._drain_scheduled = True
        self._loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        """Publish every queued event the log has committed, in id order (on the loop)."""
        with self._durable_lock:
            self._drain_scheduled = False
            durable = self._durable
        ready: list[_Pending] = []
        with self._lock:
            pending = self._pending
            while pending and pending[0][0] <= durable:  # None or empty: nothing waits
                ready.append(pending.popleft())
        if ready:
            self._fanout.publish_batch(ready)
            self._published = ready[-1][0]
            self._wake_waiters()

    def _wake_waiters(self) -> None:
        still = []
        for target, future in self._waiters:
            if self._published >= target:
                if not future.done():
                    future.set_result(None)
            else:
                still.append((target, future))
        self._waiters = still

    @property
    def published_through(self) -> int:
        """The last event id this journal handed to the fan-out (0 if none)."""
        return self._published

    def forget_uncommitted(self) -> int:
        """Drop the queued events the log has not reported committed: it never will (another node
        took the session over and the fence refused them). Returns how many were dropped."""
        with self._durable_lock:
            committed = self._durable
        with self._lock:
            pending = self._pending or ()
            kept = [p for p in pending if p[0] <= committed]
            dropped = len(pending) - len(kept)
            self._pending = deque(kept) if kept else None
            self._appended = min(self._appended, max(committed, self._published))
        # Whoever waits for a dropped event to be published waits for nothing more.
        for target, future in self._waiters:
            if target > self._appended and not future.done():
                future.set_result(None)
        self._wake_waiters()
        return dropped

    async def published(self) -> None:
        """Wait until everything appended so far has been handed to the fan-out (on the loop).

        It waits for the log's commits: call it after the log's ``aflush`` succeeded, and bound it.
        """
        with self._lock:
            target = self._appended
        self._drain()
        if self._published >= target:
            return
        future: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append((target, future))
        await future
