"""LogRecord: payload given as a value or as JSON bytes, each form produced from the other."""

from __future__ import annotations

from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLogError, LogRecord, MemoryEventLog, SqliteEventLog


def test_value_and_json_forms_are_equivalent() -> None:
    by_value = LogRecord("k", {"a": [1, 2]}, {"h": "v"}, 5)
    by_json = LogRecord.from_json("k", b'{"a":[1,2]}', {"h": "v"}, 5)
    assert by_value == by_json
    assert by_json.payload == {"a": [1, 2]}
    assert by_value.payload_json == b'{"a":[1,2]}'
    assert by_json.payload_json == b'{"a":[1,2]}'


def test_defaults() -> None:
    record = LogRecord("k", None)
    assert record.headers == {}
    assert record.occurred_at_ms > 0


def test_unserialisable_payload_raises_on_encoding() -> None:
    with pytest.raises(TypeError):
        _ = LogRecord("k", {"x": object()}).payload_json


@pytest.mark.parametrize("backend", ["memory", "sqlite"])
def test_json_payloads_read_back_decoded(backend: str, tmp_path: Path) -> None:
    log = MemoryEventLog() if backend == "memory" else SqliteEventLog(tmp_path / "l.sqlite")
    try:
        log.append("t", LogRecord.from_json("k", b'{"event":{"type":"x"}}'))
        log.flush()
        assert log.read_range("t")[0].record.payload == {"event": {"type": "x"}}
    finally:
        log.close()
    if backend == "sqlite":
        reopened = SqliteEventLog(tmp_path / "l.sqlite")
        try:
            assert reopened.read_range("t")[0].record.payload == {"event": {"type": "x"}}
        finally:
            reopened.close()


def test_sqlite_rejects_a_bad_payload_at_append(tmp_path: Path) -> None:
    log = SqliteEventLog(tmp_path / "l.sqlite")
    try:
        with pytest.raises(EventLogError):
            log.append("t", LogRecord("k", {1j}))
    finally:
        log.close()
