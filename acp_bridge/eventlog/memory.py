"""An event log held in memory: for tests, and for deployments that need no history after exit."""

from __future__ import annotations

import threading
from collections.abc import AsyncGenerator

from ._live import DEFAULT_LIVE_QUEUE_SIZE, LiveHub, follow
from .base import (
    CommitListener,
    CommitListeners,
    EventLogClosed,
    LogEntry,
    LogRecord,
    check_read_bounds,
    validate_topic,
)

__all__ = ["MemoryEventLog"]


class MemoryEventLog:
    """An :class:`~acp_bridge.eventlog.EventLog` that keeps every entry in a list per topic.

    Nothing is evicted unless :meth:`prune` is called, so memory grows with the number of records. An
    entry is committed when ``append`` returns (nothing outlives the process anyway), and commit
    listeners are told so from the appending thread, one call per append.

    Args:
        live_queue_size: how many entries a subscriber may fall behind before it catches up
            from the log instead of from its live buffer.
    """

    def __init__(self, *, live_queue_size: int = DEFAULT_LIVE_QUEUE_SIZE) -> None:
        self._lock = threading.Lock()
        self._topics: dict[str, list[LogEntry]] = {}
        self._pruned: dict[str, int] = {}  # per topic, the highest id deleted by prune()
        self._closed = False
        self._hub = LiveHub(live_queue_size)
        self._listeners = CommitListeners()

    def __repr__(self) -> str:
        return f"<MemoryEventLog topics={len(self._topics)}{' closed' if self._closed else ''}>"

    def append(self, topic: str, record: LogRecord) -> int:
        """Append ``record`` to ``topic`` and return its id; see :meth:`EventLog.append`."""
        if not isinstance(record, LogRecord):
            raise TypeError(f"record must be a LogRecord, got {type(record).__name__}")
        with self._lock:
            if self._closed:
                raise EventLogClosed("event log is closed")
            entries = self._topics.get(topic)
            if entries is None:
                entries = self._topics[validate_topic(topic)] = []
            entry = LogEntry(topic, self._pruned.get(topic, 0) + len(entries) + 1, record)
            entries.append(entry)
            self._hub.publish(entry)
        if self._listeners:
            self._listeners.notify({topic: entry.id})
        return entry.id

    def read_range(self, topic: str, after: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Return entries with ids greater than ``after``; see :meth:`EventLog.read_range`."""
        validate_topic(topic)
        check_read_bounds(after, limit)
        with self._lock:
            self._check_open()
            entries = self._topics.get(topic, [])
            # Ids are list positions plus one, plus what prune() removed from the front.
            start = max(after - self._pruned.get(topic, 0), 0)
            return entries[start:] if limit is None else entries[start : start + limit]

    def subscribe(self, topic: str, after: int = 0) -> AsyncGenerator[LogEntry, None]:
        """Iterate over stored then live entries; see :meth:`EventLog.subscribe`."""
        validate_topic(topic)
        check_read_bounds(after, None)
        with self._lock:
            self._check_open()
        return follow(self._hub, self._read_page, topic, after)

    async def _read_page(self, topic: str, after: int, limit: int) -> list[LogEntry]:
        return self.read_range(topic, after, limit)

    def latest(self, topic: str) -> int | None:
        """Return the highest id in ``topic``, or ``None``; see :meth:`EventLog.latest`."""
        with self._lock:
            self._check_open()
            entries = self._topics.get(topic)
            if entries is None:
                return None
            head = self._pruned.get(topic, 0) + len(entries)
            return head or None

    def prune(self, topic: str, through: int) -> int:
        """Forget the entries of ``topic`` with ids up to ``through``; see :class:`Prunable`."""
        validate_topic(topic)
        with self._lock:
            self._check_open()
            entries = self._topics.get(topic)
            if not entries:
                return 0
            pruned = self._pruned.get(topic, 0)
            count = min(max(through - pruned, 0), len(entries))
            if count:
                del entries[:count]
                self._pruned[topic] = pruned + count
            return count

    def first_id(self, topic: str) -> int | None:
        """The lowest id ``topic`` still holds; see :class:`Prunable`."""
        with self._lock:
            self._check_open()
            entries = self._topics.get(topic)
            return entries[0].id if entries else None

    def committed(self, topic: str) -> int | None:
        """Return the highest id, like :meth:`latest`: an entry is committed once appended."""
        return self.latest(topic)

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener`` after every append; see :meth:`EventLog.add_commit_listener`."""
        self._listeners.add(listener)

    def remove_commit_listener(self, listener: CommitListener) -> None:
        """Stop calling ``listener``."""
        self._listeners.remove(listener)

    def topics(self) -> list[str]:
        """Return the non-empty topics, sorted; see :meth:`EventLog.topics`."""
        with self._lock:
            self._check_open()
            return sorted(self._topics)

    def flush(self) -> None:
        """Return at once: appended entries are as durable as this log gets."""

    async def aflush(self) -> None:
        """Return at once: appended entries are as durable as this log gets."""

    def close(self) -> None:
        """End live subscriptions and refuse further use; the entries are dropped."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            self._topics = {}
            self._pruned = {}
        self._hub.close()

    def _check_open(self) -> None:
        if self._closed:
            raise EventLogClosed("event log is closed")
