"""``tail:DIR`` end to end: a live runtime's JSONL logs followed by the official SDK client."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from acp import RequestError
from acp.client.connection import ClientSideConnection
from acp.schema import TextContentBlock

from acp_bridge.agents.tail import TailBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events.harn import AgentMessageChunk, PersistedAgentEvent
from acp_bridge.sinks.jsonl import JsonlEventSink

from .sdk_support import RecordingClient

# The waiting validator and the client factory are shared with the replay tests.
from .test_replay_backend import Wire, sdk_client


class Log:
    """A runtime's log file, written line by line like ``JsonlEventSink`` (partial writes too)."""

    def __init__(self, path: Path, index: int = 0) -> None:
        self.path = path
        self.session_id = path.name[len("event_log-") : -len(".jsonl")]
        self.index = index

    def line(self, text: str) -> bytes:
        envelope = PersistedAgentEvent(
            index=self.index,
            emitted_at_ms=1_700_000_000_000 + self.index,
            event=AgentMessageChunk(session_id=self.session_id, content=text),
        )
        self.index += 1
        return envelope.to_json() + b"\n"

    def add(self, *texts: str) -> None:
        self.raw(b"".join(self.line(t) for t in texts))

    def raw(self, data: bytes) -> None:
        with open(self.path, "ab") as file:
            file.write(data)


@dataclass
class Tail:
    url: str
    backend: TailBackend
    directory: Path


@asynccontextmanager
async def tail_server(tmp_path: Path, log_name: str = "events.sqlite") -> AsyncIterator[Tail]:
    directory = tmp_path / "harn-logs"
    directory.mkdir(exist_ok=True)
    backend = TailBackend(directory, poll_interval=0.02)
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / log_name}")
    async with BridgeServer(backend, options) as server:
        yield Tail(server.url, backend, directory)


def texts(wire: Wire, session_id: str) -> list[str]:
    return [
        u["content"]["text"]
        for u in wire.updates(session_id)
        if u["sessionUpdate"] == "agent_message_chunk"
    ]


async def follow(conn: ClientSideConnection, tail: Tail, session_id: str) -> None:
    """Initialize, then load (replay every event as it was, and follow) the session."""
    await conn.initialize(protocol_version=1)
    await conn.load_session(
        cwd=str(tail.directory),
        session_id=session_id,
        mcp_servers=[],
        acp_bridge={"replay": "exact"},  # -> _meta.acp_bridge.replay: these tests count lines
    )


async def test_a_client_follows_appends_live(tmp_path: Path) -> None:
    client = RecordingClient()
    async with asyncio.timeout(15), tail_server(tmp_path) as tail:
        log = Log(tail.directory / "event_log-s.jsonl")
        log.add("l0", "l1")
        await tail.backend.sync()
        async with sdk_client(tail.url, client) as (conn, wire):
            await follow(conn, tail, "s")
            assert texts(wire, "s") == ["l0", "l1"]  # replayed by the load
            for i in range(2, 6):
                log.add(f"l{i}")
            await wire.wait_for(lambda: len(texts(wire, "s")) >= 6)
            # Nothing more is on its way: a round trip after a full polling round.
            await tail.backend.sync()
            await conn.list_sessions()
    assert texts(wire, "s") == [f"l{i}" for i in range(6)]
    assert wire.violations == []
    replayed = [u.get("_meta", {}).get("harn", {}).get("replayed") for u in wire.updates("s")]
    assert replayed == [True, True, None, None, None, None]


async def test_rotation_continues_without_loss_or_duplicates(tmp_path: Path) -> None:
    client = RecordingClient()
    async with asyncio.timeout(15), tail_server(tmp_path) as tail:
        base = tail.directory / "event_log-rot.jsonl"
        with JsonlEventSink(base, rotate_bytes=400) as sink:
            for i in range(5):
                sink.handle_event(AgentMessageChunk(session_id="rot", content=f"m{i}"))
            await tail.backend.sync()
            async with sdk_client(tail.url, client) as (conn, wire):
                await follow(conn, tail, "rot")
                for i in range(5, 30):
                    sink.handle_event(AgentMessageChunk(session_id="rot", content=f"m{i}"))
                await wire.wait_for(lambda: len(texts(wire, "rot")) >= 30)
                await tail.backend.sync()
                await conn.list_sessions()
        assert (tail.directory / "event_log-rot-000003.jsonl").exists()
    assert texts(wire, "rot") == [f"m{i}" for i in range(30)]
    assert wire.violations == []


