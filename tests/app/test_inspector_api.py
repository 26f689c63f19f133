"""Issue 14: the inspector's read-only API and live stream, over real sockets on 127.0.0.1 port 0.

A gated backend holds its turn with a pending tool call until the test lets it finish, so "while a
turn runs" is a state the test controls, not a race it hopes to win.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import InvalidStatus

from acp_bridge.agents.base import BaseBackend, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.app.inspector.conformance import StrictChecker, WireRules
from acp_bridge.app.inspector.redact import REDACTED, redact
from acp_bridge.events import harn as h
from acp_bridge.events.harn_types import ToolCallStatus
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import RawAcpClient
from tests.support.http import http_get

TOKEN = "inspector-secret-1"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
TIMEOUT = 10.0


class GatedBackend(BaseBackend):
    """One turn: a message, a pending tool call, then (once ``gate`` opens) the tool call completes."""

    def __init__(self) -> None:
        super().__init__(name="gated")
        self.gate = asyncio.Event()

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        sid = ctx.session_id
        ctx.emit(h.AgentMessageChunk(session_id=sid, content="Editing "))
        ctx.emit(h.AgentMessageChunk(session_id=sid, content="a.txt."))
        ctx.emit(
            h.ToolCall(
                session_id=sid,
                tool_call_id="edit-1",
                tool_name="edit",
                status=ToolCallStatus.PENDING,
                raw_input={"path": "a.txt", "env": {"API_KEY": "sk-not-for-eyes"}},
            )
        )
        async with asyncio.timeout(TIMEOUT):
            await self.gate.wait()
        self.gate.clear()
        ctx.emit(
            h.ToolCallUpdate(
                session_id=sid,
                tool_call_id="edit-1",
                tool_name="edit",
                status=ToolCallStatus.COMPLETED,
                raw_output={"diff": "--- a/a.txt\n+++ b/a.txt\n@@ -1 +1 @@\n-a\n+b\n"},
            )
        )
        return StopReason.END_TURN


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BridgeServer]:
    options = ServerOptions(port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}", token=TOKEN)
    async with BridgeServer(GatedBackend(), options) as running:
        yield running


@asynccontextmanager
async def acp_client(server: BridgeServer) -> AsyncIterator[RawAcpClient]:
    async with (
        connect(server.url, additional_headers=AUTH) as ws,
        RawAcpClient(WebSocketTransport(ws)) as acp,
    ):
        await acp.initialize()
        yield acp


def backend_of(server: BridgeServer) -> GatedBackend:
    assert isinstance(server.backend, GatedBackend)
    return server.backend


async def get_json(server: BridgeServer, path: str, **headers: str) -> tuple[int, Any]:
    status, _, body = await http_get(server.websocket.port, path, headers={**AUTH, **headers})
    return status, orjson.loads(body)


def stream_url(server: BridgeServer) -> str:
    return f"ws://127.0.0.1:{server.websocket.port}/inspect/stream"


class StreamLog:
    """Every message an ``/inspect/stream`` socket received, searchable (the order of a sessions
    message and an events message sent for the same change is not part of the contract)."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.messages: list[dict[str, Any]] = []

    async def find(self, kind: str, predicate: Any = None) -> dict[str, Any]:
        """The first message so far, or to come, of type ``kind`` matching ``predicate``."""
        async with asyncio.timeout(TIMEOUT):
            seen = 0
            while True:
                for message in self.messages[seen:]:
                    if message["type"] == kind and (predicate is None or predicate(message)):
                        return message
                seen = len(self.messages)
                self.messages.append(orjson.loads(await self.ws.recv()))


