"""``session_info_update`` after turns, and ``usage_update`` end to end (decision 0027)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.events import harn as h

from .conftest import BridgeHarness, ScriptedBackend, chunk, make_harness


def kinds(updates: list[dict[str, Any]]) -> list[str]:
    return [u["sessionUpdate"] for u in updates]


async def test_session_info_update_names_the_title_and_activity(demo: BridgeHarness) -> None:
    async with demo.client() as owner, demo.client() as watcher:
        await owner.initialize()
        await watcher.initialize()
        sid = await owner.new_session("/work/i")
        await watcher.call("session/load", {"sessionId": sid, "cwd": "/work/i"})
        response = await owner.request(
            "session/prompt",
            {"sessionId": sid, "prompt": [{"type": "text", "text": "/echo Rename the parser"}]},
        )
        # Sent before the answer that ends the turn, and to every client of the session.
        info = [m for m in owner.received if m.get("method") == "session/update"][-1]
        assert owner.received.index(info) < owner.index_of_response(response["id"])
        update = info["params"]["update"]
        assert update["sessionUpdate"] == "session_info_update"
        assert update["title"] == "/echo Rename the parser"
        listed = (await owner.call("session/list", {}))["sessions"][0]
        assert update["updatedAt"] == listed["updatedAt"]
        seen = await watcher.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "session_info_update"
            )
        )
        assert seen["params"]["update"] == update
        await owner.prompt(sid, "/echo again")
        infos = [u for u in owner.updates(sid) if u["sessionUpdate"] == "session_info_update"]
        assert len(infos) == 2
        assert infos[1]["title"] == update["title"]  # the first prompt named it for good
        assert infos[1]["updatedAt"] >= update["updatedAt"]


async def counting_turn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    chunk(ctx, "thinking")
    ctx.emit(
        h.IterationEnd(
            session_id=ctx.session_id,
            iteration=1,
            iteration_info={"input_tokens": 3000, "output_tokens": 200},
        )
    )
    return StopReason.END_TURN


async def test_usage_update_reaches_strict_clients_and_replays(tmp_path: Path) -> None:
    backend = ScriptedBackend()
    backend.script = counting_turn
    async with make_harness(tmp_path, backend, context_window=32_000) as harness:
        async with harness.client() as client:
            await client.initialize()
            sid = await client.new_session()
            await client.prompt(sid, "count")
            usage = [u for u in client.updates(sid) if u["sessionUpdate"] == "usage_update"]
            assert usage == [{"sessionUpdate": "usage_update", "used": 3200, "size": 32_000}]
        async with harness.client() as loader:
            await loader.initialize()
            await loader.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
            replayed = [u for u in loader.updates(sid) if u["sessionUpdate"] == "usage_update"]
            assert [(u["used"], u["size"]) for u in replayed] == [(3200, 32_000)]


async def test_no_usage_update_without_a_context_window(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = counting_turn
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "count")
        assert "usage_update" not in kinds(client.updates(sid))
