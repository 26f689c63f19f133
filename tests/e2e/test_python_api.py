"""The public Python API end to end: the example agent behind a real ``BridgeServer``, driven by the
official ACP SDK client over a WebSocket (every agent message validated per method), the promises of
``import acp_bridge``, and ``docs/python-api.md`` kept in step with the code it shows.
"""

from __future__ import annotations

import ast
import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from acp.schema import ClientCapabilities, FileSystemCapabilities, TextContentBlock

import acp_bridge
from acp_bridge import (
    AgentMessageChunk,
    BridgeServer,
    FunctionBackend,
    ServerOptions,
    SessionContext,
    StopReason,
    emit_event,
)
from examples.python_agent import NotesAgent

from .sdk_support import RecordingClient, WireValidator, compacted, history, sdk_websocket_client

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "python-api.md"
EXAMPLE = REPO / "examples" / "python_agent.py"
CWD = "/tmp/notes-project"
NOTES = f"{CWD}/NOTES.md"
TIMEOUT = 10

FS = ClientCapabilities(fs=FileSystemCapabilities(read_text_file=True, write_text_file=True))


def prompt(text: str) -> list[TextContentBlock]:
    return [TextContentBlock(type="text", text=text)]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}")
    async with BridgeServer(NotesAgent(word_delay=0), options) as running:
        yield running


def tool_updates(client: RecordingClient, session_id: str) -> list[Any]:
    return [
        u
        for sid, u in client.updates
        if sid == session_id and u.session_update in ("tool_call", "tool_call_update")
    ]


async def open_session(conn: Any, wire: WireValidator, caps: ClientCapabilities | None = FS) -> str:
    init = await conn.initialize(protocol_version=1, client_capabilities=caps)
    assert init.agent_info.title == "acp-bridge (notes)"
    session = await conn.new_session(cwd=CWD, mcp_servers=[])
    return str(session.session_id)


# --- the example agent over a real socket ---------------------------------------------------------------


async def test_a_full_turn_with_a_permission_round_trip(server: BridgeServer) -> None:
    client = RecordingClient(permission="allow", files={NOTES: "- buy milk\n"})
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, client) as (conn, wire):
        sid = await open_session(conn, wire)
        result = await conn.prompt(session_id=sid, prompt=prompt("call mom"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.files[NOTES] == "- buy milk\n- call mom\n"
    assert client.text(sid) == (
        "Noted: “call mom”. I'll add it to NOTES.md if you allow it.\n"
        "Done: the note is in NOTES.md."
    )
    kinds = client.kinds(sid)
    assert kinds[0] == "agent_message_chunk"
    assert kinds.count("agent_message_chunk") > 5  # streamed, not one block
    tools = tool_updates(client, sid)
    assert [(u.session_update, u.status) for u in tools] == [
        ("tool_call", "pending"),
        ("tool_call_update", "completed"),
    ]
    assert tools[0].title == "append_note"
    assert tools[0].kind == "edit"
    assert tools[1].raw_output == {"path": NOTES, "content": "- buy milk\n- call mom\n"}
    [asked] = client.permission_requests
    assert asked.tool_call_id == tools[0].tool_call_id
    [diff] = asked.content
    assert (diff.path, diff.old_text, diff.new_text) == (NOTES, "- buy milk\n", client.files[NOTES])


async def test_a_rejected_edit_leaves_the_file_alone(server: BridgeServer) -> None:
    client = RecordingClient(permission="reject")
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, client) as (conn, wire):
        sid = await open_session(conn, wire)
        result = await conn.prompt(session_id=sid, prompt=prompt("call mom"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.files == {}
    [asked] = client.permission_requests
    assert asked.content[0].old_text is None  # a new file
    assert tool_updates(client, sid)[-1].status == "failed"
    assert client.text(sid).endswith("Fine, NOTES.md stays as it is.")


async def test_without_fs_capabilities_the_tool_call_fails_not_the_turn(
    server: BridgeServer,
) -> None:
    client = RecordingClient(permission="allow")
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, client) as (conn, wire):
        sid = await open_session(conn, wire, caps=None)
        result = await conn.prompt(session_id=sid, prompt=prompt("call mom"))
    assert result.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.permission_requests == []
    assert tool_updates(client, sid)[-1].status == "failed"
    assert "did not advertise 'fs.readTextFile'" in client.text(sid)


async def test_cancel_while_the_user_decides(server: BridgeServer) -> None:
    client = RecordingClient(permission="allow")
    client.hold_permission = asyncio.Event()
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, client) as (conn, wire):
        sid = await open_session(conn, wire)
        turn = asyncio.create_task(conn.prompt(session_id=sid, prompt=prompt("call mom")))
        await client.permission_asked.wait()
        await conn.cancel(session_id=sid)
        result = await turn
        client.hold_permission.set()
        assert result.stop_reason == "cancelled"
        # The session stays usable.
        client.hold_permission = None
        again = await conn.prompt(session_id=sid, prompt=prompt("call dad"))
    assert again.stop_reason == "end_turn"
    assert wire.violations == []
    assert client.files == {NOTES: "- call dad\n"}
    statuses: dict[str, list[str]] = {}
    for update in tool_updates(client, sid):
        statuses.setdefault(update.tool_call_id, []).append(update.status)
    # The cancelled turn closed its tool call before its `cancelled` answer.
    assert list(statuses.values()) == [["pending", "failed"], ["pending", "completed"]]


async def test_load_replays_the_turn(server: BridgeServer) -> None:
    live = RecordingClient(permission="allow")
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, live) as (conn, wire):
        sid = await open_session(conn, wire)
        await conn.prompt(session_id=sid, prompt=prompt("call mom"))
    loader = RecordingClient()
    async with asyncio.timeout(TIMEOUT), sdk_websocket_client(server.url, loader) as (conn, wire):
        await conn.initialize(protocol_version=1)
        await conn.load_session(cwd=CWD, session_id=sid, mcp_servers=[])
    assert wire.violations == []
    assert loader.permission_requests == []  # history, not a new turn

    assert history(loader.updates) == compacted(history(live.updates))
    users = [u.content.text for _, u in loader.updates if u.session_update == "user_message_chunk"]
    assert users == ["call mom"]