async def test_a_finished_turn_reads_back_as_sessions_records_and_export(
    server: BridgeServer,
) -> None:
    async with acp_client(server) as acp:
        sid = await acp.new_session()
        turn = asyncio.create_task(acp.prompt(sid, "edit a.txt"))
        await acp.wait_for(
            lambda m: m.get("params", {}).get("update", {}).get("toolCallId") == "edit-1"
        )
        backend_of(server).gate.set()
        assert (await turn)["stopReason"] == "end_turn"

        status, listing = await get_json(server, "/inspect/api/sessions")
        assert status == 200
        [session] = listing["sessions"]
        assert session["sessionId"] == sid
        assert session["title"] == "edit a.txt"
        assert session["running"] is False
        assert session["eventCount"] == 5  # the prompt, two chunks, the tool call, its update
        [client] = session["clients"]
        assert client["name"] == "token"
        assert client["role"] == "controller"
        assert client["clientInfo"]["name"] == "raw-test"

        status, page = await get_json(server, f"/inspect/api/sessions/{sid}/events")
        assert status == 200
        assert page["next"] is None
        records = page["events"]
        assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
        assert [r["kind"] for r in records] == [
            "user_message",
            "agent_message_chunk",
            "agent_message_chunk",
            "tool_call",
            "tool_call_update",
        ]
        prompt_in, echo_out = records[0]["wire"]
        assert prompt_in["direction"] == "in"
        assert prompt_in["method"] == "session/prompt"
        assert echo_out["direction"] == "out"
        assert echo_out["update"] == "user_message_chunk"
        for record in records:
            for wire in record["wire"]:
                assert wire["problem"] is None, wire
                shown = orjson.dumps(wire["message"])
                if REDACTED.encode() not in shown:  # the size is the real message's
                    assert wire["size"] == len(shown)
                if wire["direction"] == "out":
                    assert wire["message"]["params"]["_meta"]["harn"]["eventId"] == record["id"]
        # Secrets in events never leave the bridge.
        tool_call = records[3]["wire"][0]["message"]["params"]["update"]
        assert tool_call["rawInput"]["env"] == REDACTED
        assert "sk-not-for-eyes" not in orjson.dumps(page).decode()

        status, after = await get_json(
            server, f"/inspect/api/sessions/{sid}/events?after=3&limit=1"
        )
        assert [r["id"] for r in after["events"]] == [4]
        assert after["next"] == 4

        status, headers, body = await http_get(
            server.websocket.port, f"/inspect/api/sessions/{sid}/export", headers=AUTH
        )
        assert status == 200
        assert headers["content-type"] == "application/x-ndjson"
        assert "attachment" in headers["content-disposition"]
        lines = [orjson.loads(line) for line in body.splitlines()]
        assert [line["eventId"] for line in lines] == [1, 2, 3, 4, 5]
        assert lines[0]["event"]["type"] == "user_message"
        assert b"sk-not-for-eyes" not in body


async def test_the_stream_shows_a_running_turn_live(server: BridgeServer) -> None:
    async with acp_client(server) as acp:
        sid = await acp.new_session()
        async with connect(
            stream_url(server),
            subprotocols=[f"acp.bearer.{TOKEN}"],  # type: ignore[list-item]
            origin=f"http://127.0.0.1:{server.websocket.port}",  # type: ignore[arg-type]
        ) as ws:
            stream = StreamLog(ws)
            first = await stream.find("sessions")
            assert [s["sessionId"] for s in first["sessions"]] == [sid]
            await ws.send(orjson.dumps({"type": "watch", "sessionId": sid, "after": 0}).decode())

            turn = asyncio.create_task(acp.prompt(sid, "edit a.txt"))
            running = await stream.find("sessions", lambda m: m["sessions"][0]["running"])
            assert running["sessions"][0]["sessionId"] == sid

            def has(kind: str) -> Any:
                return lambda m: any(r["kind"] == kind for r in m["events"])

            pending = await stream.find("events", has("tool_call"))
            [tool_call] = [r for r in pending["events"] if r["kind"] == "tool_call"]
            assert tool_call["wire"][0]["message"]["params"]["update"]["status"] == "pending"

            backend_of(server).gate.set()
            done = await stream.find("events", has("tool_call_update"))
            [update] = [r for r in done["events"] if r["kind"] == "tool_call_update"]
            assert update["wire"][0]["message"]["params"]["update"]["status"] == "completed"
            assert update["id"] == 5
            await turn
            await stream.find("sessions", lambda m: not m["sessions"][0]["running"])


async def test_credentials_are_those_of_the_acp_endpoint(server: BridgeServer) -> None:
    port = server.websocket.port
    status, headers, _ = await http_get(port, "/inspect/api/sessions")
    assert status == 401
    assert headers["www-authenticate"] == "Bearer"
    status, _, _ = await http_get(
        port, "/inspect/api/sessions", headers={"Authorization": "Bearer wrong-token"}
    )
    assert status == 401
    with pytest.raises(InvalidStatus) as refused:
        async with connect(stream_url(server)):
            pass
    assert refused.value.response.status_code == 401
    assert refused.value.response.headers["WWW-Authenticate"] == "Bearer"
    # The token is never read from the URL.
    status, _, _ = await http_get(port, f"/inspect/api/sessions?token={TOKEN}")
    assert status == 401


