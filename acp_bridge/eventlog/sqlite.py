"""An event log in one SQLite file, written by a background thread in group commits.

``append`` never touches the disk. It numbers the entry from an in-memory head, queues it and
returns; a writer thread takes everything queued, inserts it in one transaction and commits. Under
a burst, one commit thus covers thousands of appends. Until its transaction commits an entry stays
in memory, where readers find it, so a reader sees every id at once, stored or not.

The price is a durability window: an entry is on disk only once its transaction committed, which
:meth:`SqliteEventLog.committed` and the commit listeners report (and :meth:`SqliteEventLog.flush`
waits for). An id past the committed one may be lost in a crash and handed out again after it, so
whoever shows entries outside the process waits for the commit. The file is in WAL mode; with
``synchronous="NORMAL"``, a committed transaction survives the process crashing but may be lost if
the machine loses power; ``"FULL"`` makes commits survive that too, at the cost of an fsync per
commit.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
import threading
from collections import deque
from collections.abc import Callable, Mapping
from operator import itemgetter
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import orjson

from ._committer import Committer
from ._live import DEFAULT_LIVE_QUEUE_SIZE, LiveHub
from ._sqlite_rows import (
    DELETE_EVENTS,
    MAX_EVENT_ID,
    SCHEMA_VERSION,
    SELECT_EVENTS,
    SELECT_FIRST_KEY,
    SELECT_HEADS,
    UPDATE_HEAD,
    AtomReader,
    AtomWriter,
    ensure_schema,
    event_key,
    insert_rows,
    insert_run,
    statement_sizes,
)
from .base import (
    CommitListeners,
    EventLogClosed,
    EventLogError,
    LogEntry,
    LogRecord,
    check_read_bounds,
    validate_topic,
)

__all__ = ["SCHEMA_VERSION", "RawRow", "SqliteEventLog"]

RawRow: TypeAlias = tuple[int, str, Mapping[str, Any], int, bytes]
"""``(id, kind, headers, occurred_at_ms, payload JSON)``; see :meth:`SqliteEventLog.read_committed_rows`."""
_NO_HEADERS: Mapping[str, Any] = MappingProxyType({})

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX: no advisory lock, one writer by convention
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

_MAX_BATCH = 8_192
"""Most entries per transaction: large enough to amortise a commit, small enough to keep each
transaction, and the lock hold that settles it, short."""
_BATCH_TARGET = 256  # a batch this big is committed without waiting for more
DEFAULT_COMMIT_WINDOW = 0.0
"""Seconds a small batch may wait to grow before its commit. None by default: clients see an event
only once it is committed, so the window would be latency on every event, and under load batches
grow by themselves while the previous commit runs (measured: p99 emit→client 0.7 ms with no
window, 2.9 ms with 2 ms, at the same throughput; bench/RESULTS.md)."""

_BUSY_TIMEOUT_MS = 5_000

CHECKPOINT_BYTES = 4 * 1024 * 1024
"""Payload bytes committed between two WAL checkpoints (about SQLite's own 1,000-page default)."""

_Queued = tuple[LogEntry, bytes, bytes | None]
_payload_of = itemgetter(1)


PRUNE_CHUNK = 20_000
"""Most ids :meth:`SqliteEventLog.prune` deletes in one transaction."""
VACUUM_STEP_PAGES = 2_000
"""Most free pages :meth:`SqliteEventLog.prune` gives back to the file system in one transaction."""


class SqliteEventLog(Committer[_Queued]):
    """An :class:`~acp_bridge.eventlog.EventLog` stored in the SQLite file at ``path``.

    The file is created if missing, and reopening it continues every topic where it stopped. Only
    one ``SqliteEventLog`` may have a given file open at a time, in any process: each numbers
    entries from its own in-memory heads.

    Args:
        path: the database file; its directory must exist.
        synchronous: SQLite's ``synchronous`` setting for commits, ``"NORMAL"`` or ``"FULL"``.
        max_pending: how many appended entries may wait for their commit; once that many do,
            ``append`` blocks until the writer catches up, which bounds memory.
        live_queue_size: how many entries a subscriber may fall behind before it catches up
            from the log instead of from its live buffer.
        commit_window: how long (seconds) the writer lets a small batch grow before committing it,
            unless a flush is waiting. A trickle of appends (one event per loop turn, as a paced agent
            produces) then costs one commit per window instead of one per append; a flush never waits
            for the window.

    Raises:
        EventLogError: if the file can't be opened or holds something else than an event log.
    """

    _logger = logger

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        max_pending: int = 65_536,
        live_queue_size: int = DEFAULT_LIVE_QUEUE_SIZE,
        commit_window: float = DEFAULT_COMMIT_WINDOW,
    ) -> None:
        self._path = os.fspath(path)
        if self._path in ("", ":memory:"):
            raise ValueError(f"not a database file: {self._path!r}; use MemoryEventLog instead")
        synchronous_setting = str(synchronous).upper()
        if synchronous_setting not in ("NORMAL", "FULL"):
            raise ValueError(f"synchronous must be 'NORMAL' or 'FULL', got {synchronous!r}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be >= 1, got {max_pending}")
        if commit_window < 0:
            raise ValueError(f"commit_window must be >= 0, got {commit_window}")
        self._max_pending = max_pending
        self._commit_window = commit_window
        self._hub = LiveHub(live_queue_size)
        self._listeners = CommitListeners()

        # Ids come from in-memory heads, so a second writer on the same file would hand out the
        # same ids: one process (one instance) per file, enforced by an exclusive lock.
        self._lock_fd = acquire_writer_lock(self._path)
        try:
            writer_conn, reader_conn, heads = self._open(synchronous_setting)
        except BaseException:
            release_writer_lock(self._lock_fd)
            raise
        self._reader: sqlite3.Connection | None = reader_conn
        self._atoms = AtomReader()  # guarded by _reader_lock
        self._reader_lock = threading.Lock()

        # Everything below is guarded by _lock (the committer's state too).
        self._init_committer()
        self._heads: dict[str, int] = heads  # last id assigned, per topic
        self._committed: dict[str, int] = dict(heads)  # last id committed, per topic
        self._floors: dict[str, int] = {}  # per topic, below its first stored id (learnt lazily)
        self._prune_lock = threading.Lock()  # held while prune() works; close() waits for it
        self._writer_idle = False

        self._before_write: Callable[[list[LogEntry]], None] | None = None
        """Test hook: called by the writer thread with each batch before writing it."""

        self._checkpoint_due = threading.Event()
        self._checkpoints = 0  # checkpoint calls made, for tests (they wait on _checkpointed)
        self._checkpointed = threading.Condition()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop,
            name=f"eventlog-checkpoint:{os.path.basename(self._path)}",
            daemon=True,
        )

        self._writer = threading.Thread(
            target=self._run,
            args=(writer_conn,),
            name=f"eventlog-writer:{os.path.basename(self._path)}",
            # A forgotten close() must not hang interpreter exit; what wasn't flushed is lost.
            daemon=True,
        )
        try:
            self._writer.start()
            self._checkpointer.start()
        except BaseException:
            reader_conn.close()
            writer_conn.close()
            release_writer_lock(self._lock_fd)
            raise

    @property
    def path(self) -> str:
        """The database file."""
        return self._path

    @property
    def _where(self) -> str:
        return self._path

    def __repr__(self) -> str:
        return f"<SqliteEventLog {self._path!r}{' closed' if self._closed else ''}>"

    # Opening.

    def _open(
        self, synchronous: str
    ) -> tuple[sqlite3.Connection, sqlite3.Connection, dict[str, int]]:
        connections: list[sqlite3.Connection] = []
        try:
            writer = self._connect()
            connections.append(writer)
            # Takes effect only in a new file, and only before WAL mode initialises it: pages
            # freed by prune() then go back to the file system (`PRAGMA incremental_vacuum`).
            # Older files switch with `acp-bridge log compact`.
            writer.execute("PRAGMA auto_vacuum = INCREMENTAL")
            mode = writer.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise EventLogError(f"{self._path}: cannot use WAL journal mode (got {mode!r})")
            writer.execute(f"PRAGMA synchronous = {synchronous}")
            # Checkpoints run on a thread of their own (see _checkpoint_loop): on the commit path
            # they stalled the commits queued behind them for milliseconds, and every event a
            # client waits for now waits for its commit.
            writer.execute("PRAGMA wal_autocheckpoint = 0")
            ensure_schema(writer, self._path)
            heads = dict(writer.execute(SELECT_HEADS).fetchall())
            reader = self._connect()
            connections.append(reader)
            reader.execute("PRAGMA query_only = ON")
        except sqlite3.Error as exc:
            for conn in connections:
                conn.close()
            raise EventLogError(f"cannot open event log {self._path}: {exc}") from exc
        except BaseException:
            for conn in connections:
                conn.close()
            raise
        return writer, reader, heads

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: transactions are begun and ended explicitly, not by the module.
        # check_same_thread=False: each connection is used by one thread at a time, not always
        # the thread that opened it.
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
        return conn

    # Writing.

    def append(self, topic: str, record: LogRecord) -> int:
        """Queue ``record`` for ``topic`` and return its id; see :meth:`EventLog.append`.

        This doesn't wait for the disk, except when ``max_pending`` entries already wait for
        their commit: then it blocks until the writer thread has made room.
        """
        if not isinstance(record, LogRecord):
            raise TypeError(f"record must be a LogRecord, got {type(record).__name__}")
        # Encode here, not on the writer thread: a payload that is not JSON fails this append
        # alone instead of latching the whole log, and later mutation of it cannot leak in.
        payload, headers = _encode_record(topic, record)
        with self._lock:
            if (
                self._closed
                or self._failure is not None
                or self._unsettled_count >= self._max_pending
            ):
                self._wait_for_room()
            heads = self._heads
            head = heads.get(topic)
            if head is None:
                # Known topics were validated when first seen; this keeps appends cheap.
                validate_topic(topic)
                head = 0
            if head >= MAX_EVENT_ID:
                raise EventLogError(f"topic {topic!r} is full ({MAX_EVENT_ID} events)")
            event_id = heads[topic] = head + 1
            entry = _new_entry(LogEntry, (topic, event_id, record))
            unsettled = self._unsettled.get(topic)
            if unsettled is None:
                unsettled = self._unsettled[topic] = deque()
            unsettled.append(entry)
            self._unsettled_count += 1
            self._queue.append((entry, payload, headers))
            self._appended_count += 1
            self._hub.publish(entry)
            if self._writer_idle:
                self._writer_idle = False
                self._work.notify()
            elif len(self._queue) == _BATCH_TARGET:
                self._work.notify()  # end a commit window early: the batch is big enough
        return event_id

    def _run(self, conn: sqlite3.Connection) -> None:
        """Body of the writer thread: commit queued entries until closed and drained."""
        unchecked = 0  # payload bytes committed since the last checkpoint was asked for
        try:
            atoms = AtomWriter(conn)
            while True:
                with self._lock:
                    while not self._queue and not self._closed:
                        self._writer_idle = True
                        self._work.wait()
                    self._writer_idle = False
                    if not self._queue:
                        return
                    if (
                        len(self._queue) < _BATCH_TARGET
                        and self._commit_window
                        and not self._closed
                        and not self._flush_waiting()
                    ):
                        # Let a small batch grow; flush() and close() wake us early.
                        self._work.wait(self._commit_window)
                    if len(self._queue) <= _MAX_BATCH:
                        queued, self._queue = self._queue, []
                    else:
                        queued = self._queue[:_MAX_BATCH]
                        del self._queue[:_MAX_BATCH]
                if self._before_write is not None:
                    self._before_write([entry for entry, _, _ in queued])
                heads = _write(conn, atoms, queued)
                self._settle(len(queued), heads)
                unchecked += sum(map(len, map(_payload_of, queued)))
                if unchecked >= CHECKPOINT_BYTES:
                    unchecked = 0
                    self._checkpoint_due.set()
        except BaseException as exc:
            self._writer_failed(exc)
        finally:
            conn.close()
            self._writer_exited()

    def _checkpoint_loop(self) -> None:
        """Body of the checkpoint thread: copy the WAL into the database when the writer asks.

        PASSIVE never blocks the writer (it copies what it can without waiting for locks), and the
        fsync it needs happens here, off the commit path.
        """
        conn: sqlite3.Connection | None = None
        try:
            conn = self._connect()
            while True:
                self._checkpoint_due.wait()
                self._checkpoint_due.clear()
                if self._closed:
                    return
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as exc:
                    # Not fatal: the WAL grows until the next checkpoint (or close) succeeds.
                    logger.warning("event log %s: checkpoint failed: %s", self._path, exc)
                with self._checkpointed:
                    self._checkpoints += 1
                    self._checkpointed.notify_all()
        except sqlite3.Error as exc:
            logger.warning("event log %s: no checkpoint thread: %s", self._path, exc)
        finally:
            if conn is not None:
                conn.close()

    def _settle(self, count: int, heads: dict[str, int]) -> None:
        """Record that a batch of ``count`` entries, up to ``heads``, is committed: readers now find
        it on disk, listeners are told, then flushes may return (see :meth:`_announce`)."""
        with self._lock:
            for topic, head in heads.items():
                self._committed[topic] = head
                unsettled = self._unsettled[topic]
                # Ids are consecutive: the committed ones are the first `head - first + 1`.
                settled = head - unsettled[0].id + 1
                if settled >= len(unsettled):
                    del self._unsettled[topic]
                else:
                    popleft = unsettled.popleft
                    for _ in range(settled):
                        popleft()
            self._count_settled(count)
        self._announce(heads)

    def _hurry_writer(self) -> None:
        self._work.notify()  # cut a commit window short

    def _shut_down(self) -> None:
        """Close the reader, stop the checkpoint thread and any prune, let the writer commit what
        is queued and close the file, end subscriptions, release the file's lock."""
        try:
            with self._reader_lock:
                if self._reader is not None:
                    self._reader.close()
                    self._reader = None
            self._checkpoint_due.set()  # wakes the checkpoint thread, which sees _closed and ends
            self._checkpointer.join()
            with self._prune_lock:
                pass  # a prune in progress sees _closed after its current step and stops
            # The writer drains the queue before it exits, and closes the file last, which lets
            # SQLite checkpoint and remove the WAL.
            self._writer.join()
            self._hub.close()
        finally:
            release_writer_lock(self._lock_fd)

    # Reading.

    def read_range(self, topic: str, after: int = 0, limit: int | None = None) -> list[LogEntry]:
        """Return entries with ids greater than ``after``; see :meth:`EventLog.read_range`.

        Committed entries are read from the file, on the calling thread.
        """
        validate_topic(topic)
        check_read_bounds(after, limit)
        with self._lock:
            self._check_open()
            committed, recent = self._snapshot(topic, after, limit)
            floor = self._floors.get(topic)
        if after >= committed:
            return recent
        if floor is None:
            floor = self._floor(topic)
        after = max(after, floor)  # pruned entries are gone: start at the first one left
        if after >= committed:
            return recent if limit is None else recent[:limit]
        count = committed - after if limit is None else min(limit, committed - after)
        stored = self._select(topic, after, committed, count)
        if limit is not None:
            recent = recent[: limit - len(stored)]
        return stored + recent

    def _snapshot(self, topic: str, after: int, limit: int | None) -> tuple[int, list[LogEntry]]:
        """Return the committed head of ``topic`` and the uncommitted entries after ``after``.

        Call with ``_lock`` held. Together, the rows up to the head and these entries are all of
        the topic at this instant; a commit that happens next only moves entries from the second
        part to the first, so a reader that uses the returned head can't miss or repeat any.
        """
        return self._committed.get(topic, 0), self._uncommitted(topic, after, limit)

    def _select(self, topic: str, after: int, upto: int, count: int) -> list[LogEntry]:
        """Read the ``count`` committed entries of ``topic`` after ``after``, up to ``upto``."""
        return [
            LogEntry(topic, event_id, LogRecord.from_json(kind, payload, dict(headers), at))
            for event_id, kind, headers, at, payload in self._select_rows(topic, after, upto, count)
        ]

    def _select_rows(self, topic: str, after: int, upto: int, count: int) -> list[RawRow]:
        with self._reader_lock:
            if self._reader is None:
                raise EventLogClosed("event log is closed")
            try:
                reader, atoms = self._reader, self._atoms
                topic_id = atoms.topic_id(reader, topic)
                rows = (
                    []
                    if topic_id is None
                    else reader.execute(
                        SELECT_EVENTS,
                        (event_key(topic_id, after), event_key(topic_id, upto), count),
                    ).fetchall()
                )
                if len(rows) != count and not self._pruned_since(topic, after):
                    raise EventLogError(
                        f"event log {self._path}: topic {topic!r} lost committed entries"
                        f" after id {after} (found {len(rows)} of {count})"
                    )
                # The hot loop of every replay: the atom lookups inlined, misses asked once.
                kinds, header_sets = atoms.kinds, atoms.header_sets
                out: list[RawRow] = []
                for key, kind_id, headers_id, occurred_at_ms, payload in rows:
                    kind = kinds.get(kind_id)
                    if kind is None:
                        kind = atoms.kind(reader, kind_id)
                    if headers_id is None:
                        headers: Mapping[str, Any] = _NO_HEADERS
                    else:
                        headers = header_sets.get(headers_id) or atoms.shared_headers(
                            reader, headers_id
                        )
                    out.append((key & MAX_EVENT_ID, kind, headers, occurred_at_ms, payload))
                return out
            except sqlite3.Error as exc:
                raise EventLogError(f"event log {self._path}: read failed: {exc}") from exc

    def read_committed_rows(self, topic: str, after: int, limit: int) -> list[RawRow]:
        """Up to ``limit`` committed entries of ``topic`` after ``after``, as plain rows.

        ``(id, kind, headers, occurred_at_ms, payload JSON)``: what :meth:`read_range` gives without
        building a record per entry (replaying a long session reads a million of them). The
        ``headers`` mapping is shared between rows: read it, never change it. Entries not committed
        yet are not included.
        """
        validate_topic(topic)
        check_read_bounds(after, limit)
        with self._lock:
            self._check_open()
            committed = self._committed.get(topic, 0)
            floor = self._floors.get(topic)
        if after >= committed:
            return []
        if floor is None:
            floor = self._floor(topic)
        after = max(after, floor)
        if after >= committed:
            return []
        return self._select_rows(topic, after, committed, min(limit, committed - after))

    def _floor(self, topic: str) -> int:
        """One below the first stored id of ``topic`` (its committed head if it holds none)."""
        with self._lock:
            # Taken before the query: a commit landing meanwhile must not raise the floor past
            # rows the query did not see.
            committed = self._committed.get(topic, 0)
        with self._reader_lock:
            if self._reader is None:
                raise EventLogClosed("event log is closed")
            try:
                topic_id = self._atoms.topic_id(self._reader, topic)
                first = (
                    None
                    if topic_id is None
                    else self._reader.execute(
                        SELECT_FIRST_KEY,
                        (event_key(topic_id, 0), event_key(topic_id, MAX_EVENT_ID)),
                    ).fetchone()[0]
                )
            except sqlite3.Error as exc:
                raise EventLogError(f"event log {self._path}: read failed: {exc}") from exc
        with self._lock:
            if topic in self._floors:  # a prune() got there first
                return self._floors[topic]
            floor = committed if first is None else (first & MAX_EVENT_ID) - 1
            self._floors[topic] = floor
            return floor

    def _pruned_since(self, topic: str, after: int) -> bool:
        with self._lock:
            return self._floors.get(topic, 0) > after

    def first_id(self, topic: str) -> int | None:
        """The lowest id ``topic`` still holds; see :class:`~acp_bridge.eventlog.base.Prunable`."""
        validate_topic(topic)
        with self._lock:
            self._check_open()
            head = self._heads.get(topic)
            floor = self._floors.get(topic)
        if head is None:
            return None
        if floor is None:
            floor = self._floor(topic)
        return floor + 1 if floor < head else None

    def prune(self, topic: str, through: int) -> int:
        """Delete the committed entries of ``topic`` with ids up to ``through``; return how many.

        Runs on the calling thread with a connection of its own, in transactions of at most
        :data:`PRUNE_CHUNK` ids so the writer thread never waits long for the file, then gives the
        freed pages back (``PRAGMA incremental_vacuum``, at most :data:`VACUUM_STEP_PAGES` per
        transaction, in files created with it on). A :meth:`close` meanwhile stops it between two
        steps and waits for the step in progress. See :class:`~acp_bridge.eventlog.base.Prunable`.
        """
        validate_topic(topic)
        with self._lock:
            self._check_open()
            through = min(through, self._committed.get(topic, 0))
            known = self._floors.get(topic)
        floor = known if known is not None else self._floor(topic)
        if through <= floor:
            return 0
        with self._lock:
            # Readers from here on start after `through`; one already reading tolerates the gap.
            self._floors[topic] = max(self._floors.get(topic, 0), through)
        with self._prune_lock:
            if self._closed:
                return 0
            try:
                return self._delete_through(topic, floor, through)
            except sqlite3.Error as exc:
                raise EventLogError(f"event log {self._path}: prune failed: {exc}") from exc

    def _delete_through(self, topic: str, floor: int, through: int) -> int:
        deleted = 0
        with contextlib.closing(self._connect()) as conn:
            row = conn.execute("SELECT topic_id FROM topics WHERE name = ?", (topic,)).fetchone()
            if row is None:
                return 0
            low = floor
            while low < through and not self._closed:
                high = min(low + PRUNE_CHUNK, through)
                conn.execute("BEGIN IMMEDIATE")
                try:
                    cursor = conn.execute(
                        DELETE_EVENTS, (event_key(row[0], low), event_key(row[0], high))
                    )
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
                deleted += cursor.rowcount
                low = high
            # Each step its own short write transaction. Through executescript: the module's
            # execute() stops the pragma after one page.
            while not self._closed and conn.execute("PRAGMA freelist_count").fetchone()[0]:
                conn.executescript(f"PRAGMA incremental_vacuum({VACUUM_STEP_PAGES});")
                if not self._auto_vacuum(conn):
                    break  # an older file: its free pages stay for reuse (log compact frees them)
        return deleted

    @staticmethod
    def _auto_vacuum(conn: sqlite3.Connection) -> bool:
        return bool(conn.execute("PRAGMA auto_vacuum").fetchone()[0] == 2)

    async def _read_page(self, topic: str, after: int, limit: int) -> list[LogEntry]:
        with self._lock:
            self._check_open()
            committed, recent = self._snapshot(topic, after, limit)
            floor = self._floors.get(topic)
        if after >= committed:
            return recent
        if floor is None:
            floor = self._floor(topic)
        after = max(after, floor)  # pruned entries are gone: start at the first one left
        if after >= committed:
            return recent if limit is None else recent[:limit]
        # Reading the file may take a while: keep it off the event loop.
        return await asyncio.to_thread(self.read_range, topic, after, limit)

    def latest(self, topic: str) -> int | None:
        """Return the highest id in ``topic``, or ``None``; see :meth:`EventLog.latest`."""
        with self._lock:
            self._check_open()
            return self._heads.get(topic)

    def committed(self, topic: str) -> int | None:
        """Return the highest committed id of ``topic``; see :meth:`EventLog.committed`."""
        with self._lock:
            self._check_open()
            return self._committed.get(topic)

    def topics(self) -> list[str]:
        """Return the non-empty topics, sorted; see :meth:`EventLog.topics`."""
        with self._lock:
            self._check_open()
            return sorted(self._heads)