async def test_a_prompt_function_emitting_harn_style(tmp_path: Path) -> None:
    """The smallest agent, emitting through the process-wide ``emit_event`` as Harn code does."""

    async def hello(ctx: SessionContext, prompt: list[dict[str, Any]]) -> None:
        emit_event(AgentMessageChunk(session_id=ctx.session_id, content="hello from emit_event"))

    options = ServerOptions(port=0, event_log="memory")
    client = RecordingClient()
    async with (
        asyncio.timeout(TIMEOUT),
        BridgeServer(FunctionBackend(hello), options) as running,
        sdk_websocket_client(running.url, client) as (conn, wire),
    ):
        init = await conn.initialize(protocol_version=1)
        assert init.agent_info.title == "acp-bridge (hello)"
        session = await conn.new_session(cwd=CWD, mcp_servers=[])
        result = await conn.prompt(session_id=session.session_id, prompt=prompt("hi"))
    assert result.stop_reason == StopReason.END_TURN
    assert wire.violations == []
    assert client.text(session.session_id) == "hello from emit_event"


# --- the package's promises -----------------------------------------------------------------------------


def test_import_acp_bridge_is_cheap() -> None:
    code = (
        "import sys, acp_bridge\n"
        "heavy = sorted(m for m in ('pydantic', 'websockets', 'acp_bridge.events', "
        "'acp_bridge.app', 'acp_bridge.agents') if m in sys.modules)\n"
        "assert not heavy, heavy\n"
        "assert acp_bridge.__version__\n"
        "from acp_bridge import serve\n"
        "assert 'websockets' in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=TIMEOUT)


def test_every_public_name_resolves_and_is_documented() -> None:
    assert sorted(acp_bridge.__all__) == acp_bridge.__all__
    for name in acp_bridge.__all__:
        value = getattr(acp_bridge, name)
        if name != "__version__":
            assert (value.__doc__ or "").strip(), name
        assert f"`{name}" in DOC.read_text(), f"{name} is missing from docs/python-api.md"
    assert set(acp_bridge.__all__) <= set(dir(acp_bridge))
    assert acp_bridge.events.harn.ToolCall is acp_bridge.ToolCall
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = acp_bridge.nope  # type: ignore[attr-defined]


# --- the doc and the code it shows ----------------------------------------------------------------------


def fenced_block_after(marker: str) -> str:
    """The first ```python block after ``marker`` in the doc."""
    text = DOC.read_text()
    start = text.index(marker)
    match = re.compile(r"^```python\n(.*?)^```$", re.DOTALL | re.MULTILINE).search(text, start)
    assert match is not None, f"no python block after {marker!r}"
    return match[1]


def test_the_doc_quotes_the_example_verbatim() -> None:
    quoted = fenced_block_after("<!-- example: examples/python_agent.py -->")
    assert quoted == EXAMPLE.read_text(), (
        "docs/python-api.md quotes an outdated examples/python_agent.py: paste the file again"
    )


async def test_the_docs_fake_context_tests_pass() -> None:
    namespace: dict[str, Any] = {"__name__": "python_api_doc"}
    exec(compile(fenced_block_after("<!-- test: "), f"{DOC}", "exec"), namespace)
    tests = [value for name, value in namespace.items() if name.startswith("test_")]
    assert len(tests) == 2
    for test in tests:
        await test()


def test_every_python_block_in_the_doc_compiles() -> None:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(), re.DOTALL | re.MULTILINE)
    assert len(blocks) >= 5
    for block in blocks:
        # Top-level `await` appears in snippets of code that runs inside `async def main()`.
        compile(block, str(DOC), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
