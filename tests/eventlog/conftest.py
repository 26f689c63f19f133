"""Fixtures shared by the event log tests: fresh logs of each backend."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.eventlog import EventLog, EventLogError

from .eventlog_support import BACKENDS, MakeLog, WriterGate, new_log


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_log(backend: str, tmp_path: Path) -> Iterator[MakeLog]:
    """Build logs of the parametrised backend, each in its own directory; close them afterwards."""
    logs: list[EventLog] = []

    def make(**kwargs: Any) -> EventLog:
        directory = tmp_path / f"log{len(logs)}"
        directory.mkdir()
        log = new_log(backend, directory, **kwargs)
        logs.append(log)
        return log

    yield make
    for log in logs:
        # Tests about write errors close their log themselves; a second close doesn't raise.
        try:
            log.close()
        except EventLogError:
            pytest.fail("a log closed by the fixture reported a write error")


@pytest.fixture
def log(make_log: MakeLog) -> EventLog:
    return make_log()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a SQLite event log under test lives."""
    return tmp_path / "events.db"


@pytest.fixture
def gate() -> Iterator[WriterGate]:
    """Holds the SQLite writer thread before its next batch until released."""
    gate = WriterGate()
    yield gate
    gate.release()  # never leave the writer stuck, whatever the test did
