"""`sqlite_stats` and `compact_sqlite`: what an operator learns about, and does to, a log file."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLogError, LogRecord, SqliteEventLog
from acp_bridge.eventlog.sqlite_maintenance import compact_sqlite, sqlite_stats


def filled(db: Path, counts: dict[str, int]) -> None:
    log = SqliteEventLog(db)
    try:
        for topic, count in counts.items():
            for i in range(count):
                log.append(topic, LogRecord("k", {"i": i, "pad": "x" * 200}, {"s": topic}))
    finally:
        log.close()


def test_stats_count_entries_per_topic_and_bytes_per_entry(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    filled(db, {"a": 300, "b": 20})
    stats = sqlite_stats(db)
    assert stats.entries == 320
    assert {(t.name, t.entries, t.first_id, t.last_id) for t in stats.topics} == {
        ("a", 300, 1, 300),
        ("b", 20, 1, 20),
    }
    assert stats.bytes_per_entry is not None
    assert 200 < stats.bytes_per_entry < 400
    text = stats.render(top=1)
    assert "320 in 2 topics" in text
    assert "       300  a  (ids 1-300)" in text
    assert "  b  " not in text


def test_stats_can_be_read_while_a_bridge_writes_the_file(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    try:
        log.append("a", LogRecord("k", {}))
        log.flush()
        assert sqlite_stats(db).entries == 1
    finally:
        log.close()


def test_compact_gives_freed_pages_back_and_keeps_every_entry(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    filled(db, {"a": 2_000, "b": 50})
    with closing(sqlite3.connect(db)) as conn:  # what a retention pass leaves behind
        conn.execute(
            "DELETE FROM events WHERE event_key >> 40 = 1 AND event_key & 1099511627775 <= 1900"
        )
        conn.commit()
    stale = sqlite_stats(db)
    assert stale.free_pages > 50
    before, after = compact_sqlite(db)
    assert after < before / 3
    stats = sqlite_stats(db)
    assert stats.free_pages == 0
    assert {(t.name, t.entries, t.first_id) for t in stats.topics} == {
        ("a", 100, 1901),
        ("b", 50, 1),
    }
    log = SqliteEventLog(db)
    try:
        assert [e.id for e in log.read_range("a", after=1900)][:2] == [1901, 1902]
        assert log.append("a", LogRecord("k", {})) == 2_001  # ids go on; none is handed out again
    finally:
        log.close()


def test_compact_refuses_while_a_bridge_has_the_file(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    try:
        with pytest.raises(EventLogError, match="already in use"):
            compact_sqlite(db)
    finally:
        log.close()


def test_a_missing_or_foreign_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EventLogError, match="no event log at"):
        sqlite_stats(tmp_path / "nope.db")
    foreign = tmp_path / "foreign.db"
    with closing(sqlite3.connect(foreign)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    with pytest.raises(EventLogError, match="schema version 0"):
        sqlite_stats(foreign)
