"""The backend-neutral contract of the event log: records, entries, errors and the protocol.

An event log is a set of *topics*, each an append-only sequence of :class:`LogRecord` values. The
log numbers every topic's records itself, from 1 and without gaps, so a reader can resume from "the
last id I saw" and can tell when it missed something. The log attaches no meaning to a record: the
``kind`` and ``payload`` belong to whoever appends them.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Mapping
from types import MappingProxyType
from typing import Any, NamedTuple, Protocol, runtime_checkable

import orjson

__all__ = [
    "CommitListener",
    "CommitListeners",
    "EventLog",
    "EventLogClosed",
    "EventLogError",
    "InvalidTopic",
    "LeasedLog",
    "LogEntry",
    "LogRecord",
    "Prunable",
    "now_ms",
    "sanitize_topic_component",
    "validate_topic",
]


logger = logging.getLogger(__name__)


def now_ms() -> int:
    """Return the wall-clock time in whole milliseconds since the Unix epoch."""
    return time.time_ns() // 1_000_000


_UNSET: Any = object()
_NO_HEADERS: Mapping[str, str] = MappingProxyType({})
_new_record = object.__new__


class LogRecord:
    """One record, as the producer hands it to :meth:`EventLog.append`.

    ``payload`` is a JSON-compatible value. A producer that already has the JSON bytes (the agent-event
    sink serialises each event once) builds the record with :meth:`from_json`; the record then decodes
    the payload only if somebody reads it, and a durable backend stores the bytes as they are. Either
    form is produced from the other on demand and cached, so records are cheap to pass around.

    The log keeps a reference to ``payload`` and ``headers`` rather than a copy (copying every event
    would cost more than storing it), so don't mutate them after appending. Durable backends store the
    JSON encoding, so a payload read back from disk is the JSON round trip of the appended one (tuples
    come back as lists, for instance).
    """

    __slots__ = ("_payload", "_payload_json", "headers", "kind", "occurred_at_ms")

    kind: str
    """What the record is, in the producer's vocabulary (e.g. an event type name)."""
    headers: Mapping[str, str]
    """Small string metadata, e.g. a trace id; not interpreted by the log."""
    occurred_at_ms: int
    """When the record happened, in wall-clock milliseconds (see :func:`now_ms`)."""

    def __init__(
        self,
        kind: str,
        payload: Any,
        headers: Mapping[str, str] | None = None,
        occurred_at_ms: int | None = None,
    ) -> None:
        self.kind = kind
        self._payload = payload
        self._payload_json: bytes | None = None
        self.headers = {} if headers is None else headers
        self.occurred_at_ms = now_ms() if occurred_at_ms is None else occurred_at_ms

    @classmethod
    def from_json(
        cls,
        kind: str,
        payload_json: bytes,
        headers: Mapping[str, str] | None = None,
        occurred_at_ms: int | None = None,
    ) -> LogRecord:
        """A record whose payload is given already encoded as one JSON value (not validated)."""
        # Filled in directly: this runs once per event on the hot path, __init__ twice as slow.
        record = _new_record(cls)
        record.kind = kind
        record._payload = _UNSET
        record._payload_json = payload_json
        record.headers = _NO_HEADERS if headers is None else headers
        record.occurred_at_ms = now_ms() if occurred_at_ms is None else occurred_at_ms
        return record

    @property
    def payload(self) -> Any:
        """The payload as a JSON-compatible value."""
        if self._payload is _UNSET:
            self._payload = orjson.loads(self._payload_json)  # type: ignore[arg-type]
        return self._payload

    @property
    def payload_json(self) -> bytes:
        """The payload encoded as JSON; raises ``TypeError`` if it is not JSON-compatible."""
        if self._payload_json is None:
            self._payload_json = orjson.dumps(self._payload)
        return self._payload_json

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LogRecord):
            return NotImplemented
        return (
            self.kind == other.kind
            and self.occurred_at_ms == other.occurred_at_ms
            and dict(self.headers) == dict(other.headers)
            and self.payload == other.payload
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        payload = self._payload if self._payload is not _UNSET else self._payload_json
        return (
            f"LogRecord(kind={self.kind!r}, payload={payload!r}, headers={dict(self.headers)!r}, "
            f"occurred_at_ms={self.occurred_at_ms!r})"
        )


class LogEntry(NamedTuple):
    """A record as stored in a topic, with the id the log gave it.

    A named tuple rather than a frozen dataclass: one is made per appended event, and a tuple is
    built in half the time (immutable all the same).
    """

    topic: str
    """The topic the record was appended to."""
    id: int
    """Position in the topic: per topic, gap-free and starting at 1."""
    record: LogRecord
    """The appended record."""


class EventLogError(Exception):
    """Base class of the errors raised by an event log."""


class InvalidTopic(EventLogError, ValueError):
    """A topic name is empty or contains a character outside ``[A-Za-z0-9._-]``."""


class EventLogClosed(EventLogError):
    """The event log was closed."""


_VALID_TOPIC = re.compile(r"[A-Za-z0-9._-]+")
_INVALID_TOPIC_CHAR = re.compile(r"[^A-Za-z0-9._-]")


def validate_topic(topic: str) -> str:
    """Return ``topic`` unchanged if it is a valid topic name, else raise :exc:`InvalidTopic`.

    A valid name is non-empty and made of ASCII letters, digits, ``.``, ``_`` and ``-`` only, so it
    is safe as a file name, a SQL value and a Redis key alike.
    """
    if not isinstance(topic, str) or _VALID_TOPIC.fullmatch(topic) is None:
        raise InvalidTopic(f"invalid topic {topic!r}: use one or more of [A-Za-z0-9._-]")
    return topic


def sanitize_topic_component(s: str) -> str:
    """Make ``s`` usable inside a topic name by replacing each disallowed code point with ``_``.

    The mapping neither trims nor collapses, so the result has as many code points as ``s``:
    ``"a/b"`` becomes ``"a_b"`` and ``"é"`` becomes ``"_"``. It is not injective; callers that need
    distinct topics for distinct inputs must ensure that themselves.
    """
    return _INVALID_TOPIC_CHAR.sub("_", s)


def check_read_bounds(after: int, limit: int | None) -> None:
    """Raise :exc:`ValueError` unless ``after`` and ``limit`` are acceptable read bounds."""
    if after < 0:
        raise ValueError(f"after must be >= 0, got {after}")
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0 or None, got {limit}")


CommitListener = Callable[[Mapping[str, int]], None]
"""Told ``{topic: committed id}`` whenever records become durable; see :meth:`EventLog.add_commit_listener`."""


class CommitListeners:
    """The commit listeners of one log: thread-safe, copy-on-write, each call contained.

    A backend calls :meth:`notify` after records became durable, never while holding its own lock
    (a listener may take locks of its own that are held around ``append``).
    """

    __slots__ = ("_listeners", "_lock")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._listeners: tuple[CommitListener, ...] = ()

    def add(self, listener: CommitListener) -> None:
        """Call ``listener`` on every commit from now on."""
        with self._lock:
            self._listeners = (*self._listeners, listener)

    def remove(self, listener: CommitListener) -> None:
        """Stop calling ``listener`` (no error if it was not added)."""
        with self._lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)

    def __bool__(self) -> bool:
        return bool(self._listeners)

    def notify(self, heads: Mapping[str, int]) -> None:
        """Tell every listener that ``heads`` are durable; a listener that raises is logged."""
        for listener in self._listeners:
            try:
                listener(heads)
            except Exception:
                logger.exception("event log commit listener %r failed", listener)


