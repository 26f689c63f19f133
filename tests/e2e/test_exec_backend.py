"""The exec backend end to end: the official SDK client over a real WebSocket, a real child process.

Every message the bridge sends is validated per method against the ACP schema (``WireValidator``).
"""

from __future__ import annotations

import asyncio
import logging
import os
import shlex
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from acp import RequestError, spawn_agent_process
from acp.schema import ClientCapabilities, FileSystemCapabilities, TextContentBlock

from acp_bridge.agents.exec import ExecBackend
from acp_bridge.app import BridgeServer, ServerOptions
from tests.agents.test_exec import SCRIPTED_CHILD

from .sdk_support import (
    RecordingClient,
    WireValidator,
    compacted,
    declaring,
    history,
    sdk_websocket_client,
)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CWD = "/tmp/project"
TIMEOUT = 15
FS = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))


def text(value: str) -> list[TextContentBlock]:
    return [TextContentBlock(type="text", text=value)]


def actions(*steps: dict[str, Any]) -> list[TextContentBlock]:
    """A prompt for the scripted child (see ``tests/agents/test_exec.py``)."""
    return text(orjson.dumps(list(steps)).decode())


def chunk(value: str) -> dict[str, Any]:
    return {"emit": {"type": "agent_message_chunk", "session_id": "$SID", "content": value}}


