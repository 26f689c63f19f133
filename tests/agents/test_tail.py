"""The tail backend against a fake host: discovery, following, rotation, restarts, odd files."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import BackendHost, SessionReadOnly
from acp_bridge.agents.registry import BackendOptions
from acp_bridge.agents.tail import TailBackend, create_backend
from acp_bridge.events.harn import AgentMessageChunk, PersistedAgentEvent
from acp_bridge.sinks.jsonl import JsonlEventSink

from .fakes import FakeSessionContext


class FakeHost:
    """Opens fake session contexts and answers ``logged_event_count`` from a dict."""

    def __init__(self, logged: dict[str, int] | None = None, closed: set[str] | None = None):
        self.logged = logged or {}
        self.closed = closed or set()
        self.contexts: dict[str, FakeSessionContext] = {}
        self.opened: list[tuple[str, str, str | None]] = []

    def open_session(
        self, session_id: str, *, cwd: str, title: str | None = None
    ) -> FakeSessionContext:
        if session_id in self.closed:
            raise ValueError(f"session {session_id!r} was closed")
        self.opened.append((session_id, cwd, title))
        return self.contexts.setdefault(session_id, FakeSessionContext(session_id, cwd))

    def logged_event_count(self, session_id: str) -> int:
        return self.logged.get(session_id, 0)

    def texts(self, session_id: str) -> list[str]:
        ctx = self.contexts.get(session_id)
        return [e.content for e in ctx.events if isinstance(e, AgentMessageChunk)] if ctx else []


class Log:
    """Writes envelope lines the way ``JsonlEventSink`` does, with control over partial writes."""

    def __init__(self, path: Path, session_id: str | None = None) -> None:
        self.path = path
        self.session_id = session_id or path.name[len("event_log-") : -len(".jsonl")]
        self.index = 0

    def line(self, text: str) -> bytes:
        event = AgentMessageChunk(session_id=self.session_id, content=text)
        envelope = PersistedAgentEvent(
            index=self.index, emitted_at_ms=1_700_000_000_000 + self.index, event=event
        )
        self.index += 1
        return envelope.to_json() + b"\n"

    def add(self, *texts: str) -> None:
        self.raw(b"".join(self.line(t) for t in texts))

    def raw(self, data: bytes) -> None:
        with open(self.path, "ab") as file:
            file.write(data)


@asynccontextmanager
async def tailing(directory: Path, host: FakeHost, **kwargs: Any) -> AsyncIterator[TailBackend]:
    backend = TailBackend(directory, poll_interval=kwargs.pop("poll_interval", 0.01), **kwargs)
    assert isinstance(host, BackendHost)
    await backend.start(host)
    try:
        yield backend
    finally:
        await backend.aclose()


# --- discovery -----------------------------------------------------------------------------------


async def test_start_opens_a_session_per_log_and_catches_up(tmp_path: Path) -> None:
    Log(tmp_path / "event_log-b.jsonl").add("b0")
    a = Log(tmp_path / "event_log-a.jsonl")
    a.add("a0", "a1")
    rotated = Log(tmp_path / "event_log-a-000001.jsonl", "a")
    rotated.index = 2
    rotated.add("a2")
    (tmp_path / "notes.txt").write_text("not a log")
    (tmp_path / "event_log-a.jsonl.bak").write_text("not a log either")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        # Everything present was forwarded before start() returned.
        assert host.texts("a") == ["a0", "a1", "a2"]
        assert host.texts("b") == ["b0"]
        assert host.opened == [
            ("a", str(tmp_path), "a (live, read-only)"),
            ("b", str(tmp_path), "b (live, read-only)"),
        ]
        assert dict(backend.followed()) == {
            "a": tmp_path / "event_log-a.jsonl",
            "b": tmp_path / "event_log-b.jsonl",
        }


async def test_new_logs_become_sessions_and_ambiguous_names(tmp_path: Path) -> None:
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        Log(tmp_path / "event_log-c.jsonl").add("c0")
        # Looks like a rotation of "d", but there is no base log of "d": a session of its own.
        Log(tmp_path / "event_log-d-000001.jsonl").add("d0")
        await backend.sync()
        assert host.texts("c") == ["c0"]
        assert host.texts("d-000001") == ["d0"]
        # A rotation of the followed "c" is not a new session.
        Log(tmp_path / "event_log-c-000001.jsonl", "c").add("c1")
        await backend.sync()
        assert sorted(backend.followed()) == ["c", "d-000001"]
        assert host.texts("c") == ["c0", "c1"]


async def test_a_jsonl_file_with_another_name_is_reported_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Issue 15: a log named session.jsonl used to be ignored without a word.
    Log(tmp_path / "session.jsonl", "s").add("x")
    (tmp_path / "notes.txt").write_text("not a log, not reported")
    host = FakeHost()
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host) as backend:
            Log(tmp_path / "event_log-late.jsonl").add("y")  # a rescan happens
            await backend.sync()
            assert host.texts("late") == ["y"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, warnings
    assert "session.jsonl" in warnings[0]
    assert "event_log-<session id>.jsonl" in warnings[0]
    assert list(backend.followed()) == ["late"]


async def test_session_ids_are_rewritten_to_the_file_name(tmp_path: Path) -> None:
    Log(tmp_path / "event_log-outer.jsonl", "inner-loop").add("x")
    host = FakeHost()
    async with tailing(tmp_path, host):
        assert [e.session_id for e in host.contexts["outer"].events] == ["outer"]


async def test_a_missing_directory_is_waited_for(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    directory = tmp_path / "later"
    host = FakeHost()
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(directory, host) as backend:
            directory.mkdir()
            Log(directory / "event_log-s.jsonl").add("hello")
            await backend.sync()
            assert host.texts("s") == ["hello"]
    assert any("does not exist (yet)" in r.getMessage() for r in caplog.records)


# --- following -----------------------------------------------------------------------------------


async def test_appends_and_partial_lines(tmp_path: Path) -> None:
    log = Log(tmp_path / "event_log-s.jsonl")
    log.add("one")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        log.add("two")
        await backend.sync()
        assert host.texts("s") == ["one", "two"]
        line = log.line("three")
        log.raw(line[:20])
        await backend.sync()
        log.raw(line[20:-1])
        await backend.sync()
        assert host.texts("s") == ["one", "two"]  # no newline yet
        log.raw(b"\n")
        await backend.sync()
        assert host.texts("s") == ["one", "two", "three"]


async def test_rotation_by_the_real_sink(tmp_path: Path) -> None:
    host = FakeHost()
    async with tailing(tmp_path, host, read_chunk_bytes=512) as backend:
        with JsonlEventSink(tmp_path / "event_log-r.jsonl", rotate_bytes=300) as sink:
            for i in range(5):
                sink.handle_event(AgentMessageChunk(session_id="r", content=f"m{i}"))
            await backend.sync()
            for i in range(5, 40):
                sink.handle_event(AgentMessageChunk(session_id="r", content=f"m{i}"))
                if i % 7 == 0:
                    await backend.sync()
        assert (tmp_path / "event_log-r-000005.jsonl").exists()
        await backend.sync()
        assert host.texts("r") == [f"m{i}" for i in range(40)]


async def test_incomplete_last_line_of_a_rotated_file_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log(tmp_path / "event_log-s.jsonl")
    log.add("a")
    log.raw(b'{"index":1,"torn')
    host = FakeHost()
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host) as backend:
            nxt = Log(tmp_path / "event_log-s-000001.jsonl", "s")
            nxt.add("b")
            await backend.sync()
            await backend.sync()
            assert host.texts("s") == ["a", "b"]
    assert any(
        "event_log-s.jsonl:2: skipping a bad line: incomplete last line" in r.getMessage()
        for r in caplog.records
    )


# --- restarts ------------------------------------------------------------------------------------


async def test_events_already_logged_are_skipped(tmp_path: Path) -> None:
    Log(tmp_path / "event_log-s.jsonl").add("0", "1", "2", "3", "4")
    host = FakeHost(logged={"s": 3})
    async with tailing(tmp_path, host):
        assert host.texts("s") == ["3", "4"]


async def test_a_log_holding_more_than_the_file_skips_only_what_the_file_held(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log(tmp_path / "event_log-s.jsonl")
    log.add("0", "1")
    host = FakeHost(logged={"s": 5})
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host) as backend:
            assert host.texts("s") == []
            log.add("new")
            await backend.sync()
            assert host.texts("s") == ["new"]
    assert any("holds 3 more event(s)" in r.getMessage() for r in caplog.records)


async def test_a_session_closed_earlier_is_not_followed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    Log(tmp_path / "event_log-gone.jsonl").add("x")
    host = FakeHost(closed={"gone"})
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host) as backend:
            await backend.sync()
            assert dict(backend.followed()) == {}
    assert sum("not following" in r.getMessage() for r in caplog.records) == 1


async def test_a_session_closed_by_a_client_stops_being_followed(tmp_path: Path) -> None:
    log = Log(tmp_path / "event_log-s.jsonl")
    log.add("before")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        await backend.close_session(host.contexts["s"])
        log.add("after")
        await backend.sync()
        assert host.texts("s") == ["before"]
        assert dict(backend.followed()) == {}


# --- truncation, replacement, disappearance ------------------------------------------------------


async def test_truncated_log_is_forwarded_again_from_its_start(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "event_log-s.jsonl"
    Log(path).add("old0", "old1", "old2")
    host = FakeHost()
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host) as backend:
            path.write_bytes(b"")  # the runtime reopened the session: truncate on open
            Log(path).add("new0")
            await backend.sync()
            assert host.texts("s") == ["old0", "old1", "old2", "new0"]
    assert any("truncated or replaced" in r.getMessage() for r in caplog.records)


async def test_replaced_log_is_forwarded_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "event_log-s.jsonl"
    Log(path).add("old")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        replacement = tmp_path / "tmp-replacement"
        Log(replacement, "s").add("r0", "r1")
        os.replace(replacement, path)
        await backend.sync()
        assert host.texts("s") == ["old", "r0", "r1"]


async def test_deleted_log_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "event_log-s.jsonl"
    Log(path).add("a")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        path.unlink()
        await backend.sync()
        assert "s" in backend.followed()  # the session and its history stay
        Log(path).add("back")
        await backend.sync()
        assert host.texts("s") == ["a", "back"]


async def test_restarted_session_after_rotation_ignores_stale_rotations(tmp_path: Path) -> None:
    base = tmp_path / "event_log-s.jsonl"
    Log(base).add("g1-0")
    old = Log(tmp_path / "event_log-s-000001.jsonl", "s")
    old.index = 1
    old.add("g1-1")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        assert host.texts("s") == ["g1-0", "g1-1"]
        # The runtime reopens the session: the base log is truncated and written again, while the
        # old rotated file is still there (the writer only truncates it once it rotates again).
        base.write_bytes(b"")
        stat = (tmp_path / "event_log-s-000001.jsonl").stat()
        gen2 = Log(base)
        gen2.add("g2-0")
        os.utime(base, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        await backend.sync()
        await backend.sync()
        assert host.texts("s") == ["g1-0", "g1-1", "g2-0"]
        # Now it rotates for real.
        (tmp_path / "event_log-s-000001.jsonl").write_bytes(b"")
        rotated = Log(tmp_path / "event_log-s-000001.jsonl", "s")
        rotated.index = 1
        rotated.add("g2-1")
        os.utime(rotated.path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 2_000_000_000))
        await backend.sync()
        await backend.sync()
        assert host.texts("s") == ["g1-0", "g1-1", "g2-0", "g2-1"]


# --- bad input -----------------------------------------------------------------------------------


async def test_bad_and_overlong_lines_are_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    log = Log(tmp_path / "event_log-s.jsonl")
    log.add("ok0")
    log.raw(b"{oops}\n" + b'{"x":"' + b"y" * 600 + b'"}\n')
    log.add("ok1")
    host = FakeHost()
    with caplog.at_level(logging.WARNING, logger="acp_bridge.agents.tail"):
        async with tailing(tmp_path, host, max_line_bytes=500):
            assert host.texts("s") == ["ok0", "ok1"]
    messages = [r.getMessage() for r in caplog.records]
    path = tmp_path / "event_log-s.jsonl"
    assert any(m.startswith(f"{path}:2: skipping a bad line: not valid JSON") for m in messages)
    assert any(m.startswith(f"{path}:3: skipping a bad line: line of 608 bytes") for m in messages)


# --- prompts and lifecycle -----------------------------------------------------------------------


async def test_prompts_are_refused_as_read_only(tmp_path: Path) -> None:
    Log(tmp_path / "event_log-s.jsonl").add("x")
    host = FakeHost()
    async with tailing(tmp_path, host) as backend:
        with pytest.raises(SessionReadOnly, match="read-only") as info:
            await backend.prompt(host.contexts["s"], [{"type": "text", "text": "hi"}])
        assert info.value.rpc_code == -32600
        assert "event_log-s.jsonl" in str(info.value)
        with pytest.raises(SessionReadOnly, match="cannot run prompts"):
            await backend.prompt(FakeSessionContext("client-made"), [])


async def test_aclose_stops_the_loop(tmp_path: Path) -> None:
    backend = TailBackend(tmp_path, poll_interval=0.01)
    await backend.start(FakeHost())
    with pytest.raises(RuntimeError, match="already started"):
        await backend.start(FakeHost())
    await backend.aclose()
    await backend.aclose()  # idempotent
    with pytest.raises(RuntimeError, match="not running"):
        await backend.sync()


def test_create_backend(tmp_path: Path) -> None:
    backend = create_backend(str(tmp_path), BackendOptions())
    assert backend.directory == tmp_path
    assert backend.name == "tail"
    with pytest.raises(ValueError, match="needs a directory"):
        create_backend(None, BackendOptions())
    afile = tmp_path / "f"
    afile.write_text("")
    with pytest.raises(ValueError, match="not a directory"):
        create_backend(str(afile), BackendOptions())
    with pytest.raises(ValueError, match="poll_interval"):
        TailBackend(tmp_path, poll_interval=0)


async def test_a_pending_sync_gives_up_when_closed(tmp_path: Path) -> None:
    backend = TailBackend(tmp_path, poll_interval=60)
    await backend.start(FakeHost())
    waiting = asyncio.Event()

    class SignallingEvent(asyncio.Event):
        def set(self) -> None:
            waiting.set()  # first, so this test resumes before the polling loop does
            super().set()

    backend._wake = SignallingEvent()
    waiter = asyncio.create_task(backend.sync())
    # sync() sets the wake event right before it waits for a round; aclose() then cancels the
    # loop before that round can run.
    async with asyncio.timeout(5):
        await waiting.wait()
    await backend.aclose()
    async with asyncio.timeout(5):
        with pytest.raises(RuntimeError, match="was closed"):
            await waiter
