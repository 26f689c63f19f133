"""The ``acp:`` backend end to end: an agent on the official Python SDK as a real stdio child, the
official SDK client over a real WebSocket, every message the bridge sends validated per method."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from acp import RequestError
from acp.schema import ClientCapabilities, FileSystemCapabilities, TextContentBlock

from acp_bridge.agents.acp import AcpBackend
from acp_bridge.app import BridgeServer, ServerOptions

from .sdk_support import RecordingClient, history, sdk_websocket_client

AGENT = Path(__file__).resolve().parents[1] / "fixtures" / "sdk_stdio_agent.py"
CWD = "/tmp/project"
TIMEOUT = 20
FS = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))


def text(value: str) -> list[TextContentBlock]:
    return [TextContentBlock(type="text", text=value)]


class WatchingClient(RecordingClient):
    """A recording client that can wait until its updates satisfy a condition."""

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


def event_ids(incoming: list[dict[str, Any]], kind: str | None = None) -> list[int]:
    """The event ids of the ``session/update`` messages a client received (of one kind)."""
    return [
        m["params"]["_meta"]["harn"]["eventId"]
        for m in incoming
        if m.get("method") == "session/update"
        and (kind is None or m["params"]["update"]["sessionUpdate"] == kind)
    ]


def starts(tmp_path: Path) -> list[str]:
    path = tmp_path / "starts.txt"
    return path.read_text().splitlines() if path.exists() else []


@asynccontextmanager
async def acp_server(
    tmp_path: Path, **kwargs: Any
) -> AsyncIterator[tuple[BridgeServer, AcpBackend]]:
    backend = AcpBackend(
        [sys.executable, str(AGENT)],
        env={"SDK_AGENT_STARTS": str(tmp_path / "starts.txt")},
        **kwargs,
    )
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(backend, options) as server:
        yield server, backend


async def test_full_turn_with_permission_then_load_replays_every_update_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge")
    client = RecordingClient(permission="allow")
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, backend):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            init = await conn.initialize(protocol_version=1, client_capabilities=FS)
            caps = init.agent_capabilities
            assert caps is not None
            # The child's answer shapes the advertisement; load/resume/list are the bridge's own.
            assert caps.load_session is True
            assert caps.prompt_capabilities is not None
            assert caps.prompt_capabilities.image is True
            assert init.agent_info is not None
            assert "sdk-fixture-agent" in (init.agent_info.title or "")
            assert [m.id for m in init.auth_methods or []] == ["token"]
            await conn.authenticate(method_id="token")  # forwarded to the child
            with pytest.raises(RequestError) as refused:
                await conn.authenticate(method_id="nope")
            assert refused.value.code == -32602  # the child's own error
            session = await conn.new_session(cwd=CWD, mcp_servers=[])
            sid = session.session_id
            assert session.modes is not None
            assert session.modes.current_mode_id == "ask"
            await conn.set_session_mode(session_id=sid, mode_id="code")
            result = await conn.prompt(session_id=sid, prompt=text("tool"))
            assert result.stop_reason == "end_turn"
            second = await conn.prompt(session_id=sid, prompt=text("chunks 5"))
            assert second.stop_reason == "end_turn"
        assert wire.violations == []
        assert len(client.permission_requests) == 1
        assert client.text(sid) == "permission: allowc0 c1 c2 c3 c4 "
        assert client.kinds(sid)[:2] == ["tool_call", "tool_call_update"]
        assert backend.starts == 1

        loader = RecordingClient()
        async with sdk_websocket_client(server.url, loader) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(
                cwd=CWD,
                session_id=sid,
                mcp_servers=[],
                field_meta={"acp_bridge": {"replay": "exact"}},
            )
        assert wire.violations == []
        replayed = [u for u in history(loader.updates)]
        assert replayed == history(client.updates)
        ids = event_ids(wire.incoming)
        assert ids == sorted(set(ids))
        assert len(ids) == len(loader.updates)
    assert len(starts(tmp_path)) == 1
    # (stderr is read to its end once the server stopped the child)
    assert any(r.getMessage().endswith(": mode code") for r in caplog.records)


async def test_a_client_drops_mid_turn_and_another_loads_and_follows_live(tmp_path: Path) -> None:
    """3,000 updates; the first client leaves after the first few, the second loads while the
    child is paused halfway (SIGUSR1 resumes it) and sees the rest live: every update once, none
    missing, and the child started once."""
    count = 3000
    first = WatchingClient()
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, backend):
        async with sdk_websocket_client(server.url, first) as (conn, _):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            turn = asyncio.ensure_future(
                conn.prompt(session_id=sid, prompt=text(f"halves {count}"))
            )
            await first.wait_until(lambda: len(first.updates) >= 10)
        # The socket is gone; the turn goes on in the child.
        second = WatchingClient()
        async with sdk_websocket_client(server.url, second) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(
                cwd=CWD,
                session_id=sid,
                mcp_servers=[],
                field_meta={"acp_bridge": {"replay": "exact"}},
            )
            assert backend.pid is not None
            os.kill(backend.pid, signal.SIGUSR1)  # the child goes on with the second half
            await second.wait_until(lambda: second.text(sid).endswith(f"c{count - 1} "))
            assert wire.violations == []
        with pytest.raises(Exception):  # noqa: B017,PT011 - the dropped client's request is gone
            await turn
        assert second.text(sid) == "".join(f"c{i} " for i in range(count))
        ids = event_ids(wire.incoming, "agent_message_chunk")
        assert ids == list(range(ids[0], ids[0] + count))  # no gap, no duplicate
        live = [
            m
            for m in wire.incoming
            if m.get("method") == "session/update"
            and "replayed" not in m["params"]["update"].get("_meta", {}).get("harn", {})
        ]
        assert live  # the load happened mid-turn: the rest came live
        assert backend.starts == 1

        third = RecordingClient()
        async with sdk_websocket_client(server.url, third) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])  # compacted replay
            assert wire.violations == []
        assert third.text(sid) == second.text(sid)
    assert len(starts(tmp_path)) == 1


async def test_sigkill_mid_turn_fails_the_prompt_and_the_next_prompt_restarts_the_child(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge")
    client = WatchingClient()
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, backend):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            turn = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=text("wait")))
            await client.wait_until(lambda: client.text(sid) == "waiting")
            first_pid = backend.pid
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)
            with pytest.raises(RequestError) as info:
                await turn
            assert "killed by SIGKILL" in str(info.value)
            again = await conn.prompt(session_id=sid, prompt=text("hello again"))
            assert again.stop_reason == "end_turn"
            assert wire.violations == []
        assert client.text(sid) == "waitingecho: hello again"
        assert backend.starts == 2
        assert backend.pid not in (None, first_pid)
        assert any(
            "restarting the agent" in r.getMessage() and "SIGKILL" in r.getMessage()
            for r in caplog.records
        )
        health = server.bridge.health()["details"]["backend"]
        assert health["starts"] == 2
        assert "SIGKILL" in health["lastExit"]
    assert len(starts(tmp_path)) == 2


async def test_cancel_is_forwarded_and_the_turn_ends_cancelled(tmp_path: Path) -> None:
    client = WatchingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        acp_server(tmp_path) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
        turn = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=text("wait")))
        await client.wait_until(lambda: client.text(sid) == "waiting")
        await conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        assert wire.violations == []


async def test_fs_request_the_client_cannot_serve_gets_an_error_not_a_hang(tmp_path: Path) -> None:
    client = RecordingClient(files={"/tmp/project/a.txt": "alpha"})
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, _):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)  # no fs capability
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            await conn.prompt(session_id=sid, prompt=text("read /tmp/project/a.txt"))
            assert wire.violations == []
        assert client.text(sid) == "read failed: -32601"

        capable = RecordingClient(files={"/tmp/project/a.txt": "alpha"})
        async with sdk_websocket_client(server.url, capable) as (conn, wire):
            await conn.initialize(protocol_version=1, client_capabilities=FS)
            await conn.resume_session(cwd=CWD, session_id=sid, mcp_servers=[])
            await conn.prompt(session_id=sid, prompt=text("read /tmp/project/a.txt"))
            assert wire.violations == []
        assert capable.text(sid) == "read: alpha"


async def test_an_invalid_update_is_counted_and_kept_from_strict_clients(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient()
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, backend):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            await conn.prompt(session_id=sid, prompt=text("bad"))
            assert wire.violations == []  # the strict client never saw the broken one
        assert client.text(sid) == "after the bad one"
        assert backend.invalid_messages == 1
        assert server.bridge.health()["details"]["backend"]["invalidMessages"] == 1
        assert any("not valid for the schema" in r.getMessage() for r in caplog.records)
        # Stored as it came: a Harn-profile client gets it exactly so.
        harn = RecordingClient()
        async with sdk_websocket_client(server.url, harn) as (conn, wire):
            await conn.initialize(
                protocol_version=1, client_capabilities=ClientCapabilities(field_meta={"harn": {}})
            )
            await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])
        raw = [
            m["params"]["update"]
            for m in wire.incoming
            if m.get("method") == "session/update"
            and m["params"]["update"].get("sessionUpdate") == "agent_message_chunk"
        ]
        assert [u.get("content") for u in raw][:1] == [None]


TS_SDK_DIR = os.environ.get("ACP_TS_SDK_DIR", "")
"""A directory whose ``node_modules`` holds ``@agentclientprotocol/sdk`` (``npm install`` there)."""


@pytest.mark.skipif(
    not (shutil.which("node") and TS_SDK_DIR),
    reason="set ACP_TS_SDK_DIR to a directory with @agentclientprotocol/sdk installed",
)
async def test_the_typescript_sdk_client_completes_turns_through_the_relay(tmp_path: Path) -> None:
    async with asyncio.timeout(TIMEOUT), acp_server(tmp_path) as (server, backend):
        node = await asyncio.create_subprocess_exec(
            "node",
            str(AGENT.parent / "ts_sdk_client.mjs"),
            TS_SDK_DIR,
            sys.executable,
            server.url,
            stdout=asyncio.subprocess.PIPE,
        )
        out, _ = await node.communicate()
        assert node.returncode == 0
        seen = json.loads(out)
        assert seen["stops"] == ["end_turn", "end_turn"]
        assert seen["permissions"] == 1
        assert seen["text"] == "permission: allowc0 c1 c2 "
        assert seen["kinds"][:2] == ["tool_call", "tool_call_update"]
        assert "sdk-fixture-agent" in seen["title"]
        assert backend.starts == 1


RAW_AGENT = AGENT.parent / "raw_acp_agent.py"


@asynccontextmanager
async def raw_server(
    tmp_path: Path, env: dict[str, str], **kwargs: Any
) -> AsyncIterator[tuple[BridgeServer, AcpBackend]]:
    backend = AcpBackend([sys.executable, str(RAW_AGENT)], env=env, **kwargs)
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(backend, options) as server:
        yield server, backend


async def test_an_update_right_behind_the_session_new_response_reaches_the_client(
    tmp_path: Path,
) -> None:
    client = WatchingClient()
    async with asyncio.timeout(TIMEOUT), raw_server(tmp_path, {}) as (server, backend):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            await client.wait_until(lambda: "available_commands_update" in client.kinds(sid))
            await conn.prompt(session_id=sid, prompt=text("hi"))
            assert wire.violations == []
        assert client.text(sid) == "echo: hi"
        assert backend.invalid_messages == 0


async def test_garbage_and_oversized_lines_are_dropped_counted_and_the_turn_goes_on(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = RecordingClient()
    limit = 64 * 1024
    env = {"RAW_AGENT_BIG": str(4 * limit)}
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, env, stream_limit=limit) as (server, _),
    ):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            result = await conn.prompt(session_id=sid, prompt=text("garbage"))
            assert result.stop_reason == "end_turn"
            assert wire.violations == []
        assert client.text(sid) == "ok"
        details = server.bridge.health()["details"]["backend"]
        assert details["oversizedLines"] == 1
        assert details["invalidMessages"] == 3  # not JSON, too long, a response to nothing
        messages = [r.getMessage() for r in caplog.records]
        assert any("not JSON" in m for m in messages)
        assert any("a response to no pending request" in m for m in messages)


async def test_an_agent_with_load_session_is_never_asked_to_replay_to_a_client(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """After a restart the bridge re-loads the session on the new process and drops what the
    agent replays; a client's load is answered from the log alone."""
    caplog.set_level(logging.INFO, logger="acp_bridge")
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, {"RAW_AGENT_LOAD": "1"}) as (server, backend),
    ):
        async with sdk_websocket_client(server.url, client) as (conn, wire):
            await conn.initialize(protocol_version=1)
            sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
            await conn.prompt(session_id=sid, prompt=text("one"))
            first_pid = backend.pid
            assert first_pid is not None
            os.kill(first_pid, signal.SIGKILL)
            await asyncio.wait_for(asyncio.shield(backend_exit(backend)), TIMEOUT)
            await conn.prompt(session_id=sid, prompt=text("two"))
            assert wire.violations == []
        assert client.text(sid) == "echo: oneecho: two"
        assert backend.starts == 2

        loader = RecordingClient()
        async with sdk_websocket_client(server.url, loader) as (conn, wire):
            await conn.initialize(protocol_version=1)
            await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])
            assert wire.violations == []
        assert loader.text(sid) == "echo: oneecho: two"  # once each, nothing the agent replayed
    # Read to its end once the server stopped the child: one load, the restart's, not the client's.
    stderr = [r.getMessage() for r in caplog.records if r.name == "acp_bridge.agents.acp.child"]
    assert sum("session/load raw-" in m for m in stderr) == 1


