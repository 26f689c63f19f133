"""`acp-bridge log stats|compact` as an operator runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from acp_bridge.eventlog import LogRecord, SqliteEventLog


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "acp_bridge.cli.main", "log", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_stats_and_compact_on_a_file(tmp_path: Path) -> None:
    db = tmp_path / "events.db"
    log = SqliteEventLog(db)
    for i in range(10):
        log.append("observability.agent_events.s1", LogRecord("k", {"i": i}))
    log.close()
    stats = run("stats", "--event-log", f"sqlite:{db}?synchronous=full")
    assert stats.returncode == 0, stats.stderr
    assert "10 in 1 topics" in stats.stdout
    assert "observability.agent_events.s1  (ids 1-10)" in stats.stdout
    compact = run("compact", "--event-log", f"sqlite:{db}")
    assert compact.returncode == 0, compact.stderr
    assert compact.stdout.startswith(f"compacted {db}: ")


def test_operator_mistakes_are_one_line(tmp_path: Path) -> None:
    for args, message in [
        (("stats", "--event-log", "memory"), "only a sqlite:PATH event log has a file"),
        (("stats", "--event-log", f"sqlite:{tmp_path / 'none.db'}"), "no event log at"),
    ]:
        result = run(*args)
        assert result.returncode == 2
        assert result.stdout == ""
        assert result.stderr.count("\n") == 1
        assert message in result.stderr
        assert "Traceback" not in result.stderr
