"""``replay:PATH`` end to end: the official SDK client over a real WebSocket, every message validated."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from acp import connect_to_agent
from acp.client.connection import ClientSideConnection
from acp.connection import StreamEvent
from acp.schema import TextContentBlock
from acp.ws import create_websocket_stream

from acp_bridge.agents.replay import ReplayBackend
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events.harn import AgentMessageChunk, PersistedAgentEvent, UserMessage

from .sdk_support import RecordingClient, WireValidator, compacted, declaring, history

RECORDING = Path(__file__).resolve().parents[2] / "fixtures" / "recordings" / "demo-session.jsonl"
CWD = "/tmp/demo"


class Wire(WireValidator):
    """Validates every agent message and lets a test wait (bounded) for one to arrive."""

    def __init__(self) -> None:
        super().__init__()
        self._arrived = asyncio.Event()

    def __call__(self, event: StreamEvent) -> None:
        super().__call__(event)
        self._arrived.set()

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._arrived.clear()
                await self._arrived.wait()

    def updates(self, session_id: str) -> list[dict[str, Any]]:
        return [
            m["params"]["update"]
            for m in self.incoming
            if m.get("method") == "session/update" and m["params"]["sessionId"] == session_id
        ]


@asynccontextmanager
async def sdk_client(
    url: str, client: RecordingClient
) -> AsyncIterator[tuple[ClientSideConnection, Wire]]:
    transport = await create_websocket_stream(url)
    wire = Wire()
    conn = connect_to_agent(client, transport, observers=[wire])  # type: ignore[arg-type]
    try:
        yield conn, wire
    finally:
        await conn.close()


@asynccontextmanager
async def replay_server(tmp_path: Path, path: Path, speed: float = 0.0) -> AsyncIterator[str]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(ReplayBackend(path, speed=speed), options) as server:
        yield server.url


def prompt(text: str) -> list[Any]:
    return [TextContentBlock(type="text", text=text)]


def assert_well_formed_tool_calls(updates: list[dict[str, Any]]) -> None:
    """Each tool call is created once, before any update of it, and ends completed or failed."""
    status: dict[str, str] = {}
    for update in updates:
        kind = update["sessionUpdate"]
        if kind == "tool_call":
            assert update["toolCallId"] not in status, update
            status[update["toolCallId"]] = update.get("status", "pending")
        elif kind == "tool_call_update":
            assert update["toolCallId"] in status, update
            status[update["toolCallId"]] = update.get("status") or status[update["toolCallId"]]
    assert status, "no tool calls"
    assert set(status.values()) <= {"completed", "failed"}, status


async def test_a_full_recorded_turn(tmp_path: Path) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(15),
        replay_server(tmp_path, RECORDING) as url,
        sdk_client(url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1, client_capabilities=declaring("_harn/agentEvent"))
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("Show me"))
        response_at = len(wire.incoming)
    sid = session.session_id
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    updates = wire.updates(sid)
    kinds = [u["sessionUpdate"] for u in updates]
    assert {
        "agent_thought_chunk",
        "agent_message_chunk",
        "plan",
        "tool_call",
        "tool_call_update",
    } <= set(kinds)
    assert (
        "user_message_chunk" not in kinds
    )  # the recorded prompt is not replayed (the live one is the prompt)
    assert_well_formed_tool_calls(updates)
    assert "The parser tests fail on Windows" in client.text(sid)
    # Harn-only events travel as _harn/agentEvent, for this session.
    assert {m for m, _ in client.ext} == {"harn/agentEvent"}
    assert {p["sessionId"] for _, p in client.ext} == {sid}
    assert {p["kind"] for _, p in client.ext} >= {"iteration_start", "iteration_end"}
    # A replay never asks the client anything: the recorded answer is part of the recording.
    assert client.permission_requests == []
    # Everything of the turn came before the prompt response.
    last_update = max(
        i
        for i, m in enumerate(wire.incoming)
        if m.get("method") in ("session/update", "_harn/agentEvent")
    )
    assert last_update < response_at - 1
    assert "result" in wire.incoming[response_at - 1]


async def test_cancel_mid_replay(tmp_path: Path) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(15),
        replay_server(tmp_path, RECORDING, speed=1.0) as url,
        sdk_client(url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        turn = asyncio.create_task(conn.prompt(session_id=sid, prompt=prompt("Go")))
        # At the recorded pace the first thoughts arrive after about half a second; the turn
        # lasts over five.
        await wire.wait_for(
            lambda: any(u["sessionUpdate"] == "agent_thought_chunk" for u in wire.updates(sid))
        )
        started = time.monotonic()
        await conn.cancel(session_id=sid)
        result = await turn
        assert time.monotonic() - started < 2.5  # the cancel ended the wait for the next event
    assert result.stop_reason == "cancelled"
    assert wire.violations == []
    kinds = [u["sessionUpdate"] for u in wire.updates(sid)]
    assert "tool_call" not in kinds  # far from the end of the recorded turn


async def test_load_replays_what_the_live_client_saw(tmp_path: Path) -> None:
    live = RecordingClient()
    loader = RecordingClient()
    async with asyncio.timeout(15), replay_server(tmp_path, RECORDING) as url:
        async with sdk_client(url, live) as (conn, _):
            await conn.initialize(protocol_version=1)
            session = await conn.new_session(cwd=CWD, mcp_servers=[])
            for text in ("first", "second"):
                result = await conn.prompt(session_id=session.session_id, prompt=prompt(text))
                assert result.stop_reason == "end_turn"
        async with sdk_client(url, loader) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=CWD, session_id=session.session_id, mcp_servers=[])
    assert wire.violations == []

    def ext(client: RecordingClient) -> list[dict[str, Any]]:
        return [{k: v for k, v in p.items() if k != "replayed"} for _, p in client.ext]

    assert len(live.updates) > 50
    assert history(loader.updates) == compacted(history(live.updates))
    assert ext(loader) == ext(live)
    # The live prompts are the session's user messages, in order.
    user = [u.content.text for _, u in loader.updates if u.session_update == "user_message_chunk"]
    assert user == ["first", "second"]


async def test_speed_one_keeps_the_recorded_spacing(tmp_path: Path) -> None:
    path = tmp_path / "short.jsonl"
    sid = "rec"
    lines = [
        PersistedAgentEvent(
            index=0,
            emitted_at_ms=10_000,
            event=UserMessage(session_id=sid, message_id="u", content=[]),
        )
    ]
    # Five chunks spread over 200 ms.
    lines += [
        PersistedAgentEvent(
            index=1 + i,
            emitted_at_ms=20_000 + 50 * i,
            event=AgentMessageChunk(session_id=sid, content=f"{i} "),
        )
        for i in range(5)
    ]
    path.write_bytes(b"".join(line.to_json() + b"\n" for line in lines))
    client = RecordingClient()
    async with (
        asyncio.timeout(15),
        replay_server(tmp_path, path, speed=1.0) as url,
        sdk_client(url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        started = time.monotonic()
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("Go"))
        elapsed = time.monotonic() - started
    assert result.stop_reason == "end_turn"
    assert client.text(session.session_id) == "0 1 2 3 4 "
    assert wire.violations == []
    assert 0.8 * 0.2 <= elapsed < 3.0


async def test_after_the_recording_ends(tmp_path: Path) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(15),
        replay_server(tmp_path, RECORDING) as url,
        sdk_client(url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        for _ in range(8):
            await conn.prompt(session_id=session.session_id, prompt=prompt("next"))
        before = len(client.updates)
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("more?"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert [u.session_update for _, u in client.updates[before:]] == [
        "agent_message_chunk",
        "session_info_update",
    ]
    assert "has no more turns: all 8 were replayed" in client.text(session.session_id)