async def backend_exit(backend: AcpBackend) -> None:
    """Wait until the backend has seen its child go (the next use restarts it)."""
    link = backend._link  # the test watches the child it killed
    assert link is not None
    await link.child.exited


async def test_config_options_and_close_are_forwarded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge")
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, {}) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        sid = session.session_id
        [option] = session.config_options or []
        assert (option.id, option.current_value) == ("model", "fast")
        changed = await conn.set_config_option(session_id=sid, config_id="model", value="smart")
        assert [o.current_value for o in changed.config_options] == ["smart"]
        await conn.close_session(session_id=sid)
        assert wire.violations == []
    stderr = [r.getMessage() for r in caplog.records if r.name == "acp_bridge.agents.acp.child"]
    assert any(m.startswith("agent[") and "session/set_config_option raw-" in m for m in stderr)
    assert any("session/close raw-" in m for m in stderr)


async def test_updates_of_a_turn_answered_cancelled_before_the_agent_ended_it_are_dropped(
    tmp_path: Path,
) -> None:
    """ACP: nothing of a turn after its prompt response. An agent that ignores the cancel gets
    ``cancel_grace``; the turn is answered ``cancelled`` and what the agent writes for it later is
    dropped, while the next turn's updates go through."""
    client = WatchingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        acp_server(tmp_path, cancel_grace=0.2) as (server, backend),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
        turn = asyncio.ensure_future(conn.prompt(session_id=sid, prompt=text("stubborn")))
        await client.wait_until(lambda: client.text(sid) == "stubborn")
        await conn.cancel(session_id=sid)
        assert (await turn).stop_reason == "cancelled"
        assert backend.pid is not None
        os.kill(backend.pid, signal.SIGUSR1)  # now the agent writes "late" and ends the turn
        again = await conn.prompt(session_id=sid, prompt=text("next"))
        assert again.stop_reason == "end_turn"
        assert wire.violations == []
    assert client.text(sid) == "stubbornecho: next"


