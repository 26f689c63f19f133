"""The SQLite event log's file format: tables, the upgrade from older versions, and the row codec.

A row holds only what differs from event to event. Topic names, record kinds and header sets repeat
on every row of a session, so they are stored once (``topics``, ``atoms``) and rows refer to them by
integer id: a row is ``(event_key, kind_id, headers_id, occurred_at_ms, payload)``, where the rowid
``event_key`` packs the topic's id and the event's id (see :func:`event_key`).

Version history (``PRAGMA user_version``):

1. ``events(topic, event_id, kind, payload, headers, occurred_at_ms)`` and ``topic_heads``: every
   row repeated its topic name, kind and header JSON (about 120 of its 511 bytes per event).
2. The layout above. Version 1 files are upgraded in place, in one transaction, when opened.
"""

from __future__ import annotations

import functools
import sqlite3
from collections.abc import Iterator, Mapping
from typing import Any, Final

import orjson

from .base import EventLogError

__all__ = [
    "DELETE_EVENTS",
    "EVENT_ID_BITS",
    "MAX_EVENT_ID",
    "MAX_ROWS_PER_INSERT",
    "SCHEMA_VERSION",
    "SELECT_FIRST_KEY",
    "AtomReader",
    "AtomWriter",
    "ensure_schema",
    "event_key",
    "insert_rows",
    "insert_run",
    "rows_per_insert",
    "statement_sizes",
]

SCHEMA_VERSION: Final = 2
"""Stored in ``PRAGMA user_version``; bumped whenever the tables change incompatibly."""

_CREATE_TOPICS = """
    CREATE TABLE topics (
        topic_id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        last_id INTEGER NOT NULL
    )
"""
_CREATE_ATOMS = """
    CREATE TABLE atoms (
        atom_id INTEGER PRIMARY KEY,
        value BLOB NOT NULL UNIQUE
    )
"""
_CREATE_EVENTS = """
    CREATE TABLE {name} (
        event_key INTEGER PRIMARY KEY,
        kind_id INTEGER NOT NULL,
        headers_id INTEGER,
        occurred_at_ms INTEGER NOT NULL,
        payload BLOB NOT NULL
    )
"""

EVENT_ID_BITS: Final = 40
"""An event's row key is ``topic_id << EVENT_ID_BITS | event_id``: a plain rowid table, whose inner
pages hold only integers (a two-column primary key copied whole rows into them)."""
MAX_EVENT_ID: Final = (1 << EVENT_ID_BITS) - 1
MAX_TOPICS: Final = (1 << (63 - EVENT_ID_BITS)) - 1

# OR ROLLBACK: a failing row undoes the whole transaction, which the writer does on any error
# anyway. With the default (ABORT), SQLite keeps a statement journal so that it can undo just the
# failing statement, copying each page a multi-row INSERT touches: with the rows of 16 sessions in
# one batch, that made it slower than a statement per row (measured 245 us per 32 rows, 169 without).
_INSERT_INTO_EVENTS: Final = (
    "INSERT OR ROLLBACK INTO events (event_key, kind_id, headers_id, occurred_at_ms, payload)"
    " VALUES "
)
MAX_ROWS_PER_INSERT: Final = 64
"""Most rows one multi-row INSERT carries (a power of two; see :func:`statement_sizes`). The
prepared statements for 1 to 64 rows take about 180 KiB on the writer's connection, those up to 256
rows 640 KiB, for 1-5 % less writer CPU at 512 rows per commit."""
UPDATE_HEAD: Final = "UPDATE topics SET last_id = ? WHERE topic_id = ?"
SELECT_EVENTS: Final = (
    "SELECT event_key, kind_id, headers_id, occurred_at_ms, payload FROM events"
    " WHERE event_key > ? AND event_key <= ? ORDER BY event_key LIMIT ?"
)


def event_key(topic_id: int, event_id: int) -> int:
    """The row key of ``event_id`` in topic ``topic_id``."""
    return topic_id << EVENT_ID_BITS | event_id


