"""Pruning (retention, deleted sessions): every backend that can forget old entries does it alike."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLog, LogRecord, Prunable, SqliteEventLog

from .eventlog_support import ids, rec


@pytest.fixture(params=["memory", "sqlite"])
def backend(request: pytest.FixtureRequest) -> str:
    """The logs that can prune (Redis keeps everything: retention is optional)."""
    return str(request.param)


@pytest.fixture
def prunable(log: EventLog) -> Prunable:
    assert isinstance(log, Prunable)
    return log


def checkpoint(log: SqliteEventLog) -> None:
    """Copy the WAL into the file (and truncate it), so the file's size says what it holds."""
    with closing(sqlite3.connect(log.path)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def fill(log: EventLog, topic: str, count: int) -> None:
    for i in range(count):
        log.append(topic, rec(i))
    log.flush()


def test_prune_forgets_the_oldest_entries_and_ids_go_on(log: EventLog, prunable: Prunable) -> None:
    fill(log, "a", 10)
    fill(log, "b", 3)
    assert prunable.prune("a", 6) == 6
    assert ids(log.read_range("a")) == [7, 8, 9, 10]
    assert ids(log.read_range("a", after=2, limit=2)) == [7, 8]  # from the first entry left
    assert ids(log.read_range("a", after=8)) == [9, 10]
    assert prunable.first_id("a") == 7
    assert log.latest("a") == 10
    assert log.append("a", rec(10)) == 11  # never reused
    assert ids(log.read_range("b")) == [1, 2, 3]  # other topics untouched
    assert prunable.prune("a", 6) == 0  # nothing left to prune there


def test_pruning_everything_keeps_the_head(log: EventLog, prunable: Prunable) -> None:
    fill(log, "a", 5)
    assert prunable.prune("a", 100) == 5
    assert log.read_range("a") == []
    assert prunable.first_id("a") is None
    assert log.latest("a") == 5
    assert log.append("a", rec(5)) == 6
    assert prunable.first_id("a") == 6


def test_a_subscriber_starts_at_the_first_entry_left(log: EventLog, prunable: Prunable) -> None:
    fill(log, "a", 6)
    prunable.prune("a", 4)

    async def first_two() -> list[int]:
        seen = []
        async with asyncio.timeout(5):
            async for entry in log.subscribe("a", after=1):
                seen.append(entry.id)
                if len(seen) == 2:
                    return seen
        return seen

    assert asyncio.run(first_two()) == [5, 6]


def test_pruned_entries_stay_gone_after_reopening(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = SqliteEventLog(path)
    fill(log, "a", 50)
    assert log.prune("a", 45) == 45
    log.close()
    again = SqliteEventLog(path)
    try:
        assert ids(again.read_range("a")) == [46, 47, 48, 49, 50]
        assert again.first_id("a") == 46
        assert again.append("a", rec(0)) == 51
    finally:
        again.close()


def test_pruning_gives_the_pages_back_to_the_file_system(tmp_path: Path) -> None:
    path = tmp_path / "log.db"
    log = SqliteEventLog(path)
    try:
        big = {"text": "x" * 2000}
        for _ in range(2000):
            log.append("a", LogRecord("chunk", big))
        log.flush()
        checkpoint(log)
        full = path.stat().st_size
        log.prune("a", 1990)
        checkpoint(log)
        assert path.stat().st_size < full / 10
        assert len(log.read_range("a")) == 10
    finally:
        log.close()


def test_prune_after_each_round_bounds_the_file(tmp_path: Path) -> None:
    """Retention's promise: a topic capped at N entries keeps the file from growing."""
    log = SqliteEventLog(tmp_path / "log.db")
    sizes = []
    payload = {"text": "y" * 500}
    for round_ in range(12):
        for _ in range(1000):
            log.append(f"s{round_ % 3}", LogRecord("chunk", payload))
        log.flush()
        for topic in ("s0", "s1", "s2"):
            head = log.latest(topic) or 0
            log.prune(topic, head - 500)
        checkpoint(log)
        sizes.append(Path(log.path).stat().st_size)
    log.close()
    assert max(sizes[4:]) <= sizes[3] * 1.1, sizes


def test_committed_rows_are_what_read_range_gives_without_records(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "log.db")
    try:
        for i in range(10):
            log.append("a", LogRecord("k", {"i": i}, {"h": "v"}))
        log.flush()
        log.prune("a", 3)
        rows = log.read_committed_rows("a", 0, 4)
        assert [(r[0], r[1], dict(r[2]), r[4]) for r in rows] == [
            (i, "k", {"h": "v"}, b'{"i":%d}' % (i - 1)) for i in range(4, 8)
        ]
        entries = log.read_range("a", after=7)
        assert [(r[0], r[3]) for r in log.read_committed_rows("a", 7, 100)] == [
            (e.id, e.record.occurred_at_ms) for e in entries
        ]
    finally:
        log.close()
