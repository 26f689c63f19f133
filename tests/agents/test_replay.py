"""The replay backend against a fake session context: turns, pacing, cancellation, bad lines, scale."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import sys
import time
import tracemalloc
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import AgentBackend, BackendError, StopReason
from acp_bridge.agents.registry import BackendOptions
from acp_bridge.agents.registry import create_backend as create_registered
from acp_bridge.agents.replay import ReplayBackend, create_backend
from acp_bridge.events.harn import (
    AgentEventBase,
    AgentMessageChunk,
    AgentThoughtChunk,
    PersistedAgentEvent,
    SessionClosed,
    ToolCall,
    ToolCallUpdate,
    UserMessage,
)
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.events.session_event import SessionEvent, SessionRuntimeEvent
from acp_bridge.sinks.jsonl import JsonlEventSink

from .fakes import FakeSessionContext

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "fixtures" / "recordings" / "demo-session.jsonl"
REC_SID = "recorded-session"


def user(n: int) -> UserMessage:
    return UserMessage(
        session_id=REC_SID, message_id=f"u{n}", content=[{"type": "text", "text": f"prompt {n}"}]
    )


def say(text: str) -> AgentMessageChunk:
    return AgentMessageChunk(session_id=REC_SID, content=text)


def write_recording(
    path: Path,
    events: Iterable[AgentEventBase | bytes],
    *,
    start_ms: int = 1_000,
    step_ms: int = 10,
) -> None:
    """Envelope lines with a regular clock; ``bytes`` items are written as raw lines."""
    with open(path, "wb") as file:
        index = 0
        for item in events:
            if isinstance(item, bytes):
                file.write(item + b"\n")
                continue
            envelope = PersistedAgentEvent(
                index=index, emitted_at_ms=start_ms + index * step_ms, event=item
            )
            file.write(envelope.to_json() + b"\n")
            index += 1


async def run_turn(backend: ReplayBackend, ctx: FakeSessionContext) -> tuple[StopReason, list[Any]]:
    ctx.new_turn()
    before = len(ctx.events)
    stop = await backend.prompt(ctx, [{"type": "text", "text": "go on"}])
    return stop, ctx.events[before:]


def texts(events: list[Any]) -> list[str]:
    return [e.content for e in events if isinstance(e, AgentMessageChunk)]


# --- the shipped recording -------------------------------------------------------------------------


def test_shipped_recording_is_generated_deterministically() -> None:
    spec = importlib.util.spec_from_file_location(
        "make_recording", ROOT / "fixtures" / "recordings" / "make_recording.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    try:
        spec.loader.exec_module(module)
        data = module.build_recording()
    finally:
        del sys.modules[spec.name]
    assert data == RECORDING.read_bytes(), "run fixtures/recordings/make_recording.py"
    assert len(data) < 300 * 1024


async def test_shipped_recording_plays_turn_by_turn() -> None:
    backend = ReplayBackend(RECORDING)
    assert isinstance(backend, AgentBackend)
    assert await backend.turn_count() == 8
    ctx = FakeSessionContext("acp-session")
    await backend.new_session(ctx)
    turns = [await run_turn(backend, ctx) for _ in range(8)]
    assert [stop for stop, _ in turns] == [StopReason.END_TURN] * 8
    for _, events in turns:
        assert all(e.session_id == "acp-session" for e in events)
        assert "user_message" not in [e.type for e in events]
    first = [e.type for e in turns[0][1]]
    assert first[:3] == ["iteration_start", "skill_activated", "agent_thought_chunk"]
    assert first[-1] == "iteration_end"
    assert {"plan", "tool_call", "tool_call_update", "cache_miss", "tool_call_audit"} <= set(first)
    assert "The parser tests fail on Windows" in "".join(texts(turns[0][1]))
    # The edit of turn 3 was rejected in the recording; the one of turn 1 allowed.
    edits = {
        n: [e for e in events if isinstance(e, ToolCallUpdate) and e.tool_name == "edit_file"]
        for n, (_, events) in enumerate(turns)
    }
    assert edits[0][-1].status == "completed"
    assert edits[2][-1].status == "failed"
    assert texts(turns[7][1]) == ["Thanks, that is all for today!"]
    # Tool calls are well formed: each id is created once, before its updates, in every turn.
    for _, events in turns:
        created: set[str] = set()
        for event in events:
            if isinstance(event, ToolCall):
                assert event.tool_call_id not in created
                created.add(event.tool_call_id)
            elif isinstance(event, ToolCallUpdate):
                assert event.tool_call_id in created


async def test_after_the_last_turn_a_prompt_says_so() -> None:
    backend = ReplayBackend(RECORDING)
    ctx = FakeSessionContext("s")
    for _ in range(8):
        await run_turn(backend, ctx)
    stop, events = await run_turn(backend, ctx)
    assert stop is StopReason.END_TURN
    assert len(events) == 1
    assert "no more turns" in texts(events)[0]
    # Another session starts from the first turn; closing forgets a session's position.
    other = FakeSessionContext("t")
    await backend.new_session(other)
    _, events = await run_turn(backend, other)
    assert events[0].type == "iteration_start"
    await backend.close_session(ctx)
    _, events = await run_turn(backend, ctx)
    assert events[0].type == "iteration_start"


# --- turn splitting ------------------------------------------------------------------------------


async def test_turns_split_at_user_messages_with_a_preamble(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(
        path,
        [
            say("preamble"),
            user(1),
            say("a1"),
            say("a2"),
            user(2),
            user(3),
            say("c1"),
            SessionClosed(session_id=REC_SID, reason="r", status="closed", metadata={}),
        ],
    )
    backend = ReplayBackend(path)
    assert await backend.turn_count() == 3
    ctx = FakeSessionContext("s")
    played = [texts((await run_turn(backend, ctx))[1]) for _ in range(3)]
    # An empty recorded turn (two prompts in a row) replays as an empty turn: faithful and predictable.
    assert played == [["preamble", "a1", "a2"], [], ["c1"]]
    assert "session_closed" not in ctx.types


async def test_without_user_messages_the_recording_is_one_turn(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path, [say(f"m{i}") for i in range(5)])
    backend = ReplayBackend(path)
    assert await backend.turn_count() == 1
    stop, events = await run_turn(backend, FakeSessionContext("s"))
    assert stop is StopReason.END_TURN
    assert texts(events) == [f"m{i}" for i in range(5)]


async def test_rotated_files_are_read_in_order(tmp_path: Path) -> None:
    """A recording written by the real sink with rotation; a turn spans the rotation boundary."""
    base = tmp_path / "event_log-x.jsonl"
    with JsonlEventSink(base, rotate_bytes=400) as sink:
        for n in range(3):
            sink.handle_event(user(n))
            for i in range(4):
                sink.handle_event(say(f"t{n}-{i}"))
    assert (tmp_path / "event_log-x-000002.jsonl").exists()
    backend = ReplayBackend(base)
    assert await backend.turn_count() == 3
    ctx = FakeSessionContext("s")
    played = [texts((await run_turn(backend, ctx))[1]) for _ in range(3)]
    assert played == [[f"t{n}-{i}" for i in range(4)] for n in range(3)]


async def test_the_index_is_rebuilt_when_the_recording_changes(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path, [user(1), say("a")])
    backend = ReplayBackend(path)
    assert await backend.turn_count() == 1
    write_recording(path, [user(1), say("a"), user(2), say("b")])
    assert await backend.turn_count() == 2


async def test_runtime_dialect_lines_are_replayed(tmp_path: Path) -> None:
    runtime = parse_runtime_event(
        {"TextDelta": {"run_id": "r1", "delta": "hi", "timestamp": "2025-06-01T10:00:00Z"}}
    )
    path = tmp_path / "rec.jsonl"
    with JsonlEventSink(path) as sink:
        sink.handle_event(SessionRuntimeEvent("orig", runtime))
    emitted: list[SessionEvent] = []

    class Ctx(FakeSessionContext):
        def emit(self, event: Any) -> None:
            emitted.append(event)

    await ReplayBackend(path).prompt(Ctx("s"), [])
    assert emitted == [SessionRuntimeEvent("s", runtime)]


# --- bad input -----------------------------------------------------------------------------------


async def test_bad_lines_are_logged_with_file_and_line_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(
        path,
        [
            say("a"),
            b"{not json",
            b"",
            say("b"),
            b'{"type":"agent_message_chunk","session_id":"s"}',
            say("c"),
        ],
    )
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.replay"):
        stop, events = await run_turn(ReplayBackend(path), FakeSessionContext("s"))
    assert stop is StopReason.END_TURN
    assert texts(events) == ["a", "b", "c"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 2
    assert warnings[0].startswith(f"{path}:2: skipping a bad line: not valid JSON")
    assert warnings[1].startswith(f"{path}:5: skipping a bad line: ")
    assert "content" in warnings[1]


async def test_missing_and_empty_recordings(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="no recording"):
        create_backend(str(tmp_path / "nope.jsonl"), BackendOptions())
    with pytest.raises(ValueError, match="needs a recording"):
        create_backend(None, BackendOptions())
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"\n\n")
    with pytest.raises(BackendError, match="holds no events"):
        await ReplayBackend(empty).prompt(FakeSessionContext("s"), [])
    gone = tmp_path / "gone.jsonl"
    write_recording(gone, [say("x")])
    backend = ReplayBackend(gone)
    await backend.turn_count()
    gone.unlink()
    with pytest.raises(BackendError, match="does not exist"):
        await backend.prompt(FakeSessionContext("s"), [])


def test_speed_option_and_validation() -> None:
    backend = create_registered("replay:" + str(RECORDING), BackendOptions(replay_speed=2.5))
    assert isinstance(backend, ReplayBackend)
    assert backend.speed == 2.5
    assert backend.name == "replay"
    for bad in (-1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="speed"):
            ReplayBackend(RECORDING, speed=bad)


# --- pacing and cancellation ---------------------------------------------------------------------


async def test_cancel_between_events(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path, [say(f"m{i}") for i in range(10)])
    ctx = FakeSessionContext("s", cancel_when=lambda e: getattr(e, "content", "") == "m3")
    stop, events = await run_turn(ReplayBackend(path), ctx)
    assert stop is StopReason.CANCELLED
    assert texts(events) == ["m0", "m1", "m2", "m3"]


async def test_cancel_during_a_paced_wait_is_prompt(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    write_recording(path, [say("now"), say("in an hour")], step_ms=3_600_000)
    waiting = asyncio.Event()

    class Ctx(FakeSessionContext):
        async def wait_cancelled(self) -> None:
            waiting.set()  # the backend is pausing until the next recorded event
            await super().wait_cancelled()

    ctx = Ctx("s")
    turn = asyncio.create_task(ReplayBackend(path, speed=1).prompt(ctx, []))
    async with asyncio.timeout(5):
        await waiting.wait()
        ctx.cancel()
        assert await turn is StopReason.CANCELLED
    assert texts(ctx.events) == ["now"]


async def test_speed_keeps_the_recorded_spacing(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    # 200 ms between the first and last event; the user message's own time is not waited for.
    write_recording(path, [user(1), *(say(f"m{i}") for i in range(5))], start_ms=0, step_ms=50)
    for speed, span in ((1, 0.2), (4, 0.05)):
        stamps: list[float] = []

        class Ctx(FakeSessionContext):
            def emit(self, event: Any, stamps: list[float] = stamps) -> None:
                stamps.append(time.monotonic())
                super().emit(event)

        async with asyncio.timeout(5):
            await ReplayBackend(path, speed=speed).prompt(Ctx("s"), [])
        elapsed = stamps[-1] - stamps[0]
        assert span * 0.8 <= elapsed < span + 1.0, (speed, elapsed)


async def test_unpaced_lines_and_bad_clocks_do_not_stall(tmp_path: Path) -> None:
    path = tmp_path / "rec.jsonl"
    lines = [
        PersistedAgentEvent(index=0, emitted_at_ms=0, event=say("clock error")).to_json(),
        PersistedAgentEvent(index=1, emitted_at_ms=5_000, event=say("a")).to_json(),
        say("bare event, no time").to_json(),
        PersistedAgentEvent(
            index=2, emitted_at_ms=4_000, event=say("clock stepped back")
        ).to_json(),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    async with asyncio.timeout(2):
        stop, events = await run_turn(ReplayBackend(path, speed=1), FakeSessionContext("s"))
    assert stop is StopReason.END_TURN
    assert len(texts(events)) == 4


# --- scale ---------------------------------------------------------------------------------------


class CountingContext(FakeSessionContext):
    """Counts events instead of keeping them."""

    def __init__(self) -> None:
        super().__init__("s")
        self.count = 0

    def emit(self, event: Any) -> None:
        self.count += 1


def write_chunks(path: Path, count: int) -> None:
    line = (
        b'{"index":%d,"emitted_at_ms":%d,"frame_depth":null,"type":"agent_message_chunk",'
        b'"session_id":"recorded-session","content":"chunk %d"}\n'
    )
    with open(path, "wb") as file:
        file.writelines(line % (i, 1_000 + i, i) for i in range(count))


async def test_a_100k_event_recording_streams(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    write_chunks(path, 100_000)
    backend = ReplayBackend(path)
    ctx = CountingContext()
    async with asyncio.timeout(15):
        assert await backend.prompt(ctx, []) is StopReason.END_TURN
    assert ctx.count == 100_000


async def test_memory_stays_bounded_by_a_line_not_the_file(tmp_path: Path) -> None:
    path = tmp_path / "mid.jsonl"
    write_chunks(path, 5_000)
    size = path.stat().st_size
    backend = ReplayBackend(path)
    await backend.turn_count()  # warm imports and the index outside the measurement
    tracemalloc.start()
    try:
        await backend.prompt(CountingContext(), [])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < size / 4, (peak, size)


def test_thought_chunks_in_the_shipped_recording_are_streamed() -> None:
    """The generator splits the demo's thoughts into small pieces, as a model streams them."""
    from acp_bridge.agents._jsonl_files import decode_line, iter_lines

    thoughts = [
        r.event
        for r in (decode_line(line.data) for line in iter_lines(RECORDING))
        if isinstance(r.event, AgentThoughtChunk)
    ]
    assert len(thoughts) > 50
    assert all(len(t.content.split()) <= 3 for t in thoughts)
