"""The JSONL log helpers shared by ``replay`` and ``tail``: names, rotation chains, lines, decoding."""

from __future__ import annotations

import logging
from pathlib import Path

import orjson
import pytest

from acp_bridge.agents._jsonl_files import (
    BadLineReporter,
    LogName,
    decode_line,
    iter_lines,
    parse_log_name,
    rotation_files,
    session_log_name,
)
from acp_bridge.events.errors import EventDecodeError
from acp_bridge.events.harn import AgentMessageChunk, UnknownAgentEvent
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.events.session_event import SessionRuntimeEvent
from acp_bridge.sinks.jsonl import JsonlEventSink

CHUNK = b'{"index":7,"emitted_at_ms":1700000000123,"frame_depth":null,"type":"agent_message_chunk","session_id":"orig","content":"hi"}'


# --- names ---------------------------------------------------------------------------------------


def test_log_names() -> None:
    assert session_log_name("abc") == "event_log-abc.jsonl"
    assert parse_log_name("event_log-abc.jsonl") == LogName("abc", None)
    assert parse_log_name("event_log-abc-000002.jsonl") == LogName("abc-000002", ("abc", 2))
    # Six digits exactly, and rotation 0 does not exist: those are plain session ids.
    assert parse_log_name("event_log-abc-12345.jsonl") == LogName("abc-12345", None)
    assert parse_log_name("event_log-abc-000000.jsonl") == LogName("abc-000000", None)
    uuid = "01970c5e-3a41-7b2c-9d8e-4f5a6b7c8d9e"
    assert parse_log_name(session_log_name(uuid)) == LogName(uuid, None)
    for other in (
        "event_log-.jsonl",
        "events.jsonl",
        "event_log-abc.json",
        "event_log-abc.jsonl.tmp",
    ):
        assert parse_log_name(other) is None


def test_rotation_chain_follows_the_writer(tmp_path: Path) -> None:
    base = tmp_path / "event_log-s.jsonl"
    with JsonlEventSink(base, rotate_bytes=150) as sink:
        for i in range(6):
            sink.handle_event(AgentMessageChunk(session_id="s", content=f"chunk {i}"))
    files = rotation_files(base)
    assert [p.name for p in files] == [
        "event_log-s.jsonl",
        *(f"event_log-s-{n:06d}.jsonl" for n in range(1, len(files))),
    ]
    assert len(files) > 2
    indices = [decode_line(line.data).index for path in files for line in iter_lines(path)]
    assert indices == list(range(6))


def test_rotation_chain_stops_at_a_gap(tmp_path: Path) -> None:
    base = tmp_path / "rec.jsonl"
    base.write_bytes(b"")
    (tmp_path / "rec-000002.jsonl").write_bytes(b"")
    assert rotation_files(base) == [base]
    assert rotation_files(tmp_path / "missing.jsonl") == [tmp_path / "missing.jsonl"]


# --- lines ---------------------------------------------------------------------------------------


def test_iter_lines_numbers_offsets_and_resume(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    path.write_bytes(b'{"a":1}\n\n  \n{"b":2}\r\n{"c":3}')
    lines = list(iter_lines(path))
    assert [(line.number, line.offset, line.data) for line in lines] == [
        (1, 0, b'{"a":1}'),
        (4, 12, b'{"b":2}'),
        (5, 21, b'{"c":3}'),  # a last line without a newline is read
    ]
    resumed = list(iter_lines(path, offset=12, number=4))
    assert resumed == lines[1:]


# --- decoding ------------------------------------------------------------------------------------


def test_decode_envelope_and_rewrite_session() -> None:
    record = decode_line(CHUNK)
    assert record.index == 7
    assert record.emitted_at_ms == 1700000000123
    assert record.event == AgentMessageChunk(session_id="orig", content="hi")
    rewritten = decode_line(CHUNK, session_id="acp-1")
    assert rewritten.event == AgentMessageChunk(session_id="acp-1", content="hi")


def test_decode_bare_event_and_unknown_type() -> None:
    bare = decode_line('{"type":"agent_thought_chunk","session_id":"s","content":"hmm"}')
    assert (bare.index, bare.emitted_at_ms, bare.event.type) == (None, None, "agent_thought_chunk")
    unknown = decode_line(b'{"type":"from_the_future","session_id":"s","x":1}', session_id="t")
    assert isinstance(unknown.event, UnknownAgentEvent)
    assert unknown.event.session_id == "t"
    assert unknown.event.fields == {"x": 1}


def test_decode_runtime_dialect_line(tmp_path: Path) -> None:
    """What ``JsonlEventSink`` writes for a runtime-dialect event decodes back, with a new session."""
    runtime = parse_runtime_event(
        {"TextDelta": {"run_id": "r1", "delta": "hello", "timestamp": "2025-06-01T10:00:00Z"}}
    )
    path = tmp_path / "log.jsonl"
    with JsonlEventSink(path) as sink:
        sink.handle_event(SessionRuntimeEvent("orig", runtime))
    (line,) = iter_lines(path)
    record = decode_line(line.data, session_id="acp-9")
    assert record.index == 0
    assert record.event == SessionRuntimeEvent("acp-9", runtime)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (b'{"index":0,', "not valid JSON"),
        (b"[1,2]", "must be a JSON object"),
        (b'{"session_id":"s","content":"x"}', "type"),
        (b'{"type":"agent_message_chunk","session_id":"s"}', "content"),
        (
            b'{"index":"zero","emitted_at_ms":1,"type":"agent_message_chunk","session_id":"s","content":"x"}',
            "index",
        ),
    ],
)
def test_decode_errors(line: bytes, message: str) -> None:
    with pytest.raises(EventDecodeError, match=message):
        decode_line(line)


def test_bad_line_reporter_caps_logging(caplog: pytest.LogCaptureFixture) -> None:
    reporter = BadLineReporter(logging.getLogger("test.bad"), limit=2)
    path = Path("/rec/a.jsonl")
    with caplog.at_level(logging.WARNING, logger="test.bad"):
        for number in range(1, 6):
            reporter.report(path, number, "boom")
        reporter.summary()
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "/rec/a.jsonl:1: skipping a bad line: boom"
    assert messages[1] == "/rec/a.jsonl:2: skipping a bad line: boom"
    assert "further bad lines are only counted" in messages[2]
    assert messages[3] == "/rec/a.jsonl: 5 bad lines skipped in all (3 not logged)"
    assert len(messages) == 4
    assert reporter.counts == {}


def test_shipped_recording_decodes(tmp_path: Path) -> None:
    path = Path(__file__).resolve().parents[2] / "fixtures" / "recordings" / "demo-session.jsonl"
    records = [decode_line(line.data) for line in iter_lines(path)]
    assert len(records) > 200
    assert [r.index for r in records] == list(range(len(records)))
    stamps = [r.emitted_at_ms or 0 for r in records]
    assert stamps == sorted(stamps)
    assert 0 not in stamps
    assert all(orjson.loads(line.data)["frame_depth"] is None for line in iter_lines(path))
