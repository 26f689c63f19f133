"""Roles in the ACP layer: an observer may list, load and watch, and nothing else (decision 0010)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from acp_bridge.acp.roles import FORBIDDEN_CODE
from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.rpc.principal import Principal, Role
from tests.support.acp_client import ResponseError

from .conftest import BridgeHarness, ScriptedBackend

LAPTOP = Principal("laptop", Role.CONTROLLER)
DASHBOARD = Principal("dashboard", Role.OBSERVER)


async def test_an_observer_may_look_but_not_touch(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    async with (
        harness.client(principal=LAPTOP) as owner,
        harness.client(principal=DASHBOARD) as watcher,
    ):
        await owner.initialize()
        sid = await owner.new_session()
        await watcher.initialize()
        assert [s["sessionId"] for s in (await watcher.call("session/list", {}))["sessions"]] == [
            sid
        ]
        await watcher.call("session/resume", {"sessionId": sid, "cwd": "/tmp/project"})
        await watcher.call(
            "session/load", {"sessionId": sid, "cwd": "/tmp/project", "mcpServers": []}
        )
        forbidden = [
            ("session/new", {"cwd": "/tmp/project", "mcpServers": []}),
            ("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "hi"}]}),
            ("session/cancel", {"sessionId": sid}),
            ("session/set_mode", {"sessionId": sid, "modeId": "x"}),
            ("session/set_config_option", {"sessionId": sid, "configId": "x", "value": "y"}),
            ("session/close", {"sessionId": sid}),
        ]
        for method, params in forbidden:
            with pytest.raises(ResponseError) as caught:
                await watcher.call(method, params)
            assert caught.value.code == FORBIDDEN_CODE, method
            assert caught.value.data == {
                "reason": "forbidden",
                "method": method,
                "role": "observer",
            }
        assert backend.new_sessions == [sid]  # nothing of it reached the agent


async def test_an_observers_cancel_notification_does_not_stop_the_turn(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    running, release = asyncio.Event(), asyncio.Event()

    async def slow(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        running.set()
        await release.wait()
        return StopReason.END_TURN

    backend.script = slow
    async with (
        harness.client(principal=LAPTOP) as owner,
        harness.client(principal=DASHBOARD) as watcher,
    ):
        await owner.initialize()
        sid = await owner.new_session()
        await watcher.initialize()
        await watcher.call("session/resume", {"sessionId": sid, "cwd": "/tmp/project"})
        turn = asyncio.create_task(owner.prompt(sid, "go"))
        async with asyncio.timeout(5):
            await running.wait()
        await watcher.notify("session/cancel", {"sessionId": sid})
        # The notification is read before this request on the same connection.
        await watcher.call("session/list", {})
        release.set()
        async with asyncio.timeout(5):
            assert await turn == {"stopReason": "end_turn"}
        assert backend.cancels == 0


async def test_an_observers_mcp_servers_do_not_reconfigure_the_session(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _ = scripted
    servers = [{"name": "evil", "command": "/bin/evil", "args": [], "env": []}]
    async with (
        harness.client(principal=LAPTOP) as owner,
        harness.client(principal=DASHBOARD) as watcher,
    ):
        await owner.initialize()
        sid = await owner.new_session()
        await watcher.initialize()
        await watcher.call("session/load", {"sessionId": sid, "cwd": "/", "mcpServers": servers})
        session = harness.bridge.sessions.live(sid)
        assert session is not None
        assert session.mcp_servers == ()