@functools.cache
def insert_rows(count: int) -> str:
    """An INSERT of ``count`` rows, each bound as ``(event_key, kind_id, headers_id, at, payload)``.

    One statement for many rows instead of ``executemany``: SQLite keeps its cursor at the end of
    the table between rows (an append skips the descent from the root), and the statement is
    stepped, reset and checked once instead of once per row.
    """
    return _INSERT_INTO_EVENTS + ", ".join(["(?, ?, ?, ?, ?)"] * count)


@functools.cache
def insert_run(count: int) -> str:
    """An INSERT of ``count`` rows of one topic with consecutive ids and one header set.

    Parameters: ``?1`` the first row's event key, ``?2`` the headers id (may be NULL), then
    ``(kind_id, occurred_at_ms, payload)`` per row; row ``i`` gets the key ``?1 + i``. Binding three
    values per row instead of five is most of what a row costs beyond SQLite's own work.
    """
    rows = (
        f"(?1{f' + {i}' if i else ''}, ?{3 * i + 3}, ?2, ?{3 * i + 4}, ?{3 * i + 5})"
        for i in range(count)
    )
    return _INSERT_INTO_EVENTS + ", ".join(rows)


def rows_per_insert(conn: sqlite3.Connection) -> int:
    """The most rows :func:`insert_rows` may carry on ``conn``: a power of two up to
    :data:`MAX_ROWS_PER_INSERT`, lowered to fit SQLite's limit on bound parameters (999 before
    SQLite 3.32)."""
    limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    rows = MAX_ROWS_PER_INSERT
    while rows > 1 and rows * 5 > limit:
        rows //= 2
    return rows


def statement_sizes(count: int, most: int) -> Iterator[int]:
    """Split ``count`` rows into statements of powers of two up to ``most`` (a power of two).

    Few distinct statements, so each is prepared once and then found in the connection's statement
    cache; a batch takes one statement per bit set in its size (``count % most``) plus one per
    ``most`` rows.
    """
    while count:
        size = most if count >= most else 1 << (count.bit_length() - 1)
        yield size
        count -= size


SELECT_HEADS: Final = "SELECT name, last_id FROM topics"
SELECT_FIRST_KEY: Final = "SELECT MIN(event_key) FROM events WHERE event_key > ? AND event_key <= ?"
DELETE_EVENTS: Final = "DELETE FROM events WHERE event_key > ? AND event_key <= ?"

_UPGRADE_FROM_1 = (
    _CREATE_TOPICS,
    _CREATE_ATOMS,
    _CREATE_EVENTS.format(name="events_v2"),
    "INSERT INTO topics (name, last_id) SELECT topic, last_id FROM topic_heads",
    "INSERT OR IGNORE INTO atoms (value) SELECT DISTINCT CAST(kind AS BLOB) FROM events",
    "INSERT OR IGNORE INTO atoms (value)"
    " SELECT DISTINCT headers FROM events WHERE headers IS NOT NULL",
    "INSERT INTO events_v2"
    f" SELECT (t.topic_id << {EVENT_ID_BITS}) | e.event_id,"
    " k.atom_id, h.atom_id, e.occurred_at_ms, e.payload"
    " FROM events AS e"
    " JOIN topics AS t ON t.name = e.topic"
    " JOIN atoms AS k ON k.value = CAST(e.kind AS BLOB)"
    " LEFT JOIN atoms AS h ON h.value = e.headers",
    "DROP TABLE events",
    "DROP TABLE topic_heads",
    "ALTER TABLE events_v2 RENAME TO events",
)


