"""What an editor does: launch an agent command on stdio. Here the commands are
``acp-bridge connect URL`` (the relay to a running server) and ``acp-bridge serve --stdio``."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

from acp import spawn_agent_process
from acp.schema import TextContentBlock

from acp_bridge.app.server import BridgeServer

from .sdk_support import RecordingClient, WireValidator

CWD = "/tmp/project"


def child_env(tmp_path: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The bridge's default event log lives in the user's data dir; keep it inside the test.
    env["XDG_DATA_HOME"] = str(tmp_path / "data")
    env.pop("ACP_BRIDGE_TOKEN", None)
    return env


async def run_turn_over_stdio(
    command: list[str], env: dict[str, str]
) -> tuple[RecordingClient, WireValidator, str, str]:
    client = RecordingClient(permission="allow")
    wire = WireValidator()
    async with (
        asyncio.timeout(30),
        spawn_agent_process(client, *command, env=env, observers=[wire]) as (conn, _process),
    ):  # type: ignore[arg-type]
        init = await conn.initialize(protocol_version=1)
        assert init.protocol_version == 1
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(
            session_id=session.session_id, prompt=[TextContentBlock(type="text", text="Fix it")]
        )
    return client, wire, session.session_id, result.stop_reason


async def test_editor_through_the_relay(server: BridgeServer, tmp_path: Path) -> None:
    command = [sys.executable, "-m", "acp_bridge", "connect", server.url]
    client, wire, session_id, stop = await run_turn_over_stdio(command, child_env(tmp_path))
    assert stop == "end_turn"
    assert wire.violations == []
    assert "Fix it" in client.text(session_id)
    assert len(client.permission_requests) == 1
    # The server kept the session after the relay went away.
    assert session_id in server.bridge.sessions.sessions


async def test_serve_stdio(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "acp_bridge",
        "serve",
        "--stdio",
        "--event-log",
        f"sqlite:{tmp_path / 'log.sqlite'}",
    ]
    client, wire, session_id, stop = await run_turn_over_stdio(command, child_env(tmp_path))
    assert stop == "end_turn"
    assert wire.violations == []
    assert {"tool_call", "tool_call_update", "plan"} <= set(client.kinds(session_id))
