"""The v1.21 additions with the official SDK client over a WebSocket, every agent message validated
per method: additionalDirectories, boolean config options, session_info_update, elicitation."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acp.schema import (
    AcceptElicitationResponse,
    BooleanConfigOptionCapabilities,
    ClientCapabilities,
    ClientSessionCapabilities,
    ElicitationCapabilities,
    ElicitationFormCapabilities,
    SessionConfigOptionsCapabilities,
    TextContentBlock,
)

from acp_bridge import (
    AgentMessageChunk,
    BridgeServer,
    FunctionBackend,
    ServerOptions,
    SessionContext,
    StopReason,
)
from acp_bridge.agents.demo import DemoBackend

from .sdk_support import RecordingClient, sdk_websocket_client

CWD = "/tmp/surface-project"
TIMEOUT = 10

CAPABLE = ClientCapabilities(
    session=ClientSessionCapabilities(
        config_options=SessionConfigOptionsCapabilities(boolean=BooleanConfigOptionCapabilities())
    ),
    elicitation=ElicitationCapabilities(form=ElicitationFormCapabilities()),
)


def prompt(text: str) -> list[TextContentBlock]:
    return [TextContentBlock(type="text", text=text)]


@pytest.fixture
async def demo_server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(DemoBackend(step_delay=0), options) as running:
        yield running


async def test_roots_boolean_options_and_session_info(demo_server: BridgeServer) -> None:
    client = RecordingClient()
    async with asyncio.timeout(TIMEOUT):
        async with sdk_websocket_client(demo_server.url, client) as (conn, wire):
            init = await conn.initialize(protocol_version=1, client_capabilities=CAPABLE)
            caps = init.agent_capabilities
            assert caps is not None
            assert caps.session_capabilities is not None
            assert caps.session_capabilities.additional_directories is not None
            session = await conn.new_session(
                cwd=CWD, mcp_servers=[], additional_directories=["/tmp/shared-lib"]
            )
            sid = session.session_id
            [option] = session.config_options or []
            assert option.type == "boolean"
            assert option.current_value is True
            answer = await conn.set_config_option(
                config_id="think_aloud", session_id=sid, value=False
            )
            assert answer.config_options[0].current_value is False
            result = await conn.prompt(session_id=sid, prompt=prompt("Fix the bug"))
            assert result.stop_reason == "end_turn"
            assert "agent_thought_chunk" not in client.kinds(sid)
            # The agent turns it back on itself: the client hears it.
            await conn.prompt(session_id=sid, prompt=prompt("/think on"))
            listed = await conn.list_sessions(cwd=CWD)
    assert wire.violations == []
    changes = [u for s, u in client.updates if u.session_update == "config_option_update"]
    assert [c.config_options[0].current_value for c in changes] == [True]
    infos = [u for s, u in client.updates if u.session_update == "session_info_update"]
    assert [i.title for i in infos] == ["Fix the bug", "Fix the bug"]
    [info] = listed.sessions
    assert info.additional_directories == ["/tmp/shared-lib"]
    assert info.updated_at == infos[-1].updated_at


class FormClient(RecordingClient):
    """A client that fills in every form it is shown."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[tuple[str, Any]] = []

    async def create_elicitation(
        self, message: str, mode: Any, **_: Any
    ) -> AcceptElicitationResponse:
        self.forms.append((message, mode))
        return AcceptElicitationResponse(action="accept", content={"branch": "fix-parser"})


async def branch_turn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    schema = {"type": "object", "properties": {"branch": {"type": "string"}}}
    answer = await ctx.elicit("Which branch?", schema)
    branch = (answer.content or {}).get("branch", "?")
    ctx.emit(AgentMessageChunk(session_id=ctx.session_id, content=f"{answer.action}: {branch}"))
    return StopReason.END_TURN


async def test_elicitation_with_the_sdk_client(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    client = FormClient()
    async with BridgeServer(FunctionBackend(branch_turn, name="branches"), options) as server:
        async with asyncio.timeout(TIMEOUT):
            async with sdk_websocket_client(server.url, client, unstable=True) as (conn, wire):
                await conn.initialize(protocol_version=1, client_capabilities=CAPABLE)
                session = await conn.new_session(cwd=CWD, mcp_servers=[])
                result = await conn.prompt(session_id=session.session_id, prompt=prompt("go"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    [(message, mode)] = client.forms
    assert message == "Which branch?"
    assert mode.session_id == session.session_id
    assert client.text(session.session_id) == "accept: fix-parser"