def ensure_schema(conn: sqlite3.Connection, path: str) -> None:
    """Create the tables in a new file, upgrade an older one, refuse what this code can't read."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        if version == 0:
            # Plain CREATE TABLE, so a file that has such tables without being ours fails.
            for statement in (_CREATE_TOPICS, _CREATE_ATOMS, _CREATE_EVENTS.format(name="events")):
                conn.execute(statement)
        elif version == 1:
            for statement in _UPGRADE_FROM_1:
                conn.execute(statement)
        elif version != SCHEMA_VERSION:
            raise EventLogError(
                f"{path}: unsupported event log schema version {version}"
                f" (this version reads {SCHEMA_VERSION})"
            )
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class AtomWriter:
    """The writer thread's ids for topic names and atoms (kinds, header sets), created on first use.

    Call only inside the writer's transaction. An id created in a transaction that then fails is
    remembered wrongly, but a failed write latches the log, so nothing uses this writer again.
    """

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._topics: dict[str, int] = dict(conn.execute("SELECT name, topic_id FROM topics"))
        self._atoms: dict[bytes, int] = {
            bytes(value): atom_id
            for atom_id, value in conn.execute("SELECT atom_id, value FROM atoms")
        }
        self.kind_ids: dict[str, int] = {}
        """Kinds looked up so far, by name (read-only for callers; :meth:`kind_id` fills it)."""
        self.rows_per_insert = rows_per_insert(conn)
        """The most rows one multi-row INSERT may carry on this connection."""

    def topic_id(self, name: str) -> int:
        """The id of topic ``name``, adding the topic (with head 0) if it is new."""
        topic_id = self._topics.get(name)
        if topic_id is None:
            cursor = self._conn.execute("INSERT INTO topics (name, last_id) VALUES (?, 0)", (name,))
            topic_id = self._topics[name] = int(cursor.lastrowid or 0)
            if topic_id > MAX_TOPICS:
                raise EventLogError(f"the event log holds its maximum of {MAX_TOPICS} topics")
        return topic_id

    def atom_id(self, value: bytes) -> int:
        """The id of ``value`` in ``atoms``, adding it if it is new."""
        atom_id = self._atoms.get(value)
        if atom_id is None:
            cursor = self._conn.execute("INSERT INTO atoms (value) VALUES (?)", (value,))
            atom_id = self._atoms[value] = int(cursor.lastrowid or 0)
        return atom_id

    def kind_id(self, kind: str) -> int:
        """The atom id of record kind ``kind``, adding it if it is new."""
        kind_id = self.kind_ids.get(kind)
        if kind_id is None:
            kind_id = self.kind_ids[kind] = self.atom_id(kind.encode())
        return kind_id


class AtomReader:
    """A reader's view of topic ids and atoms, cached: both are never changed once written."""

    def __init__(self) -> None:
        self._topics: dict[str, int] = {}
        self.kinds: dict[int, str] = {}
        """Kinds read so far, by atom id (read-only for callers; :meth:`kind` fills it)."""
        self.header_sets: dict[int, Mapping[str, Any]] = {}
        """Header sets read so far, by atom id (read-only for callers: copy before handing out)."""

    def topic_id(self, conn: sqlite3.Connection, name: str) -> int | None:
        """The id of topic ``name``, or ``None`` if the file doesn't have it (yet)."""
        topic_id = self._topics.get(name)
        if topic_id is None:
            row = conn.execute("SELECT topic_id FROM topics WHERE name = ?", (name,)).fetchone()
            if row is None:
                return None
            topic_id = self._topics[name] = int(row[0])
        return topic_id

    def kind(self, conn: sqlite3.Connection, atom_id: int) -> str:
        """The record kind stored as ``atom_id``."""
        kind = self.kinds.get(atom_id)
        if kind is None:
            kind = self.kinds[atom_id] = bytes(self._value(conn, atom_id)).decode()
        return kind

    def headers(self, conn: sqlite3.Connection, atom_id: int | None) -> dict[str, Any]:
        """A fresh copy of the header set stored as ``atom_id`` (empty for ``None``)."""
        if atom_id is None:
            return {}
        headers = self.header_sets.get(atom_id)
        if headers is None:
            headers = self.header_sets[atom_id] = orjson.loads(self._value(conn, atom_id))
        return dict(headers)

    def shared_headers(self, conn: sqlite3.Connection, atom_id: int) -> Mapping[str, Any]:
        """The header set stored as ``atom_id``, the cached mapping itself (never change it)."""
        self.headers(conn, atom_id)
        return self.header_sets[atom_id]

    @staticmethod
    def _value(conn: sqlite3.Connection, atom_id: int) -> bytes:
        row = conn.execute("SELECT value FROM atoms WHERE atom_id = ?", (atom_id,)).fetchone()
        if row is None:
            raise EventLogError(f"the event log's atom {atom_id} is missing")
        return bytes(row[0])
