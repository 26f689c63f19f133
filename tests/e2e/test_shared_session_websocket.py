"""Issue 11 end to end: three real WebSocket clients share one session through a permission request.

Two controllers (a strict ``laptop``, a Harn-profile ``phone``) and one observer (``dashboard``),
each authenticated by its own token from a ``--tokens`` file, on 127.0.0.1 port 0. Strict clients
validate every message against the ACP schema (``$/cancel_request`` included).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from acp_bridge.agents.base import BaseBackend, PermissionOption, SessionContext, StopReason
from acp_bridge.app import BridgeServer, ServerOptions
from acp_bridge.events import harn as h
from acp_bridge.events.harn_types import ToolCallStatus
from acp_bridge.transports.websocket import WebSocketTransport
from tests.support.acp_client import ClientScript, RawAcpClient, ResponseError

TOKENS = """
[[token]]
name = "laptop"
secret = "laptop-secret-1"
role = "controller"

[[token]]
name = "phone"
secret = "phone-secret-22"
role = "controller"

[[token]]
name = "dashboard"
secret = "dashboard-secret-333"
role = "observer"
"""
OPTIONS = [
    PermissionOption("allow", "Allow", "allow_once"),
    PermissionOption("reject", "Reject", "reject_once"),
]


class EditingBackend(BaseBackend):
    """One turn: a tool call behind a permission request, then what the agent was told."""

    def __init__(self) -> None:
        super().__init__(name="editing")

    async def prompt(self, ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        sid = ctx.session_id
        ctx.emit(
            h.ToolCall(
                session_id=sid,
                tool_call_id="edit-1",
                tool_name="edit",
                status=ToolCallStatus.PENDING,
                raw_input={"path": "a.txt"},
            )
        )
        outcome = await ctx.request_permission(
            {"toolCallId": "edit-1", "title": "Edit a.txt", "kind": "edit", "path": "a.txt"},
            OPTIONS,
        )
        status = ToolCallStatus.COMPLETED if outcome.allowed else ToolCallStatus.FAILED
        ctx.emit(
            h.ToolCallUpdate(session_id=sid, tool_call_id="edit-1", tool_name="edit", status=status)
        )
        ctx.emit(h.AgentMessageChunk(session_id=sid, content=f"told: {outcome.option_id}"))
        return StopReason.END_TURN


@asynccontextmanager
async def client(
    url: str, secret: str, *, harn: bool = False, hold: bool = True
) -> AsyncIterator[RawAcpClient]:
    headers = {"Authorization": f"Bearer {secret}"}
    script = ClientScript(permission="hold" if hold else "allow")
    async with (
        connect(url, additional_headers=headers) as ws,
        RawAcpClient(WebSocketTransport(ws), validate=not harn, script=script) as acp,
    ):
        caps: dict[str, Any] = {"_meta": {"harn": {}}} if harn else {}
        await acp.initialize(caps)
        yield acp


def server_requests(acp: RawAcpClient) -> list[dict[str, Any]]:
    return [m for m in acp.received if "method" in m and "id" in m]


def turn_updates(acp: RawAcpClient, sid: str) -> list[dict[str, Any]]:
    """The session/updates of the turn, minus the prompt's echo (the prompting client has it) and
    the session info that follows the turn."""
    return [
        u
        for u in acp.updates(sid)
        if u["sessionUpdate"] not in ("user_message_chunk", "session_info_update")
    ]


async def test_two_controllers_and_an_observer_share_a_turn_with_a_permission_request(
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens.toml"
    tokens.write_text(TOKENS)
    options = ServerOptions(
        port=0, event_log=f"sqlite:{tmp_path / 'events.sqlite'}", tokens_file=str(tokens)
    )
    async with (
        BridgeServer(EditingBackend(), options) as server,
        client(server.url, "laptop-secret-1") as laptop,
        client(server.url, "phone-secret-22", harn=True) as phone,
        client(server.url, "dashboard-secret-333") as dashboard,
    ):
        sid = await laptop.new_session()
        for other in (phone, dashboard):
            await other.call("session/load", {"sessionId": sid, "cwd": "/tmp", "mcpServers": []})

        # The observer may not prompt.
        with pytest.raises(ResponseError) as forbidden:
            await dashboard.prompt(sid, "let me drive")
        assert forbidden.value.data["reason"] == "forbidden"

        turn = asyncio.create_task(laptop.prompt(sid, "edit a.txt"))
        is_permission = lambda m: m.get("method") == "session/request_permission"  # noqa: E731
        on_laptop = await laptop.wait_for(is_permission)
        on_phone = await phone.wait_for(is_permission)
        # Each controller in its own profile: the Harn host gets the backend's tool call as is.
        assert on_phone["params"]["toolCall"] == {
            "toolCallId": "edit-1",
            "title": "Edit a.txt",
            "kind": "edit",
            "path": "a.txt",
        }
        assert "path" not in on_laptop["params"]["toolCall"]  # strict: a valid ToolCallUpdate

        # The phone answers first and decides; the laptop's copy is withdrawn within a second.
        await phone.respond(
            on_phone["id"], {"outcome": {"outcome": "selected", "optionId": "reject"}}
        )
        withdrawn = await laptop.wait_for(
            lambda m: m.get("method") == "$/cancel_request", timeout=1
        )
        assert withdrawn["params"] == {"requestId": on_laptop["id"]}
        # Its late answer changes nothing.
        await laptop.respond(
            on_laptop["id"], {"outcome": {"outcome": "selected", "optionId": "allow"}}
        )
        async with asyncio.timeout(10):
            assert await turn == {"stopReason": "end_turn"}

        updates = turn_updates(laptop, sid)
        edit = [u for u in updates if u["sessionUpdate"] == "tool_call_update"]
        assert edit[-1]["status"] == "failed"
        assert updates[-1]["content"] == {"type": "text", "text": "told: reject"}

        # The observer saw what the prompting controller saw, and was never asked anything.
        await dashboard.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"].get("content") == {"type": "text", "text": "told: reject"}
            )
        )
        assert turn_updates(dashboard, sid) == updates
        assert server_requests(dashboard) == []
        assert not [m for m in dashboard.received if m.get("method") == "$/cancel_request"]

        # The Harn host got Harn's wire format (event ids at the root) and the same outcome.
        harn_updates = [
            m
            for m in phone.received
            if m.get("method") == "session/update"
            # Session info is the session's state, not an event: no event id to stamp.
            and m["params"]["update"]["sessionUpdate"] != "session_info_update"
        ]
        assert all(m["_harn"]["sessionId"] == sid for m in harn_updates)
        outcomes = [
            m["params"]
            for m in phone.received
            if m.get("method") == "_harn/agentEvent"
            and m["params"].get("kind") == "control_outcome"
        ]
        assert [(o["actor"]["name"], o["metadata"]["decision"]["optionId"]) for o in outcomes] == [
            ("phone", "reject")
        ]