class FormClient(RecordingClient):
    """Answers every form elicitation with a branch name."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[str] = []

    async def create_elicitation(self, message: str, mode: Any, **_: Any) -> Any:
        from acp.schema import AcceptElicitationResponse

        self.forms.append(message)
        return AcceptElicitationResponse(action="accept", content={"branch": "fix-parser"})


async def test_an_agents_elicitation_reaches_a_client_that_can_show_it(tmp_path: Path) -> None:
    from acp.schema import ElicitationCapabilities, ElicitationFormCapabilities

    client = FormClient()
    able = ClientCapabilities(
        elicitation=ElicitationCapabilities(form=ElicitationFormCapabilities())
    )
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, {}) as (server, _),
        sdk_websocket_client(server.url, client, unstable=True) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1, client_capabilities=able)
        sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
        await conn.prompt(session_id=sid, prompt=text("elicit"))
        assert wire.violations == []
    assert client.forms == ["Which branch?"]
    assert client.text(sid) == "accept: fix-parser"


async def test_an_agents_elicitation_without_a_client_that_can_show_it_is_an_error(
    tmp_path: Path,
) -> None:
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, {}) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        sid = (await conn.new_session(cwd=CWD, mcp_servers=[])).session_id
        await conn.prompt(session_id=sid, prompt=text("elicit"))
        assert wire.violations == []
    assert client.text(sid).startswith("error: ")


async def test_additional_directories_reach_an_agent_that_advertised_them(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="acp_bridge")
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        raw_server(tmp_path, {}) as (server, _),
        sdk_websocket_client(server.url, client) as (conn, wire),
    ):
        await conn.initialize(protocol_version=1)
        sid = (
            await conn.new_session(
                cwd=CWD, mcp_servers=[], additional_directories=["/tmp/other-root"]
            )
        ).session_id
        await conn.prompt(session_id=sid, prompt=text("hi"))
        assert wire.violations == []
    stderr = [r.getMessage() for r in caplog.records if r.name == "acp_bridge.agents.acp.child"]
    assert any(m.endswith("dirs /tmp/other-root") for m in stderr), stderr
