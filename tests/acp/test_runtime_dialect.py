"""A backend speaking the runtime dialect: its events go through the registry, log and replay too."""

from __future__ import annotations

from typing import Any

from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.events import SessionRuntimeEvent
from acp_bridge.events.runtime import parse_runtime_event
from acp_bridge.sinks import agent_events_topic
from tests.support.acp_client import declaring

from .conftest import BridgeHarness, ScriptedBackend

RUN = "3f2b8c1e-5d6a-4e7f-9a0b-1c2d3e4f5a6b"
TS = "2026-06-25T15:12:51.123456789Z"


def ev(variant: str, **fields: Any) -> Any:
    return parse_runtime_event({variant: {"run_id": RUN, **fields, "timestamp": TS}})


async def runtime_turn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
    for event in [
        ev(
            "RunStarted", session_id="7c9e6679-7425-40de-944b-e07fc1f90ae7", provider="p", model="m"
        ),
        ev("TextDelta", delta="Checking."),
        ev("ToolCallCompleted", call={"id": "c1", "name": "get_time", "arguments": {}}),
        ev(
            "ToolExecutionFinished",
            call_id="c1",
            tool_name="get_time",
            result={"Success": {"output": "12:00"}},
            duration_ms=3,
        ),
        ev("RunCompleted", finish_reason="stop", iterations=1),
    ]:
        ctx.emit(SessionRuntimeEvent(ctx.session_id, event))
    return StopReason.END_TURN


async def test_runtime_turn_live_and_replayed(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.script = runtime_turn
    async with harness.client() as client:
        await client.initialize(declaring("_acp_bridge/runtimeEvent"))
        sid = await client.new_session()
        assert await client.prompt(sid, "what time is it") == {"stopReason": "end_turn"}
        live = [
            u["sessionUpdate"]
            for u in client.updates(sid)
            if u["sessionUpdate"] not in ("available_commands_update", "session_info_update")
        ]
        kinds = [
            m["params"]["kind"]
            for m in client.received
            if m.get("method") == "_acp_bridge/runtimeEvent"
        ]
    assert live == ["agent_message_chunk", "tool_call", "tool_call_update"]
    assert kinds == ["run_started", "run_completed"]
    records = harness.bridge.log.read_range(agent_events_topic(sid))
    assert [r.record.kind for r in records][-5:] == [
        "runtime.RunStarted",
        "runtime.TextDelta",
        "runtime.ToolCallCompleted",
        "runtime.ToolExecutionFinished",
        "runtime.RunCompleted",
    ]
    async with harness.client() as loader:
        await loader.initialize()
        await loader.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        replayed = [u["sessionUpdate"] for u in loader.updates(sid)]
    assert replayed == [
        "user_message_chunk",
        "agent_message_chunk",
        "tool_call",
        "tool_call_update",
    ]