async def test_a_half_written_line_waits_for_its_newline(tmp_path: Path) -> None:
    client = RecordingClient()
    async with asyncio.timeout(15), tail_server(tmp_path) as tail:
        log = Log(tail.directory / "event_log-s.jsonl")
        log.add("whole")
        await tail.backend.sync()
        async with sdk_client(tail.url, client) as (conn, wire):
            await follow(conn, tail, "s")
            line = log.line("half")
            log.raw(line[: len(line) // 2])
            await tail.backend.sync()
            # Anything the poll had emitted would be on the wire before this response.
            await conn.list_sessions()
            assert texts(wire, "s") == ["whole"]
            log.raw(line[len(line) // 2 :])
            await wire.wait_for(lambda: texts(wire, "s") == ["whole", "half"])
    assert wire.violations == []


async def test_a_new_log_becomes_a_listable_session(tmp_path: Path) -> None:
    client = RecordingClient()
    async with asyncio.timeout(15), tail_server(tmp_path) as tail:
        Log(tail.directory / "event_log-old.jsonl").add("o")
        await tail.backend.sync()
        async with sdk_client(tail.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            cwd = str(tail.directory)
            listed = await conn.list_sessions(cwd=cwd)
            assert [s.session_id for s in listed.sessions] == ["old"]
            Log(tail.directory / "event_log-new.jsonl").add("n0", "n1")
            await tail.backend.sync()
            listed = await conn.list_sessions(cwd=cwd)
            assert sorted(s.session_id for s in listed.sessions) == ["new", "old"]
            new = next(s for s in listed.sessions if s.session_id == "new")
            assert new.title == "new (live, read-only)"
            assert new.cwd == cwd
            await conn.load_session(
                cwd=cwd, session_id="new", mcp_servers=[], acp_bridge={"replay": "exact"}
            )
    assert texts(wire, "new") == ["n0", "n1"]
    assert wire.violations == []


async def test_prompts_are_refused_with_invalid_request(tmp_path: Path) -> None:
    client = RecordingClient()
    async with asyncio.timeout(15), tail_server(tmp_path) as tail:
        Log(tail.directory / "event_log-s.jsonl").add("x")
        await tail.backend.sync()
        async with sdk_client(tail.url, client) as (conn, wire):
            await follow(conn, tail, "s")
            with pytest.raises(RequestError) as info:
                await conn.prompt(
                    session_id="s",
                    prompt=[TextContentBlock(type="text", text="do something")],
                )
    assert info.value.code == -32600
    assert "read-only" in str(info.value)
    assert "event_log-s.jsonl" in str(info.value)
    assert wire.violations == []


async def test_a_restarted_bridge_does_not_duplicate_events(tmp_path: Path) -> None:
    async with asyncio.timeout(15):
        async with tail_server(tmp_path) as tail:
            log = Log(tail.directory / "event_log-s.jsonl")
            log.add("a0", "a1", "a2")
            await tail.backend.sync()
        # The runtime went on while the bridge was down.
        log.add("b0", "b1")
        client = RecordingClient()
        async with tail_server(tmp_path) as tail, sdk_client(tail.url, client) as (conn, wire):
            await follow(conn, tail, "s")
            assert texts(wire, "s") == ["a0", "a1", "a2", "b0", "b1"]
            log.add("c0")
            await wire.wait_for(lambda: len(texts(wire, "s")) >= 6)
            await tail.backend.sync()
            await conn.list_sessions()
    assert texts(wire, "s") == ["a0", "a1", "a2", "b0", "b1", "c0"]
    assert wire.violations == []


async def test_a_refused_prompt_does_not_cost_an_event_after_a_restart(tmp_path: Path) -> None:
    async with asyncio.timeout(15):
        async with tail_server(tmp_path) as tail:
            log = Log(tail.directory / "event_log-s.jsonl")
            log.add("a0")
            await tail.backend.sync()
            async with sdk_client(tail.url, RecordingClient()) as (conn, _):
                await follow(conn, tail, "s")
                with pytest.raises(RequestError):
                    await conn.prompt(
                        session_id="s", prompt=[TextContentBlock(type="text", text="hi")]
                    )
        log.add("b0")
        client = RecordingClient()
        async with tail_server(tmp_path) as tail, sdk_client(tail.url, client) as (conn, wire):
            await follow(conn, tail, "s")
    assert texts(wire, "s") == ["a0", "b0"]