_new_entry = tuple.__new__
"""Makes a :class:`LogEntry` without its Python-level ``__new__`` (one per append)."""


def _write(conn: sqlite3.Connection, atoms: AtomWriter, queued: list[_Queued]) -> dict[str, int]:
    """Insert a batch and move the topic heads in one transaction; return the new heads."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        heads = _insert_run(conn, atoms, queued)
        if heads is None:
            heads = _insert_rows(conn, atoms, queued)
        if len(heads) == 1:
            for topic, head in heads.items():
                conn.execute(UPDATE_HEAD, (head, atoms.topic_id(topic)))
        else:
            conn.executemany(
                UPDATE_HEAD, [(head, atoms.topic_id(topic)) for topic, head in heads.items()]
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return heads


# The insert helpers below bind each payload as a bytearray, stored as the same BLOB: Python's
# sqlite3 module passes every parameter that isn't exactly an int, float, str or bytearray through
# its adapter lookup first, which for bytes raises and discards an AttributeError each time (about
# 0.3 us per row, more than the copy).


def _insert_run(
    conn: sqlite3.Connection, atoms: AtomWriter, queued: list[_Queued]
) -> dict[str, int] | None:
    """Insert a batch of one topic with one header set (a session's agent events) as a run: its
    ids are consecutive, so one key and one headers id serve every row of a statement. Return the
    new head, or None (nothing inserted) if the batch is not such a run."""
    first, _, headers = queued[0]
    last = queued[-1][0]
    count = len(queued)
    # The entries of a topic in a batch have consecutive ids (a batch is a slice of the append
    # order), so a batch whose ends are one topic `count - 1` ids apart holds that topic alone.
    if last.id - first.id != count - 1 or last.topic != first.topic:
        return None
    kind_ids, kind_id = atoms.kind_ids, atoms.kind_id
    params: list[Any] = [0, None]  # ?1 and ?2, filled in below
    extend = params.extend
    for entry, payload, entry_headers in queued:
        if entry_headers is not headers and entry_headers != headers:
            return None
        record = entry.record
        kind = record.kind
        extend((kind_ids.get(kind) or kind_id(kind), record.occurred_at_ms, bytearray(payload)))
    key = event_key(atoms.topic_id(first.topic), first.id)
    headers_id = None if headers is None else atoms.atom_id(headers)
    start = 2
    for size in statement_sizes(count, atoms.rows_per_insert):
        if size == count:
            params[0], params[1] = key, headers_id
            conn.execute(insert_run(size), params)
        else:
            stop = start + 3 * size
            conn.execute(insert_run(size), (key, headers_id, *params[start:stop]))
            key += size
            start = stop
    return {first.topic: last.id}


def _insert_rows(
    conn: sqlite3.Connection, atoms: AtomWriter, queued: list[_Queued]
) -> dict[str, int]:
    """Insert any batch, each row with its own key and headers; return the new heads."""
    heads: dict[str, int] = {}
    bases: dict[str, int] = {}  # per topic, event_key(topic_id, 0)
    kind_ids, kind_id = atoms.kind_ids, atoms.kind_id
    last_headers: bytes | None = None
    headers_id: int | None = None
    params: list[Any] = []
    extend = params.extend
    for entry, payload, headers in queued:
        topic = entry.topic
        base = bases.get(topic)
        if base is None:
            base = bases[topic] = event_key(atoms.topic_id(topic), 0)
        if headers is not last_headers:
            last_headers = headers
            headers_id = None if headers is None else atoms.atom_id(headers)
        record = entry.record
        kind = record.kind
        extend(
            (
                base | entry.id,
                kind_ids.get(kind) or kind_id(kind),
                headers_id,
                record.occurred_at_ms,
                bytearray(payload),
            )
        )
        heads[topic] = entry.id  # ids ascend per topic in a batch: the last one wins
    count = len(queued)
    start = 0
    for size in statement_sizes(count, atoms.rows_per_insert):
        if size == count:
            conn.execute(insert_rows(size), params)
        else:
            stop = start + 5 * size
            conn.execute(insert_rows(size), params[start:stop])
            start = stop
    return heads


def _encode_record(topic: str, record: LogRecord) -> tuple[bytes, bytes | None]:
    try:
        payload = record.payload_json
        headers = _encode_headers(record.headers) if record.headers else None
    except TypeError as exc:  # orjson.JSONEncodeError is a TypeError
        raise EventLogError(f"record for topic {topic!r} is not JSON-compatible: {exc}") from exc
    return payload, headers


_headers_cache: tuple[dict[str, str] | None, bytes] = (None, b"")


def _encode_headers(headers: Mapping[str, str]) -> bytes:
    # Producers reuse the same headers for a whole session (the agent-event sink does), so the last
    # encoding is cached. The cache holds a copy and compares by value: a caller that mutates its
    # mapping between appends gets a fresh encoding, not the stale one.
    global _headers_cache
    cached, encoded = _headers_cache
    if cached is not None and cached == headers:
        return encoded
    snapshot = dict(headers)
    encoded = orjson.dumps(snapshot)  # orjson encodes dict exactly, not other mappings
    _headers_cache = (snapshot, encoded)
    return encoded


def acquire_writer_lock(path: str) -> int | None:
    """Take the exclusive lock on ``PATH.lock`` (created next to the database) or fail clearly."""
    if fcntl is None:  # pragma: no cover
        return None
    # The real path: two spellings of one file (a symlink, a relative path) must share the lock.
    lock_path = f"{os.path.realpath(path)}.lock"
    try:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise EventLogError(f"cannot open event log lock {lock_path}: {exc}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = ""
        with contextlib.suppress(OSError, ValueError):
            pid = int(os.pread(fd, 32, 0).decode().strip() or 0)
            holder = f" (pid {pid})" if pid else ""
        os.close(fd)
        raise EventLogError(
            f"event log {path} is already in use{holder}: one bridge (one SqliteEventLog) per "
            "log file; give this one its own --event-log, or connect to the running bridge"
        ) from None
    except OSError as exc:
        os.close(fd)
        raise EventLogError(f"cannot lock event log {path}: {exc}") from exc
    with contextlib.suppress(OSError):
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    return fd


def release_writer_lock(fd: int | None) -> None:
    """Release a lock taken by :func:`acquire_writer_lock`."""
    if fd is not None:
        with contextlib.suppress(OSError):
            os.close(fd)  # closing the descriptor releases the lock
