"""The official ACP Python SDK client against the bridge over a real WebSocket."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from acp.schema import TextContentBlock

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions

from .sdk_support import RecordingClient, compacted, declaring, history, sdk_websocket_client

CWD = "/tmp/project"


def prompt(text: str) -> list[TextContentBlock]:
    return [TextContentBlock(type="text", text=text)]


def assert_no_sdk_errors(caplog: pytest.LogCaptureFixture) -> None:
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]


async def test_full_turn_with_permission_allowed(
    server: BridgeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient(permission="allow")
    async with asyncio.timeout(20), sdk_websocket_client(server.url, client) as (conn, wire):
        init = await conn.initialize(protocol_version=1)
        assert init.protocol_version == 1
        assert init.agent_capabilities.load_session is True
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(
            session_id=session.session_id, prompt=prompt("Fix the failing test")
        )
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    kinds = client.kinds(session.session_id)
    assert kinds[0] == "available_commands_update"
    assert {
        "agent_thought_chunk",
        "agent_message_chunk",
        "plan",
        "tool_call",
        "tool_call_update",
    } <= set(kinds)
    assert "Fix the failing test" in client.text(session.session_id)
    assert len(client.permission_requests) == 1
    edit = [u for _, u in client.updates if getattr(u, "tool_call_id", "").endswith("-edit")]
    assert edit[-1].status == "completed"
    # It declared no extension, so it got none (the demo turn has Harn-only events).
    assert client.ext == []
    assert {m.get("method") for m in wire.incoming} <= STANDARD_AGENT_METHODS
    assert_no_sdk_errors(caplog)


STANDARD_AGENT_METHODS = {None, "session/update", "session/request_permission", "fs/read_text_file"}
"""What a client that declared nothing may receive from the demo turn (None: responses)."""


async def test_declared_extensions_arrive(server: BridgeServer) -> None:
    client = RecordingClient(permission="allow")
    async with asyncio.timeout(20), sdk_websocket_client(server.url, client) as (conn, wire):
        init = await conn.initialize(protocol_version=1, client_capabilities=declaring("_harn/*"))
        enabled = init.agent_capabilities.field_meta["acp_bridge"]["extensions"]["enabled"]
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        await conn.prompt(session_id=session.session_id, prompt=prompt("Fix the failing test"))
    assert wire.violations == []
    assert enabled == ["_harn/agentEvent"]
    # The SDK strips the "_" of extension methods before calling ext_notification.
    assert {m for m, _ in client.ext} == {"harn/agentEvent"}


async def test_permission_rejected(server: BridgeServer) -> None:
    client = RecordingClient(permission="reject")
    async with asyncio.timeout(20), sdk_websocket_client(server.url, client) as (conn, wire):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("Fix it"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    edit = [u for _, u in client.updates if getattr(u, "tool_call_id", "").endswith("-edit")]
    assert edit[-1].status == "failed"


async def test_cancel_mid_turn(server: BridgeServer) -> None:
    client = RecordingClient(permission="allow")
    client.hold_permission = asyncio.Event()
    async with asyncio.timeout(20), sdk_websocket_client(server.url, client) as (conn, wire):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        turn = asyncio.create_task(
            conn.prompt(session_id=session.session_id, prompt=prompt("Fix it"))
        )
        await client.permission_asked.wait()
        await conn.cancel(session_id=session.session_id)
        result = await turn
        client.hold_permission.set()
    assert result.stop_reason == "cancelled"
    assert wire.violations == []


async def test_load_replays_what_the_live_client_saw(server: BridgeServer) -> None:
    live = RecordingClient()
    async with asyncio.timeout(20), sdk_websocket_client(server.url, live) as (conn, _):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        await conn.prompt(session_id=session.session_id, prompt=prompt("Refactor the parser"))
    loader = RecordingClient()
    async with asyncio.timeout(20), sdk_websocket_client(server.url, loader) as (conn, wire):
        init = await conn.initialize(protocol_version=1)
        assert init.agent_capabilities.load_session
        await conn.load_session(cwd=CWD, session_id=session.session_id, mcp_servers=[])
        listed = await conn.list_sessions(cwd=CWD)
    assert wire.violations == []
    assert [s.session_id for s in listed.sessions] == [session.session_id]

    assert history(loader.updates) == compacted(history(live.updates))
    user = [u for _, u in loader.updates if u.session_update == "user_message_chunk"]
    assert [u.content.text for u in user] == ["Refactor the parser"]


async def test_resume_list_and_close(server: BridgeServer) -> None:
    client = RecordingClient()
    async with asyncio.timeout(20), sdk_websocket_client(server.url, client) as (conn, wire):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd="/work/resume", mcp_servers=[])
        await conn.resume_session(session_id=session.session_id, cwd="/work/resume")
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("/echo still here"))
        assert result.stop_reason == "end_turn"
        assert client.text(session.session_id).endswith("still here")
        await conn.close_session(session_id=session.session_id)
        listed = await conn.list_sessions(cwd="/work/resume")
    assert listed.sessions == []
    assert wire.violations == []


async def test_two_connections_two_sessions(server: BridgeServer) -> None:
    a, b = RecordingClient(), RecordingClient()
    async with (
        asyncio.timeout(20),
        sdk_websocket_client(server.url, a) as (conn_a, wire_a),
        sdk_websocket_client(server.url, b) as (conn_b, wire_b),
    ):
        await asyncio.gather(
            conn_a.initialize(protocol_version=1), conn_b.initialize(protocol_version=1)
        )
        sa, sb = await asyncio.gather(
            conn_a.new_session(cwd=CWD, mcp_servers=[]), conn_b.new_session(cwd=CWD, mcp_servers=[])
        )
        await asyncio.gather(
            conn_a.prompt(session_id=sa.session_id, prompt=prompt("/echo from a")),
            conn_b.prompt(session_id=sb.session_id, prompt=prompt("/echo from b")),
        )
    assert a.text(sa.session_id) == "from a"
    assert b.text(sb.session_id) == "from b"
    assert {sid for sid, _ in a.updates} == {sa.session_id}
    assert wire_a.violations == wire_b.violations == []


async def test_bearer_token(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log="memory", token="s3cret")
    async with BridgeServer(DemoBackend(step_delay=0), options) as running:
        client = RecordingClient()
        async with (
            asyncio.timeout(20),
            sdk_websocket_client(running.url, client, token="s3cret") as (conn, _),
        ):
            assert (await conn.initialize(protocol_version=1)).protocol_version == 1
        with pytest.raises(Exception, match="401"):
            async with (
                asyncio.timeout(20),
                sdk_websocket_client(running.url, client, token="wrong"),
            ):
                pass
