"""What the SQLite and Redis event logs share: queued appends committed by a writer thread.

Both logs number an entry under their lock, keep it in memory (``_unsettled``, where readers find
it) and queue it (``_queue``) for a writer thread that commits batches. This module holds what is
the same around that: backpressure on appends, ``flush``/``aflush`` (waiters on the count of
committed entries), the latched write failure, settling a committed batch (listeners told outside
the lock, then flushes woken), the commit listeners, ``subscribe`` and the first half of ``close``.
How a batch is written, and what else a log keeps (checkpoints, leases), stays in each log.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator
from itertools import islice
from typing import ClassVar, Generic, TypeVar

from ._live import LiveHub, follow, resolve_threadsafe
from .base import (
    CommitListener,
    CommitListeners,
    EventLogClosed,
    EventLogError,
    LogEntry,
    check_read_bounds,
    validate_topic,
)

__all__ = ["Committer"]

_Q = TypeVar("_Q")
"""What a log queues per entry for its writer (the entry and its encoded form)."""

_AsyncFlush = tuple[int, asyncio.AbstractEventLoop, "asyncio.Future[None]"]
"""An :meth:`Committer.aflush` waiting for the commit count to reach its target."""


class Committer(Generic[_Q]):
    """The state and waiting of a log whose writer thread commits queued appends in batches.

    A subclass calls :meth:`_init_committer` in its ``__init__``, sets ``_hub``, ``_listeners``
    and ``_max_pending``, appends under ``_lock`` (queueing, counting ``_unsettled_count`` and
    ``_appended_count``, calling :meth:`_wait_for_room` when the log is closed, failed or full),
    runs a writer that calls :meth:`_count_settled` and :meth:`_announce` per batch,
    :meth:`_writer_failed` when it fails and :meth:`_writer_exited` when it ends, and implements
    :meth:`_shut_down`, :meth:`_read_page` and :attr:`_where`.
    """

    _logger: ClassVar[logging.Logger]
    """Where the writer's failure is logged (the log module's logger)."""

    _hub: LiveHub
    _listeners: CommitListeners
    _max_pending: int

    def _init_committer(self) -> None:
        """Set up the lock and what it guards (call once, in ``__init__``)."""
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # the writer waits here for entries
        self._progress = threading.Condition(self._lock)  # flush() waits here for commits
        self._space = threading.Condition(self._lock)  # append() waits here under backpressure
        # Entries not committed yet, per topic, ascending: the queued ones and the writer's batch.
        self._unsettled: dict[str, deque[LogEntry]] = {}
        self._unsettled_count = 0
        # Entries the writer hasn't taken yet, in append order, with their encoded form.
        self._queue: list[_Q] = []
        self._appended_count = 0
        self._committed_count = 0
        self._async_flushes: deque[_AsyncFlush] = deque()  # ascending targets
        self._sync_flushers = 0  # threads blocked in flush()
        self._failure: BaseException | None = None
        self._closed = False
        self._close_done = threading.Event()

    @property
    def _where(self) -> str:
        """The log's name in messages (its file, its server)."""
        raise NotImplementedError

    # Appending.

    def _wait_for_room(self) -> None:
        """Under the lock: raise if the log is closed or failed, else wait until an entry fits."""
        while True:
            if self._closed:
                raise EventLogClosed("event log is closed")
            self._raise_if_failed()
            if self._unsettled_count < self._max_pending:
                return
            self._space.wait()

    # The writer's side.

    def _count_settled(self, count: int) -> None:
        """Under the lock: ``count`` more entries are settled (committed, or dropped for good)."""
        self._unsettled_count -= count
        self._committed_count += count
        self._space.notify_all()

    def _announce(self, heads: dict[str, int]) -> None:
        """Without the lock, after :meth:`_count_settled`: tell the listeners of the commit up to
        ``heads``, then let the flushes it completes return (in that order, so whoever flushed finds
        the listeners' work done or at least scheduled ahead of it)."""
        # Outside the lock: a listener may take locks that are held around append().
        self._listeners.notify(heads)
        with self._lock:
            self._progress.notify_all()
            done = []
            while self._async_flushes and self._async_flushes[0][0] <= self._committed_count:
                done.append(self._async_flushes.popleft())
        for _, loop, future in done:
            resolve_threadsafe(loop, future)

    def _writer_failed(self, exc: BaseException) -> None:
        """Log the writer's failure and latch it: the log accepts no more appends."""
        self._logger.exception(
            "event log %s: write failed; the log accepts no more appends", self._where
        )
        with self._lock:
            self._failure = exc

    def _writer_exited(self) -> None:
        """Nothing will be committed any more: wake whoever waits for that."""
        with self._lock:
            flushes = list(self._async_flushes)
            self._async_flushes.clear()
            self._progress.notify_all()
            self._space.notify_all()
        for _, loop, future in flushes:
            resolve_threadsafe(loop, future)

    def _flush_waiting(self) -> bool:
        return bool(self._sync_flushers or self._async_flushes)

    def _hurry_writer(self) -> None:
        """Under the lock, when a flush starts waiting: make the writer commit without delay.

        Nothing by default: a writer that never delays a commit needs no nudge.
        """

    # Waiting for commits.

    def flush(self) -> None:
        """Block until everything appended so far is committed; see :meth:`EventLog.flush`."""
        with self._lock:
            target = self._appended_count
            self._sync_flushers += 1
            self._hurry_writer()
            try:
                while self._committed_count < target and self._failure is None:
                    self._progress.wait()
            finally:
                self._sync_flushers -= 1
            self._raise_if_failed()

    async def aflush(self) -> None:
        """Wait until everything appended so far is committed; see :meth:`EventLog.aflush`."""
        with self._lock:
            target = self._appended_count
            if self._committed_count >= target or self._failure is not None:
                self._raise_if_failed()
                return
            loop = asyncio.get_running_loop()
            future = loop.create_future()
            self._async_flushes.append((target, loop, future))
            self._hurry_writer()
        await future
        with self._lock:
            self._raise_if_failed()

    @property
    def failure(self) -> str | None:
        """Why the log stopped accepting writes (a failed write latches), or ``None`` if it is well."""
        failure = self._failure
        return None if failure is None else f"{type(failure).__name__}: {failure}"

    def _raise_if_failed(self) -> None:
        if self._failure is not None:
            raise EventLogError(
                f"event log {self._where}: an earlier write failed: {self._failure!r}"
            ) from self._failure

    # Closing.

    def close(self) -> None:
        """Commit what is queued, end subscriptions and let go of the store; see
        :meth:`EventLog.close`. A second call waits for the first one to finish.

        Raises:
            EventLogError: if a write failed, now or earlier; the log is closed all the same.
        """
        with self._lock:
            if self._closed:
                first = False
            else:
                first = self._closed = True
                self._work.notify()
                self._space.notify_all()
        if not first:
            self._close_done.wait()
            return
        try:
            self._shut_down()
        finally:
            self._close_done.set()
        with self._lock:
            self._raise_if_failed()

    def _shut_down(self) -> None:
        """The rest of the first :meth:`close`, once the log is marked closed: let the writer drain
        the queue and end, stop the other threads, end subscriptions, release the store."""
        raise NotImplementedError

    # Reading.

    def subscribe(self, topic: str, after: int = 0) -> AsyncGenerator[LogEntry, None]:
        """Iterate over stored then live entries; see :meth:`EventLog.subscribe`."""
        validate_topic(topic)
        check_read_bounds(after, None)
        with self._lock:
            self._check_open()
        return follow(self._hub, self._read_page, topic, after)

    async def _read_page(self, topic: str, after: int, limit: int) -> list[LogEntry]:
        """Up to ``limit`` entries of ``topic`` after ``after``, committed or not, for a
        subscriber catching up (see :func:`~acp_bridge.eventlog._live.follow`)."""
        raise NotImplementedError

    def _uncommitted(self, topic: str, after: int, limit: int | None) -> list[LogEntry]:
        """Under the lock: the entries of ``topic`` after ``after`` that are not committed yet."""
        unsettled = self._unsettled.get(topic)
        if not unsettled:
            return []
        start = max(after + 1 - unsettled[0].id, 0)
        stop = None if limit is None else start + limit
        return list(islice(unsettled, start, stop))

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` after each commit; see :meth:`EventLog.add_commit_listener`."""
        self._listeners.add(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogClosed("event log is closed")