class WatchingClient(RecordingClient):
    """A recording client that can wait until an update satisfies a condition."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._grew = asyncio.Event()

    async def session_update(self, session_id: str, update: Any, **kwargs: Any) -> None:
        await super().session_update(session_id, update, **kwargs)
        self._grew.set()

    async def wait_until(self, condition: Callable[[], bool]) -> None:
        while not condition():
            self._grew.clear()
            await self._grew.wait()


@asynccontextmanager
async def exec_server(
    tmp_path: Path, command: list[str], **kwargs: Any
) -> AsyncIterator[tuple[BridgeServer, ExecBackend]]:
    kwargs.setdefault("env", {"EXAMPLE_AGENT_DELAY": "0"})
    backend = ExecBackend(command, **kwargs)
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(backend, options) as server:
        yield server, backend


def example(name: str) -> list[str]:
    return [sys.executable, str(EXAMPLES / name)]


def scripted(tmp_path: Path) -> list[str]:
    path = tmp_path / "child.py"
    path.write_text(SCRIPTED_CHILD)
    return [sys.executable, str(path)]


# --- the example agents ------------------------------------------------------------------------


async def test_harn_example_full_turn_with_permission_and_load_replay(tmp_path: Path) -> None:
    client = RecordingClient(permission="allow")
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, example("harn_agent.py")) as (server, _),
    ):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1, client_capabilities=FS)
            session = await conn.new_session(cwd=CWD, mcp_servers=[])
            sid = session.session_id
            result = await conn.prompt(session_id=sid, prompt=text("remember the milk"))
        assert result.stop_reason == "end_turn"
        assert wire.violations == []
        assert "remember the milk" in client.text(sid)
        assert client.text(sid).endswith("Saved to notes.txt.")
        assert client.kinds(sid).count("tool_call") == 1
        assert len(client.permission_requests) == 1
        assert client.files == {f"{CWD}/notes.txt": "remember the milk\n"}
        tool = [u for _, u in client.updates if u.session_update == "tool_call_update"]
        assert [u.status for u in tool] == ["in_progress", "completed"]

        # A second client loads the session: the log replays exactly what the first one saw.
        loader = RecordingClient()
        async with sdk_websocket_client(server.url, loader) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])
        assert wire.violations == []
        assert history(loader.updates) == compacted(history(client.updates))


async def test_harn_example_permission_rejected(tmp_path: Path) -> None:
    client = RecordingClient(permission="reject")
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, example("harn_agent.py")) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1, client_capabilities=FS)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(session_id=session.session_id, prompt=text("hi"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.files == {}
    tool = [u for _, u in client.updates if u.session_update == "tool_call_update"]
    assert [u.status for u in tool] == ["failed"]


async def test_harn_example_cancel_while_asking_permission(tmp_path: Path) -> None:
    client = RecordingClient(permission="allow")
    client.hold_permission = asyncio.Event()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, example("harn_agent.py")) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1, client_capabilities=FS)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        turn = asyncio.create_task(conn.prompt(session_id=sid, prompt=text("hi")))
        await client.permission_asked.wait()
        await conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        client.hold_permission.set()
        # The session goes on.
        client.hold_permission = None
        again = await conn.prompt(session_id=sid, prompt=text("again"))
    assert again.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.files == {f"{CWD}/notes.txt": "again\n"}


async def test_runtime_example_full_turn(tmp_path: Path) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, example("runtime_agent.py"), dialect="runtime") as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(
            protocol_version=1, client_capabilities=declaring("_acp_bridge/runtimeEvent")
        )
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        result = await conn.prompt(session_id=sid, prompt=text("what time is it"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.text(sid).startswith("You said: 'what time is it'. Let me check the time.")
    assert client.text(sid).rstrip().endswith("UTC.")
    assert [k for k in client.kinds(sid) if k.startswith("tool")] == [
        "tool_call",
        "tool_call_update",
        "tool_call_update",
    ]
    kinds = [params["kind"] for method, params in client.ext if method == "acp_bridge/runtimeEvent"]
    assert kinds == ["run_started", "model_started", "run_completed"]


# --- misbehaving children ----------------------------------------------------------------------


async def test_crashing_child(tmp_path: Path) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, scripted(tmp_path)) as (server, backend),
    ):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            session = await conn.new_session(cwd=CWD, mcp_servers=[])
            sid = session.session_id
            crash = actions(chunk("starting"), {"stderr": "panic: out of memory"}, {"exit": 101})
            with pytest.raises(RequestError) as info:
                await conn.prompt(session_id=sid, prompt=crash)
            assert "agent process exited with code 101 (panic: out of memory)" in str(info.value)
            again = await conn.prompt(
                session_id=sid, prompt=actions(chunk("back"), {"end": "end_turn"})
            )
            assert again.stop_reason == "end_turn"
        assert wire.violations == []
        assert client.text(sid) == "startingback"
        assert backend.starts == 2

        loader = RecordingClient()
        async with sdk_websocket_client(server.url, loader) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])
        assert wire.violations == []
        assert loader.text(sid) == "startingback"


async def test_child_printing_garbage(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, scripted(tmp_path)) as (server, backend),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        garbage = actions(
            chunk("a"),
            {"raw": "DEBUG: model loaded"},
            {"raw": "{not json"},
            {"emit": {"type": "agent_message_chunk", "content": "no session"}},
            chunk("b"),
            {"end": "end_turn"},
        )
        result = await conn.prompt(session_id=session.session_id, prompt=garbage)
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.text(session.session_id) == "ab"
    assert backend.skipped_lines == 3
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert [m.split(" skipped")[0].split()[-1] for m in skipped] == ["2", "3", "4"]


async def test_slow_child_can_be_cancelled(tmp_path: Path) -> None:
    client = WatchingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, scripted(tmp_path), cancel_grace=0.3) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        # A child that stops when told to...
        slow = actions(chunk("thinking"), {"wait_cancel": True}, {"end": "cancelled"})
        turn = asyncio.create_task(conn.prompt(session_id=sid, prompt=slow))
        await client.wait_until(lambda: "thinking" in client.text(sid))
        await conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        # ...and one that never does: the prompt still answers, after the grace period.
        stuck = actions(chunk("stuck"), {"block": True})
        turn = asyncio.create_task(conn.prompt(session_id=sid, prompt=stuck))
        await client.wait_until(lambda: "stuck" in client.text(sid))
        await conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        # The child is still there for the next turn.
        again = await conn.prompt(session_id=sid, prompt=actions(chunk("!"), {"end": "end_turn"}))
    assert again.stop_reason == "end_turn"
    assert wire.violations == []


async def test_fs_request_without_the_client_capability(tmp_path: Path) -> None:
    client = RecordingClient(files={"/tmp/project/a.txt": "secret"})
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, scripted(tmp_path)) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)  # no fs capabilities
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        read = {
            "request": {
                "session_id": "$SID",
                "method": "fs/read_text_file",
                "params": {"path": "/tmp/project/a.txt"},
            }
        }
        result = await conn.prompt(session_id=sid, prompt=actions(read, {"end": "end_turn"}))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    response = orjson.loads(client.text(sid))
    assert response["error"]["code"] == -32601
    assert "fs.readTextFile" in response["error"]["message"]


async def test_stderr_never_reaches_the_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge.agents.exec.child")
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        exec_server(tmp_path, example("runtime_agent.py"), dialect="runtime") as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        await conn.prompt(session_id=session.session_id, prompt=text("hi"))
    assert "runtime_agent started" in caplog.text
    assert all("runtime_agent started" not in str(m) for m in wire.incoming)


async def test_serve_stdio_with_the_runtime_example(tmp_path: Path) -> None:
    """What an editor runs: ``acp-bridge serve --stdio --agent exec:… --dialect runtime``."""
    command = [
        sys.executable,
        "-m",
        "acp_bridge",
        "serve",
        "--stdio",
        "--event-log",
        f"sqlite:{tmp_path / 'log.sqlite'}",
        "--agent",
        f"exec:{shlex.join(example('runtime_agent.py'))}",
        "--dialect",
        "runtime",
    ]
    env = {**os.environ, "EXAMPLE_AGENT_DELAY": "0", "XDG_DATA_HOME": str(tmp_path / "data")}
    client = RecordingClient()
    wire = WireValidator()
    async with (
        asyncio.timeout(TIMEOUT),
        spawn_agent_process(client, *command, env=env, observers=[wire]) as (conn, _),  # type: ignore[arg-type]
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(session_id=session.session_id, prompt=text("hello"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.text(session.session_id).startswith("You said: 'hello'.")
