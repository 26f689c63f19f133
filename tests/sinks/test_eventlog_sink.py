"""EventLogSink: Harn's record format, topic sanitising, emit order, ids, failures."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from acp_bridge.eventlog import EventLog, LogRecord, MemoryEventLog, SqliteEventLog
from acp_bridge.events import harn as h
from acp_bridge.events import parse_event
from acp_bridge.events.harn import AgentEventBase
from acp_bridge.sinks import EventLogSink, SinkRegistry, agent_events_topic


@pytest.fixture(params=["memory", "sqlite"])
def log(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[EventLog]:
    opened: EventLog = (
        MemoryEventLog() if request.param == "memory" else SqliteEventLog(tmp_path / "log.sqlite")
    )
    yield opened
    opened.close()


def test_topic_is_sanitised_like_harn() -> None:
    assert agent_events_topic("s") == "observability.agent_events.s"
    assert agent_events_topic("a/b:c é") == "observability.agent_events.a_b_c__"
    assert agent_events_topic("ok-1.2_3") == "observability.agent_events.ok-1.2_3"


def test_records_have_harn_kind_payload_and_headers(log: EventLog) -> None:
    sink = EventLogSink(log, "session/1")
    event = h.IterationStart(session_id="session/1", iteration=1)
    sink.handle_event(event)
    [entry] = log.read_range("observability.agent_events.session_1")
    assert entry.id == 1
    assert entry.record.kind == "iteration_start"
    assert dict(entry.record.headers) == {"session_id": "session/1"}
    payload = entry.record.payload
    assert set(payload) == {"index_hint", "session_id", "event"}
    assert payload["session_id"] == "session/1"
    assert isinstance(payload["index_hint"], int)
    assert payload["event"] == {
        "type": "iteration_start",
        "session_id": "session/1",
        "iteration": 1,
    }
    assert parse_event(payload["event"]) == event


def test_appends_keep_emit_order_and_report_ids(log: EventLog) -> None:
    registry = SinkRegistry()
    persist = EventLogSink(log, "s")
    ids: list[int | None] = []

    class ReadsId:
        def handle_event(self, event: AgentEventBase) -> None:
            ids.append(persist.last_event_id())

    registry.register_sink("s", persist)
    registry.register_sink("s", ReadsId())
    for i in range(100):
        registry.emit_event(h.TurnStart(session_id="s", iteration=i))
    log.flush()
    entries = log.read_range(persist.topic)
    assert [e.record.payload["event"]["iteration"] for e in entries] == list(range(100))
    assert ids == list(range(1, 101))


def test_ids_are_per_thread_under_concurrent_emitters(log: EventLog) -> None:
    persist = EventLogSink(log, "s")
    seen: dict[int, int] = {}
    lock = threading.Lock()

    def emitter(n: int) -> None:
        for i in range(200):
            persist.handle_event(h.TurnStart(session_id="s", iteration=n * 1000 + i))
            event_id = persist.last_event_id()
            assert event_id is not None
            with lock:
                seen[event_id] = n * 1000 + i

    threads = [threading.Thread(target=emitter, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    entries = {e.id: e.record.payload["event"]["iteration"] for e in log.read_range(persist.topic)}
    assert entries == seen
    assert sorted(entries) == list(range(1, 801))


def test_append_failure_is_logged_and_contained(caplog: pytest.LogCaptureFixture) -> None:
    class BrokenLog(MemoryEventLog):
        def append(self, topic: str, record: LogRecord) -> int:
            raise OSError("disk gone")

    sink = EventLogSink(BrokenLog(), "s")
    with caplog.at_level(logging.ERROR):
        sink.handle_event(h.TurnStart(session_id="s", iteration=0))
    assert sink.append_errors == 1
    assert sink.last_event_id() is None
    assert "disk gone" in caplog.text
