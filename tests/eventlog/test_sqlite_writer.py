"""The SQLite writer's batch inserts: multi-row statements, runs of one topic, and rollback."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLogError, LogRecord, SqliteEventLog, _sqlite_rows
from acp_bridge.eventlog._sqlite_rows import (
    MAX_ROWS_PER_INSERT,
    event_key,
    insert_rows,
    insert_run,
    rows_per_insert,
    statement_sizes,
)
from acp_bridge.eventlog.base import LogEntry
from acp_bridge.eventlog.sqlite import _write

from .eventlog_support import WriterGate

KINDS = ("chunk", "thought", "tool_call", "plan")


@pytest.mark.parametrize(
    ("count", "most", "sizes"),
    [
        (0, 256, []),
        (1, 256, [1]),
        (31, 256, [16, 8, 4, 2, 1]),
        (32, 256, [32]),
        (256, 256, [256]),
        (549, 256, [256, 256, 32, 4, 1]),
        (11, 4, [4, 4, 2, 1]),
    ],
)
def test_statement_sizes_are_powers_of_two_up_to_the_most(
    count: int, most: int, sizes: list[int]
) -> None:
    assert list(statement_sizes(count, most)) == sizes


def test_rows_per_insert_fits_the_parameter_limit() -> None:
    with closing(sqlite3.connect(":memory:")) as conn:
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # SQLite before 3.32
        assert rows_per_insert(conn) == MAX_ROWS_PER_INSERT == 64
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 200)
        assert rows_per_insert(conn) == 32
        conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 7)
        assert rows_per_insert(conn) == 1


def test_the_insert_statements_number_their_parameters() -> None:
    assert insert_rows(2).endswith("VALUES (?, ?, ?, ?, ?), (?, ?, ?, ?, ?)")
    assert insert_run(2).endswith("VALUES (?1, ?3, ?2, ?4, ?5), (?1 + 1, ?6, ?2, ?7, ?8)")
    assert insert_run(256).endswith("(?1 + 255, ?768, ?2, ?769, ?770)")


def record(n: int, headers: dict[str, str] | None) -> LogRecord:
    return LogRecord(KINDS[n * 7 % len(KINDS)], {"n": n}, headers, 1_700_000_000_000 + n)


# Each scenario: (topic, headers) of the n-th entry of a batch.
Scenario = Callable[[int], tuple[str, dict[str, str] | None]]
SCENARIOS: dict[str, Scenario] = {
    "one run": lambda n: ("s", {"session_id": "s"}),
    "one run without headers": lambda n: ("s", None),
    "one topic, headers vary": lambda n: ("s", {"session_id": "s", "turn": str(n // 100)}),
    "one topic, some without headers": lambda n: ("s", None if n % 3 else {"session_id": "s"}),
    "several topics": lambda n: (f"s{n % 3}", {"session_id": f"s{n % 3}"}),
    "one topic, then another": lambda n: ("a" if n < 300 else "b", {"session_id": "x"}),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("most", [4, 64, 256])
def test_a_batch_spanning_several_statements_is_stored_whole(
    db: Path, gate: WriterGate, monkeypatch: pytest.MonkeyPatch, scenario: str, most: int
) -> None:
    monkeypatch.setattr(_sqlite_rows, "MAX_ROWS_PER_INSERT", most)
    where = SCENARIOS[scenario]
    count = 549  # e.g. 8 x 64 + 32 + 4 + 1: several statements and a remainder
    expected: dict[str, list[tuple[int, str, dict[str, str], int, object]]] = {}
    log = SqliteEventLog(db)
    log._before_write = gate
    try:
        log.append("first", LogRecord("k", {}))  # held by the gate while the batch queues up
        assert gate.entered.wait(5)
        for n in range(count):
            topic, headers = where(n)
            r = record(n, headers)
            entry_id = log.append(topic, r)
            expected.setdefault(topic, []).append(
                (entry_id, r.kind, dict(headers or {}), r.occurred_at_ms, r.payload)
            )
        gate.release()
        log.flush()
        assert gate.batch_sizes == [1, count]
    finally:
        gate.release()
        log.close()

    log = SqliteEventLog(db)  # read back from the file, not from memory
    try:
        for topic, rows in expected.items():
            back = [
                (
                    e.id,
                    e.record.kind,
                    dict(e.record.headers),
                    e.record.occurred_at_ms,
                    e.record.payload,
                )
                for e in log.read_range(topic)
            ]
            assert back == rows
    finally:
        log.close()
    with closing(sqlite3.connect(db)) as conn:
        heads = dict(conn.execute("SELECT name, last_id FROM topics").fetchall())
        payload_types = conn.execute("SELECT DISTINCT typeof(payload) FROM events").fetchall()
    assert heads == {"first": 1} | {topic: rows[-1][0] for topic, rows in expected.items()}
    assert payload_types == [("blob",)]


def test_a_batch_failing_in_a_later_statement_leaves_nothing_of_it(
    db: Path, gate: WriterGate
) -> None:
    log = SqliteEventLog(db)
    try:
        for n in range(10):
            log.append("s", record(n, {"session_id": "s"}))
        log.flush()
        log._before_write = gate
        log.append("s", record(10, {"session_id": "s"}))  # id 11, held by the gate
        assert gate.entered.wait(5)
        for n in range(11, 11 + 300):  # ids 12..311: statements of 4 x 64, 32, 8 and 4 rows
            log.append("s", record(n, {"session_id": "s"}))
        with closing(sqlite3.connect(db)) as conn:
            # A row in the way of the batch's last statement, from somebody else.
            conn.execute("INSERT INTO events VALUES (?, 1, NULL, 0, x'00')", (event_key(1, 310),))
            conn.commit()
        gate.release()
        with pytest.raises(EventLogError, match="earlier write failed"):
            log.flush()
        assert log.failure is not None
        assert "UNIQUE constraint failed" in log.failure
    finally:
        gate.release()
        with pytest.raises(EventLogError):
            log.close()
    with closing(sqlite3.connect(db)) as conn:
        stored = [k - event_key(1, 0) for (k,) in conn.execute("SELECT event_key FROM events")]
        heads = conn.execute("SELECT name, last_id FROM topics").fetchall()
    assert stored == [*range(1, 12), 310]  # the batch before, the held one, the intruder
    assert heads == [("s", 11)]


def test_a_run_is_not_assumed_across_topics(db: Path) -> None:
    """Two topics whose ids happen to line up end to end are written as two topics."""
    log = SqliteEventLog(db)
    log.close()
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        atoms = _sqlite_rows.AtomWriter(conn)
        r = record(0, {"session_id": "x"})
        queued = [
            (LogEntry("a", 1, r), r.payload_json, b'{"session_id":"x"}'),
            (LogEntry("b", 2, r), r.payload_json, b'{"session_id":"x"}'),
        ]
        assert _write(conn, atoms, queued) == {"a": 1, "b": 2}
        assert dict(conn.execute("SELECT name, last_id FROM topics").fetchall()) == {
            "a": 1,
            "b": 2,
        }
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 2
