"""``additionalDirectories``: accepted on new/load/resume, persisted, listed, given to backends."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.rpc.principal import Principal, Role

from .conftest import BridgeHarness, ScriptedBackend, make_harness

seen: list[tuple[str, ...]] = []


async def report_roots(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    seen.append(tuple(ctx.additional_directories))
    return StopReason.END_TURN


def new_params(*roots: str) -> dict[str, Any]:
    return {"cwd": "/work/app", "mcpServers": [], "additionalDirectories": list(roots)}


async def test_roots_reach_the_backend_the_list_and_a_restarted_bridge(tmp_path: Path) -> None:
    seen.clear()
    backend = ScriptedBackend()
    backend.script = report_roots
    async with make_harness(tmp_path, backend) as harness, harness.client() as client:
        await client.initialize()
        result = await client.call("session/new", new_params("/work/lib", "/work/docs"))
        sid = result["sessionId"]
        await client.prompt(sid, "go")
        listed = (await client.call("session/list", {}))["sessions"]
        assert listed[0]["additionalDirectories"] == ["/work/lib", "/work/docs"]
    backend = ScriptedBackend()
    backend.script = report_roots
    async with make_harness(tmp_path, backend) as harness, harness.client() as client:
        await client.initialize()
        listed = (await client.call("session/list", {}))["sessions"]
        assert listed[0]["additionalDirectories"] == ["/work/lib", "/work/docs"]
        # A load gives the complete new list.
        await client.call(
            "session/load",
            {"sessionId": sid, "cwd": "/work/app", "additionalDirectories": ["/work/other"]},
        )
        await client.prompt(sid, "again")
        listed = (await client.call("session/list", {}))["sessions"]
        assert listed[0]["additionalDirectories"] == ["/work/other"]
    assert seen == [("/work/lib", "/work/docs"), ("/work/other",)]


async def test_a_resume_without_roots_activates_none(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    seen.clear()
    backend.script = report_roots
    async with harness.client() as client:
        await client.initialize()
        sid = (await client.call("session/new", new_params("/work/lib")))["sessionId"]
        await client.call("session/resume", {"sessionId": sid, "cwd": "/work/app"})
        await client.prompt(sid, "go")
        listed = (await client.call("session/list", {}))["sessions"]
        assert "additionalDirectories" not in listed[0]
    assert seen == [()]


async def test_an_observer_does_not_change_the_roots(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _ = scripted
    async with (
        harness.client() as owner,
        harness.client(principal=Principal("eve", Role.OBSERVER)) as observer,
    ):
        await owner.initialize()
        await observer.initialize()
        sid = (await owner.call("session/new", new_params("/work/lib")))["sessionId"]
        await observer.call(
            "session/load", {"sessionId": sid, "cwd": "/work/app", "additionalDirectories": []}
        )
        listed = (await owner.call("session/list", {}))["sessions"]
        assert listed[0]["additionalDirectories"] == ["/work/lib"]


async def test_relative_roots_are_invalid_params(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _ = scripted
    async with harness.client() as client:
        await client.initialize()
        response = await client.request("session/new", new_params("lib"))
        assert response["error"]["code"] == -32602
        assert response["error"]["data"] == {"field": "additionalDirectories"}
        assert (await client.call("session/list", {}))["sessions"] == []