async def test_the_page_is_public_same_origin_only_and_loads_nothing_from_elsewhere(
    server: BridgeServer,
) -> None:
    port = server.websocket.port
    status, headers, body = await http_get(port, "/inspect")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"inspector.js" in body
    csp = headers["content-security-policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert headers["x-frame-options"] == "DENY"
    for name in ("inspector.js", "inspector.css"):
        status, _, _ = await http_get(port, f"/inspect/static/{name}")
        assert status == 200
    status, _, _ = await http_get(port, "/inspect/static/..%2F__init__.py")
    assert status == 404
    status, headers, body = await http_get(port, "/inspect", "HEAD")
    assert status == 200
    assert int(headers["content-length"]) > 0
    assert body == b""

    # Another site's page may neither read the API nor open the stream.
    evil = {"Origin": "http://evil.example", **AUTH}
    status, _, _ = await http_get(port, "/inspect/api/sessions", headers=evil)
    assert status == 403
    status, _, _ = await http_get(
        port, "/inspect/api/sessions", headers={"Sec-Fetch-Site": "cross-site", **AUTH}
    )
    assert status == 403
    with pytest.raises(InvalidStatus) as refused:
        async with connect(
            stream_url(server),
            subprotocols=[f"acp.bearer.{TOKEN}"],  # type: ignore[list-item]
            origin="http://evil.example",  # type: ignore[arg-type]
        ):
            pass
    assert refused.value.response.status_code == 403
    # The page's own origin passes, over TLS too (a proxy in front that forwards Host).
    for scheme in ("http", "https"):
        own = {"Origin": f"{scheme}://127.0.0.1:{port}", "Sec-Fetch-Site": "same-origin", **AUTH}
        status, _, _ = await http_get(port, "/inspect/api/sessions", headers=own)
        assert status == 200
    # Following a link to the page is fine: it holds nothing until given a token.
    status, _, _ = await http_get(
        port, "/inspect", headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate"}
    )
    assert status == 200
    # A rebound DNS name is refused before anything else.
    status, _, _ = await http_get(port, "/inspect", host="evil.example")
    assert status == 421


async def test_open_on_loopback_without_a_token(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log="memory")
    async with BridgeServer(GatedBackend(), options) as server:
        status, listing = await get_json(server, "/inspect/api/sessions")
        assert status == 200
        assert listing["sessions"] == []
        status, _missing = await get_json(server, "/inspect/api/sessions/nope/events")
        assert status == 404


async def test_the_inspector_can_be_switched_off(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log="memory", inspector=False)
    async with BridgeServer(GatedBackend(), options) as server:
        status, _, _ = await http_get(server.websocket.port, "/inspect")
        assert status == 404


class OrphanUpdateBackend(BaseBackend):
    """A backend that updates a tool call it never announced (the translator passes it through)."""

    def __init__(self) -> None:
        super().__init__(name="orphan")

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        ctx.emit(
            h.ToolCallUpdate(
                session_id=ctx.session_id,
                tool_call_id="ghost",
                tool_name="edit",
                status=ToolCallStatus.COMPLETED,
            )
        )
        return StopReason.END_TURN


async def test_a_message_a_rule_forbids_is_flagged_in_the_records(tmp_path: Path) -> None:
    options = ServerOptions(port=0, event_log="memory")
    async with (
        BridgeServer(OrphanUpdateBackend(), options) as server,
        connect(server.url) as ws,
        RawAcpClient(WebSocketTransport(ws)) as acp,
    ):
        await acp.initialize()
        sid = await acp.new_session()
        await acp.prompt(sid, "go")
        status, page = await get_json(server, f"/inspect/api/sessions/{sid}/events")
        assert status == 200
        [update] = [r for r in page["events"] if r["kind"] == "tool_call_update"]
        assert update["wire"][0]["problem"] == "tool_call_update before the tool_call of ghost"


def test_secret_looking_keys_are_masked_and_counts_are_not() -> None:
    masked = redact(
        {
            "env": {"HOME": "/root"},
            "headers": [{"name": "x", "value": "y"}],
            "token": "t",
            "apiKey": "k",
            "input_tokens": 5,
            "nested": [{"password": "p", "path": "a.txt"}],
        }
    )
    assert masked == {
        "env": REDACTED,
        "headers": REDACTED,
        "token": REDACTED,
        "apiKey": REDACTED,
        "input_tokens": 5,
        "nested": [{"password": REDACTED, "path": "a.txt"}],
    }


def test_strict_invalid_and_rule_breaking_messages_are_flagged_with_a_reason() -> None:
    checker = StrictChecker()
    bogus = {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {"sessionId": "s", "update": {"sessionUpdate": "harn_custom", "x": 1}},
    }
    problem = checker.problem(bogus, inbound=False)
    assert problem is not None
    assert problem.startswith("SessionNotification")
    good = {
        "jsonrpc": "2.0",
        "method": "session/update",
        "params": {
            "sessionId": "s",
            "update": {
                "sessionUpdate": "agent_message_chunk",
                "content": {"type": "text", "text": "hi"},
            },
        },
    }
    assert checker.problem(good, inbound=False) is None
    assert (
        checker.problem({"jsonrpc": "2.0", "method": "_x/y", "params": {}}, inbound=False) is None
    )
    assert "not a method" in (
        checker.problem({"jsonrpc": "2.0", "method": "nope"}, inbound=False) or ""
    )

    rules = WireRules()

    def update(kind: str) -> dict[str, Any]:
        body = {"sessionUpdate": kind, "toolCallId": "t1", "title": "t"}
        return {"jsonrpc": "2.0", "method": "session/update", "params": {"update": body}}

    assert (
        rules.problem(update("tool_call_update")) == "tool_call_update before the tool_call of t1"
    )
    assert rules.problem(update("tool_call_update")) is None
    rules = WireRules()
    assert rules.problem(update("tool_call")) is None
    assert rules.problem(update("tool_call")) == "tool call t1 announced twice"
