"""Shared sessions in the ACP layer: permission requests to every controller (decision 0011)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import PermissionOption, SessionContext, StopReason
from acp_bridge.events import harn as h
from acp_bridge.events.harn_types import ToolCallStatus
from acp_bridge.rpc.principal import Principal, Role
from tests.support.acp_client import ClientScript, RawAcpClient, declaring

from .conftest import BridgeHarness, ScriptedBackend, chunk, make_harness

OPTIONS = [
    PermissionOption("allow", "Allow", "allow_once"),
    PermissionOption("reject", "Reject", "reject_once"),
]
LAPTOP = Principal("laptop", Role.CONTROLLER)
PHONE = Principal("phone", Role.CONTROLLER)
DASHBOARD = Principal("dashboard", Role.OBSERVER)
HOLD = ClientScript(permission="hold")


async def edit_with_permission(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    """A tool call behind a permission request; its outcome says what the agent was told."""
    sid = ctx.session_id
    ctx.emit(
        h.ToolCall(
            session_id=sid, tool_call_id="t1", tool_name="edit", status="pending", raw_input={}
        )
    )
    outcome = await ctx.request_permission({"toolCallId": "t1", "title": "Edit a.txt"}, OPTIONS)
    status = ToolCallStatus.COMPLETED if outcome.allowed else ToolCallStatus.FAILED
    ctx.emit(h.ToolCallUpdate(session_id=sid, tool_call_id="t1", tool_name="edit", status=status))
    chunk(ctx, f"outcome: {outcome.option_id or 'cancelled'}")
    return StopReason.END_TURN


def permission_requests(client: RawAcpClient) -> list[dict[str, Any]]:
    return [m for m in client.received if m.get("method") == "session/request_permission"]


def requests_to(client: RawAcpClient) -> list[dict[str, Any]]:
    """Every server→client request the client received."""
    return [m for m in client.received if "method" in m and "id" in m]


async def test_every_controller_is_asked_and_the_first_answer_decides(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = edit_with_permission
    async with (
        harness.client(principal=LAPTOP, script=HOLD) as laptop,
        harness.client(principal=PHONE, script=HOLD) as phone,
        harness.client(principal=DASHBOARD) as watcher,
    ):
        await laptop.initialize(declaring("_harn/*"))  # to be told the outcome
        sid = await laptop.new_session()
        for other in (phone, watcher):
            await other.initialize()
            await other.call("session/resume", {"sessionId": sid, "cwd": "/tmp/project"})
        turn = asyncio.create_task(laptop.prompt(sid, "edit"))
        on_laptop = await laptop.wait_for(lambda m: m.get("method") == "session/request_permission")
        on_phone = await phone.wait_for(lambda m: m.get("method") == "session/request_permission")
        await phone.respond(
            on_phone["id"], {"outcome": {"outcome": "selected", "optionId": "reject"}}
        )
        withdrawn = await laptop.wait_for(
            lambda m: m.get("method") == "$/cancel_request", timeout=1
        )
        assert withdrawn["params"] == {"requestId": on_laptop["id"]}
        await laptop.respond(
            on_laptop["id"], {"outcome": {"outcome": "selected", "optionId": "allow"}}
        )
        async with asyncio.timeout(5):
            assert await turn == {"stopReason": "end_turn"}
        assert requests_to(watcher) == []
        final = [u for u in laptop.updates(sid) if u["sessionUpdate"] == "tool_call_update"]
        assert final[-1]["status"] == "failed"  # the phone's reject, not the laptop's late allow
        outcome = await laptop.wait_for(
            lambda m: (
                m.get("method") == "_harn/agentEvent" and m["params"]["kind"] == "control_outcome"
            )
        )
        assert outcome["params"]["actor"]["name"] == "phone"

    # The outcome is history: a later load replays it.
    async with harness.client(principal=LAPTOP) as later:
        await later.initialize(declaring("_harn/*"))
        await later.call("session/load", {"sessionId": sid, "cwd": "/", "mcpServers": []})
        replayed = [m for m in later.received if m.get("method") == "_harn/agentEvent"]
        assert [m["params"]["metadata"]["decision"] for m in replayed] == [
            {"outcome": "selected", "optionId": "reject"}
        ]


async def test_a_controller_that_loads_while_a_request_is_pending_is_asked_after_its_response(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend()
    backend.script = edit_with_permission
    async with make_harness(tmp_path, backend, permission_timeout=30) as harness:
        async with harness.client(principal=LAPTOP, script=HOLD) as laptop:
            await laptop.initialize()
            sid = await laptop.new_session()
            turn = asyncio.create_task(
                laptop.request(
                    "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "go"}]}
                )
            )
            await laptop.wait_for(lambda m: m.get("method") == "session/request_permission")
        # The laptop is gone (its prompt will never be answered to it); the turn waits for a
        # controller instead of failing the request.
        with pytest.raises(ConnectionError):
            await turn
        async with harness.client(principal=PHONE) as phone:
            await phone.initialize()
            response = await phone.request(
                "session/load", {"sessionId": sid, "cwd": "/", "mcpServers": []}
            )
            request = await phone.wait_for(
                lambda m: m.get("method") == "session/request_permission"
            )
            assert phone.received.index(request) > phone.received.index(response)
            done = await phone.wait_for(
                lambda m: (
                    m.get("method") == "session/update"
                    and m["params"]["update"].get("sessionUpdate") == "tool_call_update"
                    and m["params"]["update"].get("status") == "completed"
                )
            )
            assert done


async def test_with_no_controller_the_request_times_out_as_cancelled(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    told: list[str | None] = []
    answered = asyncio.Event()

    async def ask(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        outcome = await ctx.request_permission({"toolCallId": "t1", "title": "Edit"}, OPTIONS)
        told.append(outcome.option_id if not outcome.cancelled else "cancelled")
        answered.set()
        return StopReason.END_TURN

    backend.script = ask
    async with make_harness(tmp_path, backend, permission_timeout=0.1) as harness:
        async with harness.client(principal=LAPTOP, script=HOLD) as laptop:
            await laptop.initialize()
            sid = await laptop.new_session()
            asyncio.create_task(laptop.prompt(sid, "go"))  # noqa: RUF006 - the connection ends first
            await laptop.wait_for(lambda m: m.get("method") == "session/request_permission")
        async with asyncio.timeout(5):
            await answered.wait()
    assert told == ["cancelled"]