@runtime_checkable
class EventLog(Protocol):
    """An append-only log of records grouped in topics.

    Every method may be called from any thread. ``append`` never waits for I/O, so it is also safe
    to call from a coroutine; ``flush`` may wait for I/O, so coroutines use ``aflush`` instead.
    """

    def append(self, topic: str, record: LogRecord) -> int:
        """Append ``record`` to ``topic`` and return its id.

        Ids are assigned in call order, per topic, from 1 without gaps. The record is visible to
        readers and subscribers as soon as this returns; durable backends may still be writing it
        (see :meth:`flush`).

        Raises:
            InvalidTopic: if ``topic`` is not a valid topic name.
            EventLogClosed: if the log is closed.
            EventLogError: if a background write failed earlier.
        """
        ...

    def read_range(self, topic: str, after: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Return ``topic``'s entries with ids greater than ``after``, ascending, at most ``limit``.

        An unknown topic reads as empty.
        """
        ...

    def subscribe(self, topic: str, after: int = 0) -> AsyncIterator[LogEntry]:
        """Iterate over ``topic``'s entries with ids greater than ``after``, stored then live.

        The iterator yields every id exactly once, in order, with no gap between the stored and
        the live part, and waits for new entries forever. It ends when the log is closed; stop it
        earlier by cancelling the task or by leaving the loop. A subscription holds a live buffer
        until its iterator is closed or garbage-collected; the bundled backends return async
        generators, which :func:`contextlib.aclosing` closes deterministically.
        """
        ...

    def latest(self, topic: str) -> int | None:
        """Return the highest id in ``topic``, or ``None`` if the topic has no entries."""
        ...

    def committed(self, topic: str) -> int | None:
        """Return the highest id of ``topic`` that is durable, or ``None`` if none is yet.

        Every id up to it survives the process being killed (``kill -9``) and is never handed out
        again, whatever happens next; an id above it may be lost in a crash and then reassigned.
        So nothing past it may be shown to anybody outside the process. For a log that holds
        nothing beyond the process (memory), every appended id is as durable as it gets.
        """
        ...

    def add_commit_listener(self, listener: CommitListener) -> None:
        """Call ``listener({topic: id})`` each time records become durable.

        The mapping names every topic the commit covered, with its new :meth:`committed` id.
        Listeners run on the thread that made the records durable (a writer thread, or the
        appending thread for a log that is durable on append), in commit order, never while the
        log holds its own lock, and before anyone waiting in :meth:`flush`/:meth:`aflush` for those
        records is woken. A commit is reported either from inside :meth:`append` or from a thread
        of the log's own, never from a later callback on the appending thread: the ACP layer's
        session journal publishes on that rule (it drains on append only when the append itself
        reported the commit, and leaves the rest to the drain a cross-thread report schedules).
        """
        ...

    def remove_commit_listener(self, listener: CommitListener) -> None:
        """Stop calling ``listener``."""
        ...

    def topics(self) -> list[str]:
        """Return the names of the topics that have at least one entry, sorted."""
        ...

    def flush(self) -> None:
        """Block until every record appended before this call is durable.

        Raises:
            EventLogError: if a background write failed.
        """
        ...

    async def aflush(self) -> None:
        """Wait, without blocking the event loop, until every record appended so far is durable.

        Raises:
            EventLogError: if a background write failed.
        """
        ...

    def close(self) -> None:
        """Flush, stop background work and end live subscriptions.

        Closing twice is harmless. Afterwards, ``append`` and reads raise :exc:`EventLogClosed`.
        """
        ...


@runtime_checkable
class Prunable(Protocol):
    """A log that can forget the oldest entries of a topic (retention, deleted sessions).

    Ids are never reused: after ``prune(topic, n)`` the topic continues from where it was, and a
    read from an ``after`` below ``n`` starts at the first entry left.
    """

    def prune(self, topic: str, through: int) -> int:
        """Delete the committed entries of ``topic`` with ids up to ``through``; return how many.

        May wait for I/O (coroutines call it in a thread). Entries not committed yet are never
        deleted, so ``through`` is capped at the committed head.
        """
        ...

    def first_id(self, topic: str) -> int | None:
        """The lowest id ``topic`` still holds (``None`` when it holds none)."""
        ...


@runtime_checkable
class LeasedLog(Protocol):
    """A log that several processes share, with a lease per group of topics (Redis).

    Topics ``PREFIX + NAME`` (for the prefixes given to :meth:`group_topics`) form the group
    ``NAME``. Appending to a grouped topic needs the group's lease; the log refuses (fences) the
    appends of a process that lost it, and tells its lease listeners.
    """

    @property
    def node_id(self) -> str:
        """This process's name in the leases it holds."""
        ...

    def group_topics(self, prefixes: tuple[str, ...]) -> None:
        """Group every topic ``PREFIX + NAME`` under ``NAME``; call before any other use."""
        ...

    def claim(self, group: str) -> int | None:
        """Take or keep the lease of ``group``: its fencing token, or ``None`` if another holds it."""
        ...

    def holds(self, group: str) -> bool:
        """Whether this process holds the lease of ``group``."""
        ...

    def owner(self, group: str) -> str | None:
        """The node holding the lease of ``group``, or ``None``."""
        ...

    def release(self, group: str) -> None:
        """Give up the lease of ``group``."""
        ...

    def add_lease_listener(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(group)`` when this process loses a group's lease."""
        ...

    def tail(
        self, topic: str, after: int = 0, *, stopped: Callable[[], bool] | None = None
    ) -> AsyncIterator[LogEntry]:
        """Entries of ``topic`` after ``after`` as the shared store holds them, from every process,
        until the log closes or ``stopped()`` is true."""
        ...

    def send_command(self, group: str, message: bytes) -> str:
        """Queue ``message`` for the node that owns ``group``; return the command's id."""
        ...

    def withdraw_command(self, group: str, command_id: str) -> None:
        """Delete a command nobody read."""
        ...

    def commands(
        self, group: str, *, stopped: Callable[[], bool] | None = None
    ) -> AsyncIterator[bytes]:
        """The commands sent to ``group`` (for its owner), each to one node once."""
        ...

    def reply(self, group: str, reply_id: str, message: bytes) -> None:
        """Answer the command that asked for ``reply_id``."""
        ...

    async def wait_reply(
        self, group: str, reply_id: str, *, gone: Callable[[], bool] | None = None
    ) -> bytes | None:
        """The answer for ``reply_id``, or ``None`` once ``gone()`` is true."""
        ...
