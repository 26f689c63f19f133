"""Behaviour specific to SqliteEventLog: durability, group commit, the writer thread."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
from contextlib import closing
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLogClosed, EventLogError, LogRecord, SqliteEventLog
from acp_bridge.eventlog.sqlite import SCHEMA_VERSION

from .eventlog_support import WriterGate, ids, rec, subscription


def stored_rows(db: Path, topic: str = "t") -> list[tuple[int, bytes]]:
    """What a separate connection, e.g. another process, finds in the file."""
    with closing(sqlite3.connect(db)) as conn:
        return conn.execute(
            "SELECT event_key & ((1 << 40) - 1), payload FROM events"
            " JOIN topics ON event_key >> 40 = topic_id WHERE name = ? ORDER BY event_key",
            (topic,),
        ).fetchall()


def stored_heads(db: Path) -> dict[str, int]:
    with closing(sqlite3.connect(db)) as conn:
        return dict(conn.execute("SELECT name, last_id FROM topics").fetchall())


def held(log: SqliteEventLog, gate: WriterGate) -> SqliteEventLog:
    """Make the writer block before each batch until the gate is released."""
    log._before_write = gate
    return log


def test_reopening_continues_every_topic(db: Path) -> None:
    log = SqliteEventLog(db)
    for i in range(5):
        log.append("a", rec(i))
    log.append("b", LogRecord("k", {"x": [1, 2]}, {"h": "v"}, 42))
    log.close()

    log = SqliteEventLog(db)
    try:
        assert log.topics() == ["a", "b"]
        assert (log.latest("a"), log.latest("b")) == (5, 1)
        assert log.append("a", rec(5)) == 6
        assert log.append("b", rec(0)) == 2
        assert log.append("c", rec(0)) == 1
        assert [e.record.payload["i"] for e in log.read_range("a")] == list(range(6))
        assert log.read_range("b")[0].record == LogRecord("k", {"x": [1, 2]}, {"h": "v"}, 42)
    finally:
        log.close()

    log = SqliteEventLog(db)
    try:
        assert ids(log.read_range("a")) == [1, 2, 3, 4, 5, 6]
        assert (log.latest("b"), log.latest("c")) == (2, 1)
    finally:
        log.close()


async def test_a_reopened_log_replays_history_to_subscribers(db: Path) -> None:
    log = SqliteEventLog(db)
    for i in range(2_500):  # several pages
        log.append("t", rec(i))
    log.close()
    log = SqliteEventLog(db)
    try:
        async with asyncio.timeout(5), subscription(log, "t", after=10) as entries:
            got = []
            async for entry in entries:
                got.append(entry)
                if entry.id == 2_500:
                    log.append("t", rec(2_500))
                if entry.id == 2_501:
                    break
        assert ids(got) == list(range(11, 2_502))
        assert [e.record.payload["i"] for e in got] == list(range(10, 2_501))
    finally:
        log.close()


def test_close_commits_what_was_never_flushed(db: Path) -> None:
    log = SqliteEventLog(db)
    for i in range(1_000):
        log.append("t", rec(i))
    log.close()
    assert [row[0] for row in stored_rows(db)] == list(range(1, 1_001))
    assert stored_heads(db) == {"t": 1_000}


def test_flush_makes_appends_visible_to_another_connection(db: Path) -> None:
    log = SqliteEventLog(db)
    try:
        for i in range(3):
            log.append("t", rec(i))
        log.flush()
        assert stored_rows(db) == [(1, b'{"i":0}'), (2, b'{"i":1}'), (3, b'{"i":2}')]
        assert stored_heads(db) == {"t": 3}
    finally:
        log.close()


async def test_aflush_makes_appends_visible_to_another_connection(db: Path) -> None:
    log = SqliteEventLog(db)
    try:
        for i in range(3):
            log.append("t", rec(i))
        async with asyncio.timeout(5):
            await log.aflush()
        assert len(stored_rows(db)) == 3
    finally:
        log.close()


def test_uncommitted_entries_are_readable_at_once(db: Path, gate: WriterGate) -> None:
    log = held(SqliteEventLog(db), gate)
    try:
        for i in range(5):
            assert log.append("t", rec(i)) == i + 1
            # Read-your-writes, whether the entry is queued or in the writer's hands.
            assert ids(log.read_range("t")) == list(range(1, i + 2))
        assert gate.entered.wait(5)
        assert stored_rows(db) == []
        assert log.latest("t") == 5
        assert log.topics() == ["t"]
        assert ids(log.read_range("t", after=2, limit=2)) == [3, 4]
        assert log.read_range("t")[4].record == rec(4)
        gate.release()
        log.flush()
        assert len(stored_rows(db)) == 5
    finally:
        gate.release()
        log.close()


def test_reads_merge_committed_and_uncommitted_entries(db: Path, gate: WriterGate) -> None:
    log = SqliteEventLog(db)
    try:
        for i in range(5):
            log.append("t", rec(i))
        log.flush()
        held(log, gate)
        for i in range(5, 10):
            log.append("t", rec(i))
        assert gate.entered.wait(5)
        assert ids(log.read_range("t")) == list(range(1, 11))
        assert ids(log.read_range("t", after=3, limit=4)) == [4, 5, 6, 7]
        assert ids(log.read_range("t", after=5, limit=2)) == [6, 7]
        assert ids(log.read_range("t", after=1, limit=2)) == [2, 3]
        assert [e.record.payload["i"] for e in log.read_range("t")] == list(range(10))
        assert len(stored_rows(db)) == 5
    finally:
        gate.release()
        log.close()


def test_a_burst_is_committed_in_few_transactions(db: Path, gate: WriterGate) -> None:
    log = held(SqliteEventLog(db), gate)
    try:
        log.append("t", rec(0))
        assert gate.entered.wait(5)
        for i in range(1, 1_000):
            log.append("t", rec(i))
        gate.release()
        log.flush()
        assert gate.batch_sizes == [1, 999]
    finally:
        gate.release()
        log.close()


def test_append_blocks_when_too_many_entries_are_pending(db: Path, gate: WriterGate) -> None:
    log = held(SqliteEventLog(db, max_pending=3), gate)
    try:
        for i in range(3):
            log.append("t", rec(i))
        assert gate.entered.wait(5)
        appended: list[int] = []
        blocked = threading.Thread(target=lambda: appended.append(log.append("t", rec(3))))
        blocked.start()
        blocked.join(0.2)  # only shows that it is still blocked, doesn't synchronise anything
        assert blocked.is_alive()
        assert appended == []
        gate.release()
        blocked.join(5)
        assert not blocked.is_alive()
        assert appended == [4]
        log.flush()
        assert len(stored_rows(db)) == 4
    finally:
        gate.release()
        log.close()


def test_close_wakes_an_append_blocked_by_backpressure(db: Path, gate: WriterGate) -> None:
    log = held(SqliteEventLog(db, max_pending=1), gate)
    log.append("t", rec(0))
    assert gate.entered.wait(5)
    errors: list[BaseException] = []

    def append() -> None:
        try:
            log.append("t", rec(1))
        except EventLogClosed as exc:
            errors.append(exc)

    blocked = threading.Thread(target=append)
    blocked.start()
    closer = threading.Thread(target=log.close)
    closer.start()
    blocked.join(5)
    assert not blocked.is_alive()
    assert len(errors) == 1
    gate.release()
    closer.join(5)
    assert not closer.is_alive()
    assert [row[0] for row in stored_rows(db)] == [1]


def test_a_write_error_is_latched(db: Path) -> None:
    log = SqliteEventLog(db)
    log.append("t", rec(0))
    log.flush()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TABLE events")
    log.append("t", rec(1))
    with pytest.raises(EventLogError, match="earlier write failed") as raised:
        log.flush()
    assert isinstance(raised.value.__cause__, sqlite3.OperationalError)
    with pytest.raises(EventLogError, match="earlier write failed"):
        log.flush()
    with pytest.raises(EventLogError, match="earlier write failed"):
        log.append("t", rec(2))
    # The entries that were accepted stay readable; the file just doesn't get them.
    assert ids(log.read_range("t", after=1)) == [2]
    with pytest.raises(EventLogError, match="earlier write failed"):
        log.close()
    log.close()  # the second close has nothing more to say
    with pytest.raises(EventLogClosed):
        log.append("t", rec(3))


async def test_a_write_error_surfaces_in_aflush(db: Path) -> None:
    log = SqliteEventLog(db)

    def fail(batch: object) -> None:
        raise OSError("disk on fire")

    log._before_write = fail
    assert log.failure is None
    log.append("t", rec(0))
    try:
        with pytest.raises(EventLogError, match="disk on fire") as raised:
            async with asyncio.timeout(5):
                await log.aflush()
        assert isinstance(raised.value.__cause__, OSError)
        assert log.failure == "OSError: disk on fire"  # what /healthz reports
    finally:
        with pytest.raises(EventLogError):
            log.close()


async def test_aflush_waiting_when_the_writer_fails_raises(db: Path, gate: WriterGate) -> None:
    log = SqliteEventLog(db)

    def fail_after_gate(batch: object) -> None:
        gate(batch)  # type: ignore[arg-type]
        raise OSError("disk on fire")

    log._before_write = fail_after_gate
    log.append("t", rec(0))
    try:
        flushing = asyncio.create_task(log.aflush())
        assert await asyncio.to_thread(gate.entered.wait, 5)
        gate.release()
        with pytest.raises(EventLogError, match="disk on fire"):
            async with asyncio.timeout(5):
                await flushing
    finally:
        with pytest.raises(EventLogError):
            log.close()


def test_a_payload_that_is_not_json_fails_only_its_own_append(db: Path) -> None:
    log = SqliteEventLog(db)
    try:
        log.append("t", rec(0))
        with pytest.raises(EventLogError, match=r"topic 't' is not JSON-compatible"):
            log.append("t", LogRecord("k", {"not json": object()}))
        # The bad record took no id and did not poison the log.
        assert log.append("t", rec(1)) == 2
        log.flush()
        assert [e.id for e in log.read_range("t")] == [1, 2]
        assert len(stored_rows(db)) == 2
    finally:
        log.close()


def test_json_round_trip_of_stored_payloads(db: Path) -> None:
    log = SqliteEventLog(db)
    try:
        log.append("t", LogRecord("k", {"tuple": (1, 2)}, {"a": "b"}))
        log.flush()
        assert log.read_range("t")[0].record.payload == {"tuple": [1, 2]}
    finally:
        log.close()


def test_the_file_uses_wal_and_records_its_schema_version(db: Path) -> None:
    SqliteEventLog(db, synchronous="FULL").close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_an_unknown_schema_version_is_refused(db: Path) -> None:
    SqliteEventLog(db).close()
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA user_version = 99")
    with pytest.raises(EventLogError, match="unsupported event log schema version 99"):
        SqliteEventLog(db)


def test_a_foreign_database_is_refused(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE events (x)")
    with pytest.raises(EventLogError, match="already exists"):
        SqliteEventLog(db)


def test_a_file_that_is_not_a_database_is_refused(db: Path) -> None:
    db.write_bytes(b"this is not a database, " * 100)
    with pytest.raises(EventLogError, match="cannot open event log"):
        SqliteEventLog(db)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"synchronous": "OFF"}, "synchronous"),
        ({"max_pending": 0}, "max_pending"),
        ({"live_queue_size": 0}, "queue_size"),
    ],
)
def test_invalid_settings_are_refused(db: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SqliteEventLog(db, **kwargs)  # type: ignore[arg-type]
    assert not db.exists()


@pytest.mark.parametrize("path", ["", ":memory:"])
def test_an_in_memory_database_is_refused(path: str) -> None:
    with pytest.raises(ValueError, match="MemoryEventLog"):
        SqliteEventLog(path)


def test_repr_and_path(db: Path) -> None:
    log = SqliteEventLog(db)
    assert log.path == str(db)
    assert repr(log) == f"<SqliteEventLog {str(db)!r}>"
    log.close()
    assert repr(log).endswith(" closed>")


def test_a_trickle_of_appends_is_committed_in_few_transactions(db: Path) -> None:
    batches: list[int] = []
    log = SqliteEventLog(db, commit_window=0.05)
    log._before_write = lambda batch: batches.append(len(batch))
    try:
        for i in range(20):
            log.append("t", rec(i))
        log.flush()  # a flush cuts the window short instead of waiting it out
        assert sum(batches) == 20
        assert len(batches) <= 3
    finally:
        log.close()


def test_commit_window_zero_commits_as_soon_as_possible(db: Path) -> None:
    log = SqliteEventLog(db, commit_window=0)
    try:
        log.append("t", rec(0))
        log.flush()
        assert log.read_range("t")[0].id == 1
    finally:
        log.close()
    with pytest.raises(ValueError, match="commit_window"):
        SqliteEventLog(db, commit_window=-1)


def test_one_instance_per_file(db: Path) -> None:
    first = SqliteEventLog(db)
    try:
        with pytest.raises(EventLogError, match=rf"already in use \(pid {os.getpid()}\)"):
            SqliteEventLog(db)
        first.append("t", rec(0))  # the refused second instance left the first one alone
    finally:
        first.close()
    second = SqliteEventLog(db)  # closing released the lock
    try:
        assert second.latest("t") == 1
    finally:
        second.close()


def test_another_process_cannot_open_the_file_while_we_hold_it(db: Path) -> None:
    holder = SqliteEventLog(db)
    try:
        probe = (
            "import sys\n"
            "from acp_bridge.eventlog import EventLogError, SqliteEventLog\n"
            "try:\n"
            "    SqliteEventLog(sys.argv[1]).close()\n"
            "except EventLogError as exc:\n"
            "    print(exc)\n"
            "    sys.exit(3)\n"
        )
        result = subprocess.run(
            [sys.executable, "-c", probe, str(db)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    finally:
        holder.close()
    assert result.returncode == 3, result.stderr
    assert f"already in use (pid {os.getpid()})" in result.stdout


def test_headers_mutated_between_appends_are_stored_as_they_were(db: Path) -> None:
    log = SqliteEventLog(db)
    headers = {"session": "a"}
    log.append("t", LogRecord("k", {}, headers))
    headers["session"] = "b"  # the same mapping, changed
    log.append("t", LogRecord("k", {}, headers))
    log.close()
    log = SqliteEventLog(db)
    try:
        assert [e.record.headers for e in log.read_range("t")] == [
            {"session": "a"},
            {"session": "b"},
        ]
    finally:
        log.close()


def test_a_symlink_to_the_file_shares_its_lock(db: Path, tmp_path: Path) -> None:
    first = SqliteEventLog(db)
    alias = tmp_path / "alias.db"
    alias.symlink_to(db)
    try:
        with pytest.raises(EventLogError, match="already in use"):
            SqliteEventLog(alias)
    finally:
        first.close()


def test_checkpoints_run_off_the_commit_path_and_keep_the_wal_bounded(db: Path) -> None:
    # The writer never checkpoints (that stalled the commits behind it); a thread of its own
    # does, every CHECKPOINT_BYTES of payload, so the WAL is reused instead of growing.
    from acp_bridge.eventlog.sqlite import CHECKPOINT_BYTES

    log = SqliteEventLog(db)
    payload = "x" * 4000
    per_round = CHECKPOINT_BYTES // len(payload) + 1
    wal = Path(f"{db}-wal")
    sizes = []
    try:
        for r in range(6):
            before = log._checkpoints
            for i in range(per_round):
                log.append("t", LogRecord("k", {"p": payload, "i": i}))
            log.flush()
            with log._checkpointed:
                done = log._checkpointed.wait_for(lambda b=before: log._checkpoints > b, 5)
            assert done, f"round {r}: no checkpoint"
            sizes.append(wal.stat().st_size)
        # Without checkpoints the WAL would hold every round's pages (> 6 x CHECKPOINT_BYTES).
        assert max(sizes) < 3 * CHECKPOINT_BYTES, sizes
        assert log.committed("t") == 6 * per_round
    finally:
        log.close()


_VERSION_1 = (
    "CREATE TABLE events (topic TEXT NOT NULL, event_id INTEGER NOT NULL, kind TEXT NOT NULL,"
    " payload BLOB NOT NULL, headers BLOB, occurred_at_ms INTEGER NOT NULL,"
    " PRIMARY KEY (topic, event_id)) WITHOUT ROWID",
    "CREATE TABLE topic_heads (topic TEXT NOT NULL PRIMARY KEY, last_id INTEGER NOT NULL)"
    " WITHOUT ROWID",
    "PRAGMA user_version = 1",
)


def test_a_version_1_file_is_upgraded_in_place(db: Path) -> None:
    with closing(sqlite3.connect(db)) as conn:
        for statement in _VERSION_1:
            conn.execute(statement)
        conn.executemany(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?, ?)",
            [
                ("a", 1, "k1", b'{"n":1}', b'{"session_id":"s"}', 10),
                ("a", 2, "k2", b'{"n":2}', None, 20),
                ("b", 1, "k1", b"[3]", b'{"session_id":"s"}', 30),
            ],
        )
        conn.executemany("INSERT INTO topic_heads VALUES (?, ?)", [("a", 2), ("b", 1)])
        conn.commit()
    log = SqliteEventLog(db)
    try:
        a = log.read_range("a")
        assert [(e.id, e.record.kind, e.record.payload, dict(e.record.headers)) for e in a] == [
            (1, "k1", {"n": 1}, {"session_id": "s"}),
            (2, "k2", {"n": 2}, {}),
        ]
        assert [e.record.occurred_at_ms for e in a] == [10, 20]
        assert log.read_range("b")[0].record.payload == [3]
        assert log.append("a", rec(3)) == 3  # heads carried over
        log.flush()
    finally:
        log.close()
    with closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert tables == {"topics", "atoms", "events"}


def test_kinds_headers_and_topics_are_stored_once(db: Path) -> None:
    log = SqliteEventLog(db)
    try:
        for n in range(50):
            for topic in ("a", "b"):
                log.append(topic, LogRecord("chunk" if n % 2 else "plan", {"n": n}, {"s": topic}))
        log.flush()
    finally:
        log.close()
    log = SqliteEventLog(db)  # read back from the file, not from memory
    try:
        back = log.read_range("b", after=47)
        # ids 48..50 are n = 47..49
        assert [(e.record.kind, dict(e.record.headers), e.record.payload) for e in back] == [
            ("chunk", {"s": "b"}, {"n": 47}),
            ("plan", {"s": "b"}, {"n": 48}),
            ("chunk", {"s": "b"}, {"n": 49}),
        ]
    finally:
        log.close()
    with closing(sqlite3.connect(db)) as conn:
        atoms = sorted(bytes(r[0]) for r in conn.execute("SELECT value FROM atoms"))
        topics = conn.execute("SELECT name, last_id FROM topics ORDER BY name").fetchall()
    assert atoms == sorted([b"chunk", b"plan", b'{"s":"a"}', b'{"s":"b"}'])
    assert topics == [("a", 50), ("b", 50)]
