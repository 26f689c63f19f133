"""EventLogSink: Harn's record format, topic sanitising, emit order, ids, failures."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from acp_bridge.eventlog import EventLog, LogRecord, MemoryEventLog, SqliteEventLog
from acp_bridge.events import decode_session_event, parse_event
from acp_bridge.events import harn as h
from acp_bridge.events.harn import AgentEventBase
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.events.session_event import SessionRuntimeEvent
from acp_bridge.sinks import EventLogSink, SinkRegistry, agent_events_topic, event_of, harn_payload


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


def test_records_have_harn_kind_and_headers_and_the_event_without_its_session(
    log: EventLog,
) -> None:
    sink = EventLogSink(log, "session/1")
    event = h.IterationStart(session_id="session/1", iteration=1)
    sink.handle_event(event)
    [entry] = log.read_range("observability.agent_events.session_1")
    assert entry.id == 1
    assert entry.record.kind == "iteration_start"
    assert dict(entry.record.headers) == {"session_id": "session/1"}
    # The session id is in the header; every row repeating it cost ~50 bytes per event.
    assert entry.record.payload_json == b'{"type":"iteration_start","iteration":1}'
    assert event_of(entry.record) == {
        "type": "iteration_start",
        "session_id": "session/1",
        "iteration": 1,
    }
    assert parse_event(event_of(entry.record)) == event
    assert harn_payload(entry.record) == {
        "index_hint": entry.record.occurred_at_ms,
        "session_id": "session/1",
        "event": event_of(entry.record),
    }


def test_runtime_events_are_stored_without_their_session_and_read_back_whole(
    log: EventLog,
) -> None:
    sink = EventLogSink(log, "s-1")
    runtime = parse_runtime_event(
        {"TextDelta": {"run_id": "r1", "delta": "hi s-1", "timestamp": "2025-06-01T10:00:00Z"}}
    )
    event = SessionRuntimeEvent("s-1", runtime)
    sink.handle_event(event)
    [entry] = log.read_range(agent_events_topic("s-1"))
    assert entry.record.payload_json.count(b"s-1") == 1  # the one in the text
    assert decode_session_event(entry.record.kind, event_of(entry.record)) == event


def test_an_event_whose_json_does_not_start_as_expected_is_stored_whole(log: EventLog) -> None:
    sink = EventLogSink(log, "s")
    event = h.IterationStart(session_id="other", iteration=2)  # not this sink's session
    sink.handle_event(event)
    [entry] = log.read_range(agent_events_topic("s"))
    assert event_of(entry.record)["session_id"] == "other"
    assert parse_event(event_of(entry.record)) == event


def test_records_in_harns_shape_from_older_files_are_read_the_same() -> None:
    event = {"type": "iteration_start", "session_id": "s", "iteration": 3}
    record = LogRecord(
        "iteration_start",
        {"index_hint": 5, "session_id": "s", "event": event},
        {"session_id": "s"},
        5,
    )
    assert event_of(record) == event
    assert harn_payload(record) == {"index_hint": 5, "session_id": "s", "event": event}


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
    assert [event_of(e.record)["iteration"] for e in entries] == list(range(100))
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
    entries = {e.id: event_of(e.record)["iteration"] for e in log.read_range(persist.topic)}
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


def test_a_stored_event_of_the_benchmark_mix_takes_at_most_200_bytes(tmp_path: Path) -> None:
    from bench.storage_bench import bytes_per_event

    stored, raw = bytes_per_event(5_000, str(tmp_path))
    assert stored <= 200, f"{stored:.1f} bytes per stored event"  # 473 before schema 2 (issue 10)
    assert stored < raw  # less than the events' own JSON: the session id is stored once


def general_record_body(event: AgentEventBase) -> bytes:
    """The serde JSON with the session_id member cut out: what the general path stores."""
    body = event.to_json()
    session_field = b'"session_id":' + orjson.dumps(event.session_id) + b","
    assert session_field in body
    return body.replace(session_field, b"", 1)


@given(
    session_id=st.text(min_size=1, max_size=30),
    text=st.text(max_size=200),
    thought=st.booleans(),
)
def test_text_chunks_are_stored_as_the_general_serialiser_writes_them(
    session_id: str, text: str, thought: bool
) -> None:
    # Chunks skip pydantic's serialiser for a direct build; the bytes must not differ.
    log = MemoryEventLog()
    chunk_type = h.AgentThoughtChunk if thought else h.AgentMessageChunk
    event = chunk_type(session_id=session_id, content=text)
    EventLogSink(log, session_id).append(event)
    [entry] = log.read_range(agent_events_topic(session_id))
    assert entry.record.payload_json == general_record_body(event)
    assert parse_event(event_of(entry.record)) == event


def test_a_text_chunk_with_extra_fields_keeps_them(log: EventLog) -> None:
    event = h.AgentMessageChunk.model_validate(
        {"session_id": "s", "content": "hi", "from_newer_runtime": 1}
    )
    EventLogSink(log, "s").append(event)
    [entry] = log.read_range(agent_events_topic("s"))
    assert event_of(entry.record)["from_newer_runtime"] == 1
    assert parse_event(event_of(entry.record)) == event


def test_a_text_chunk_of_another_session_keeps_its_session_id(log: EventLog) -> None:
    # Only the sink's own session id is implied by the topic; any other stays in the record.
    event = h.AgentMessageChunk(session_id="other", content="hi")
    EventLogSink(log, "s").append(event)
    [entry] = log.read_range(agent_events_topic("s"))
    assert entry.record.payload_json == event.to_json()
