"""A prompt's whole life under stress: torn-down handlers, per-prompt cancellation, shutdown, odd acks."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import PermissionOption, SessionContext, StopReason
from acp_bridge.sinks import agent_events_topic

from .conftest import (
    BridgeHarness,
    GatedFlushLog,
    ScriptedBackend,
    chunk,
    make_harness,
    prompt_request,
    prompt_then_cancel,
)


def transcript(received: list[dict[str, Any]], ids: tuple[Any, ...]) -> list[str]:
    """Chunk texts and ``<id>`` for the responses to ``ids``, in arrival order."""
    return [
        m["params"]["update"]["content"]["text"] if "method" in m else f"<{m['id']}>"
        for m in received
        if m.get("id") in ids
        or (
            m.get("method") == "session/update"
            and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        )
    ]


async def test_a_client_leaving_while_its_answer_waits_for_the_commit_does_not_wedge_the_session(
    tmp_path: Path,
) -> None:
    backend = ScriptedBackend()

    async def one(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        chunk(ctx, prompt[0]["text"])
        return StopReason.END_TURN

    backend.script = one
    async with make_harness(tmp_path, backend) as harness:
        log = GatedFlushLog(tmp_path / "gated.sqlite")
        harness.bridge.log = log
        try:
            async with harness.client() as leaving:
                await leaving.initialize()
                sid = await leaving.new_session()
                log.armed = True
                await leaving.send(prompt_request(7, sid, "a"))
                async with asyncio.timeout(5):
                    await log.flushing.wait()
            # Gone while its prompt handler waited for the commit: that handler is torn down.
            log.allow.set()
            async with harness.client() as other:
                await other.initialize()
                await other.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
                async with asyncio.timeout(5):  # far below the 30 s safety net
                    assert await other.prompt(sid, "b") == {"stopReason": "end_turn"}
        finally:
            log.close()


async def test_a_cancelled_queued_prompt_is_answered_before_the_next_turn_streams(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    running = asyncio.Event()

    async def script(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        text = prompt[0]["text"]
        if text == "A":
            running.set()
            await ctx.wait_cancelled()
            return StopReason.CANCELLED
        for i in range(3):
            chunk(ctx, f"{text}{i}")
            await asyncio.sleep(0)
        return StopReason.END_TURN

    backend.script = script
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.send(prompt_request("A", sid, "A"))
        async with asyncio.timeout(5):
            await running.wait()
        await client.send(prompt_request("B", sid, "B"))  # queued behind A
        await client.notify("session/cancel", {"sessionId": sid})  # cancels A and B
        await client.send(prompt_request("C", sid, "C"))
        await client.wait_for(lambda m: m.get("id") == "C")
    assert transcript(client.received, ("A", "B", "C")) == ["<A>", "<B>", "C0", "C1", "C2", "<C>"]
    assert [m["result"] for m in client.received if m.get("id") in ("A", "B")] == [
        {"stopReason": "cancelled"},
        {"stopReason": "cancelled"},
    ]


async def test_cancel_request_on_a_prompt_cancels_that_turn_and_answers_after_its_last_update(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    running = asyncio.Event()

    async def script(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if prompt[0]["text"] == "next":
            chunk(ctx, "next")
            return StopReason.END_TURN
        running.set()
        await ctx.wait_cancelled()
        await asyncio.sleep(0)  # winding down takes a loop turn or two
        chunk(ctx, "wind-down")
        return StopReason.CANCELLED

    backend.script = script
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.send(prompt_request("long", sid, "long"))
        async with asyncio.timeout(5):
            await running.wait()
        await client.send(prompt_request("next", sid, "next"))  # queued: not cancelled below
        await client.notify("$/cancel_request", {"requestId": "long"})
        await client.wait_for(lambda m: m.get("id") == "next")
    assert transcript(client.received, ("long", "next")) == [
        "wind-down",
        "<long>",
        "next",
        "<next>",
    ]
    answers = {m["id"]: m["result"] for m in client.received if m.get("id") in ("long", "next")}
    assert answers == {"long": {"stopReason": "cancelled"}, "next": {"stopReason": "end_turn"}}


async def test_cancel_request_on_a_queued_prompt_skips_only_that_one(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    release = asyncio.Event()
    ran: list[str] = []

    async def script(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        ran.append(prompt[0]["text"])
        if prompt[0]["text"] == "first":
            await release.wait()
        return StopReason.END_TURN

    backend.script = script
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.send(prompt_request("p1", sid, "first"))
        await client.send(prompt_request("p2", sid, "skipped"))
        await client.send(prompt_request("p3", sid, "third"))
        await client.notify("$/cancel_request", {"requestId": "p2"})
        release.set()
        await client.wait_for(lambda m: m.get("id") == "p3")
    answers = {
        m["id"]: m.get("result", m.get("error"))
        for m in client.received
        if m.get("id") in ("p1", "p2", "p3")
    }
    assert answers == {
        "p1": {"stopReason": "end_turn"},
        "p2": {"stopReason": "cancelled"},
        "p3": {"stopReason": "end_turn"},
    }
    assert ran == ["first", "third"]


async def test_nothing_new_starts_once_the_bridge_is_shutting_down(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    seen: list[str] = []

    async def script(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        seen.append(prompt[0]["text"])
        return StopReason.END_TURN

    backend.script = script
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        harness.bridge.closing = True  # what shutdown() sets first
        refused = [
            await client.request("session/new", {"cwd": "/tmp/p", "mcpServers": []}),
            await client.request("session/load", {"sessionId": sid, "cwd": "/tmp/p"}),
            await client.request("session/resume", {"sessionId": sid, "cwd": "/tmp/p"}),
            await client.request(
                "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
            ),
        ]
    assert [r["error"]["data"] for r in refused] == [{"reason": "shutting_down"}] * 4
    assert seen == []
    assert list(harness.bridge.sessions.sessions) == [sid]


async def test_an_abandoned_turn_cannot_ask_the_next_turns_client_anything(
    scripted: tuple[BridgeHarness, ScriptedBackend], monkeypatch: Any
) -> None:
    from acp_bridge.acp import sessions

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)
    harness, backend = scripted
    stubborn_running = asyncio.Event()
    next_started = asyncio.Event()
    finish_next = asyncio.Event()
    asked: list[Any] = []

    async def script(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if prompt[0]["text"] == "next":
            next_started.set()
            await finish_next.wait()
            return StopReason.END_TURN
        stubborn_running.set()
        while not next_started.is_set():
            try:
                await next_started.wait()
            except asyncio.CancelledError:
                continue  # refuses to stop
        # The next turn is running now; this abandoned task tries to reach its client.
        outcome = await ctx.request_permission(
            {"toolCallId": "late", "title": "Late"},
            [PermissionOption("allow", "Allow", "allow_once")],
        )
        asked.append(outcome)
        finish_next.set()
        return StopReason.END_TURN

    backend.script = script
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        assert await prompt_then_cancel(client, sid, "stubborn", stubborn_running) == {
            "stopReason": "cancelled"
        }
        async with asyncio.timeout(5):
            assert await client.prompt(sid, "next") == {"stopReason": "end_turn"}
    assert len(asked) == 1
    assert asked[0].cancelled
    sent = [m.get("method") for m in client.received]
    assert "session/request_permission" not in sent
    assert not [u for u in client.updates(sid) if u.get("toolCallId") == "late"]


async def test_an_ack_beyond_the_log_head_still_gets_every_new_event(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    async def one(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        chunk(ctx, prompt[0]["text"])
        return StopReason.END_TURN

    backend.script = one
    async with harness.client() as owner, harness.client() as loader:
        await owner.initialize()
        await loader.initialize()
        sid = await owner.new_session()
        await owner.prompt(sid, "before")
        head = harness.bridge.log.latest(agent_events_topic(sid))
        assert head is not None
        # This client acked ids the log does not have (e.g. a crash lost the uncommitted tail).
        result = await loader.call(
            "session/load",
            {"sessionId": sid, "cwd": "/tmp/project", "lastAckedEventId": head + 50},
        )
        harn = dict(result["_meta"]["harn"])
        assert isinstance(harn.pop("epoch"), str)  # the session's epoch rides beside the ids
        assert harn == {"replay": "compact", "replayedEvents": 0, "lastEventId": head}
        await owner.prompt(sid, "after")
        await loader.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"].get("content", {}).get("text") == "after"
            )
        )


async def test_shutdown_waits_for_a_turn_whose_client_left_before_closing_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Regression: the turn of a client that had disconnected was not among the prompts shutdown
    # waited for; it ended after the log was closed and its session_updated record was lost
    # ("could not persist session_updated … EventLogClosed").
    from acp_bridge.acp import AcpBridge, sessions
    from acp_bridge.eventlog import SqliteEventLog
    from acp_bridge.sinks import SinkRegistry

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)  # the script ignores cancel
    backend = ScriptedBackend()
    running = asyncio.Event()

    async def stubborn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        running.set()
        await asyncio.Event().wait()  # until its task is cancelled
        return StopReason.END_TURN

    backend.script = stubborn
    log = SqliteEventLog(tmp_path / "log.sqlite")
    bridge = AcpBridge(backend, log, registry=SinkRegistry())
    harness = BridgeHarness(bridge)
    async with harness.client() as owner:
        await owner.initialize()
        sid = await owner.new_session()
        await owner.send(prompt_request(1, sid, "go"))
        async with asyncio.timeout(5):
            await running.wait()
    session = bridge.sessions.sessions[sid]
    async with asyncio.timeout(15):
        await bridge.shutdown()
    log.close()
    async with asyncio.timeout(5):  # the turn is over (it would have failed to write by now)
        async with session.turn_lock:
            pass
    lost = [r.getMessage() for r in caplog.records if "could not persist" in r.getMessage()]
    assert lost == []
    reopened = SqliteEventLog(tmp_path / "log.sqlite")
    try:
        kinds = [e.record.kind for e in reopened.read_range(sessions.SESSION_INDEX_TOPIC)]
    finally:
        reopened.close()
    assert kinds[-1] == "session_updated"  # the turn's last activity record made it
