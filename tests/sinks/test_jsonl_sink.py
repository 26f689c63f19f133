"""JsonlEventSink: Harn's JSONL format, rotation, failures, concurrency."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import orjson
import pytest

from acp_bridge.events import PersistedAgentEvent, parse_record
from acp_bridge.events import harn as h
from acp_bridge.sinks import JsonlEventSink, rotated_path


def read_lines(*paths: Path) -> list[dict[str, object]]:
    return [orjson.loads(line) for p in paths for line in p.read_bytes().splitlines()]


def test_jsonl_sink_writes_monotonic_indices_and_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "event_log.jsonl"
    with JsonlEventSink(path) as sink:
        for i in range(5):
            sink.handle_event(h.TurnStart(session_id="s", iteration=i))
        assert sink.event_count == 5
    rows = read_lines(path)
    assert [r["index"] for r in rows] == [0, 1, 2, 3, 4]
    stamps = [r["emitted_at_ms"] for r in rows]
    assert stamps == sorted(stamps)
    assert all(r["type"] == "turn_start" and r["frame_depth"] is None for r in rows)
    assert [r["iteration"] for r in rows] == [0, 1, 2, 3, 4]


def test_lines_are_harn_envelopes_that_parse_back(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    event = h.ToolCall(
        session_id="s", tool_call_id="t", tool_name="read", status="pending", raw_input={"p": 1}
    )
    with JsonlEventSink(path) as sink:
        sink.handle_event(event)
    line = path.read_bytes().splitlines()[0]
    assert line.startswith(b'{"index":0,"emitted_at_ms":')
    record = parse_record(line)
    assert isinstance(record, PersistedAgentEvent)
    assert record.event == event
    assert record.to_json() == line


def test_lines_are_visible_without_flush_or_close(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    sink = JsonlEventSink(path)
    sink.handle_event(h.TurnStart(session_id="s", iteration=0))
    assert len(read_lines(path)) == 1
    sink.close()


def test_open_truncates_and_creates_parent_dirs(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "dir" / "event_log-abc.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("old content\n")
    with JsonlEventSink(path) as sink:
        sink.handle_event(h.TurnStart(session_id="s", iteration=0))
    assert read_lines(path)[0]["index"] == 0


def test_rotated_path_naming(tmp_path: Path) -> None:
    base = tmp_path / "event_log-abc.jsonl"
    assert rotated_path(base, 0) == base
    assert rotated_path(base, 1).name == "event_log-abc-000001.jsonl"
    assert rotated_path(base, 12).name == "event_log-abc-000012.jsonl"
    assert rotated_path(tmp_path / "log", 2).name == "log-000002.jsonl"


def test_rotation_continues_the_index(tmp_path: Path) -> None:
    path = tmp_path / "event_log-s.jsonl"
    with JsonlEventSink(path, rotate_bytes=300) as sink:
        for i in range(20):
            sink.handle_event(h.AgentMessageChunk(session_id="s", content=f"chunk {i} " * 5))
    files = [path, *sorted(tmp_path.glob("event_log-s-*.jsonl"))]
    assert len(files) > 2
    assert files[1].name == "event_log-s-000001.jsonl"
    rows = read_lines(*files)
    assert [r["index"] for r in rows] == list(range(20))
    # Every file but the last reached the threshold before rotating.
    for f in files[:-1]:
        assert f.stat().st_size >= 300


def test_write_error_is_counted_not_raised(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "log.jsonl"
    sink = JsonlEventSink(path)
    sink.handle_event(h.TurnStart(session_id="s", iteration=0))

    class BrokenFile:
        def write(self, data: bytes) -> int:
            raise OSError(28, "No space left on device")

        def flush(self) -> None:
            pass

        def close(self) -> None:
            pass

    real = sink._file
    sink._file = BrokenFile()  # type: ignore[assignment]
    with caplog.at_level(logging.ERROR):
        sink.handle_event(h.TurnStart(session_id="s", iteration=1))
    assert sink.write_errors == 1
    assert sink.event_count == 1  # the index only advances for written lines
    assert "No space left" in caplog.text
    sink._file = real
    sink.handle_event(h.TurnStart(session_id="s", iteration=2))
    sink.close()
    assert [r["index"] for r in read_lines(path)] == [0, 1]


def test_events_after_close_are_counted_as_errors(tmp_path: Path) -> None:
    sink = JsonlEventSink(tmp_path / "log.jsonl")
    sink.close()
    sink.close()
    sink.handle_event(h.TurnStart(session_id="s", iteration=0))
    assert sink.write_errors == 1


def test_concurrent_writers_produce_contiguous_indices(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    sink = JsonlEventSink(path, rotate_bytes=4096)

    def writer(n: int) -> None:
        for i in range(250):
            sink.handle_event(h.TurnStart(session_id=f"s{n}", iteration=i))

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    sink.close()
    files = [path, *sorted(tmp_path.glob("log-*.jsonl"))]
    rows = read_lines(*files)
    assert [r["index"] for r in rows] == list(range(1000))
    for n in range(4):
        assert [r["iteration"] for r in rows if r["session_id"] == f"s{n}"] == list(range(250))
