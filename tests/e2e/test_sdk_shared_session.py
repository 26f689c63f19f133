"""Two official ACP SDK clients share a session; the one that did not prompt approves the edit."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest
from acp.schema import TextContentBlock

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.app import BridgeServer, ServerOptions

from .sdk_support import RecordingClient, sdk_websocket_client

TOKENS = """
[[token]]
name = "laptop"
secret = "laptop-secret-1"

[[token]]
name = "phone"
secret = "phone-secret-22"
"""


async def test_the_other_controller_answers_and_the_prompting_sdk_client_is_withdrawn(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    options = ServerOptions(port=0, event_log="memory", tokens_file=str(tokens))
    laptop = RecordingClient(permission="allow")
    laptop.hold_permission = asyncio.Event()  # the laptop's user is away: it never answers
    phone = RecordingClient(permission="allow")
    async with (
        BridgeServer(DemoBackend(step_delay=0), options) as server,
        asyncio.timeout(20),
        sdk_websocket_client(server.url, laptop, token="laptop-secret-1") as (conn_a, wire_a),
        sdk_websocket_client(server.url, phone, token="phone-secret-22") as (conn_b, wire_b),
    ):
        await conn_a.initialize(protocol_version=1)
        await conn_b.initialize(protocol_version=1)
        session = await conn_a.new_session(cwd="/tmp/project", mcp_servers=[])
        await conn_b.load_session(cwd="/tmp/project", session_id=session.session_id, mcp_servers=[])
        result = await conn_a.prompt(
            session_id=session.session_id,
            prompt=[TextContentBlock(type="text", text="Fix the failing test")],
        )
        assert result.stop_reason == "end_turn"
        # The laptop's copy was withdrawn: the SDK saw $/cancel_request for it.
        cancels = [m for m in wire_a.incoming if m.get("method") == "$/cancel_request"]
        asked = [m for m in wire_a.incoming if m.get("method") == "session/request_permission"]
        assert [c["params"]["requestId"] for c in cancels] == [a["id"] for a in asked]
    assert len(laptop.permission_requests) == len(phone.permission_requests) == 1
    edit = [u for _, u in laptop.updates if getattr(u, "tool_call_id", "").endswith("-edit")]
    assert edit[-1].status == "completed"  # the phone's allow
    assert wire_a.violations == wire_b.violations == []
    # The SDK (0.12.1) has no handler for $/cancel_request and logs that as an error; ACP lets a
    # receiver ignore $/ notifications, and that is all it does: its held handler is simply never
    # needed. Anything else logged as an error is a failure.
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert set(errors) <= {"Unhandled error while handling notification method=$/cancel_request"}
