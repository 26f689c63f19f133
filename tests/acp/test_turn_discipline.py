"""Turn discipline: what ACP clients rely on at turn boundaries, including when backends misbehave."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.eventlog import LogRecord
from acp_bridge.sinks import agent_events_topic, event_of
from tests.support.acp_client import RawAcpClient
from tests.support.replay_compare import EXACT

from .conftest import (
    BridgeHarness,
    GatedFlushLog,
    ScriptedBackend,
    chunk,
    make_harness,
    prompt_params,
    prompt_request,
    prompt_then_cancel,
)


def chunk_texts(client: RawAcpClient, sid: str) -> list[str]:
    """The text of every ``agent_message_chunk`` the client got for the session, in order."""
    return [
        u["content"]["text"]
        for u in client.updates(sid)
        if u["sessionUpdate"] == "agent_message_chunk"
    ]


@pytest.fixture
def short_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    from acp_bridge.acp import sessions

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)


async def test_cancel_answers_cancelled_even_if_the_backend_raises(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    running = asyncio.Event()

    async def raises_on_cancel(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        running.set()
        await ctx.wait_cancelled()
        raise ConnectionAbortedError("model stream aborted")

    backend.script = raises_on_cancel
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        assert await prompt_then_cancel(client, sid, "x", running) == {"stopReason": "cancelled"}


async def test_pipelined_turns_never_interleave_with_responses(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    async def three_chunks(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        for i in range(3):
            chunk(ctx, f"{prompt[0]['text']}{i}")
            await asyncio.sleep(0)
        return StopReason.END_TURN

    backend.script = three_chunks
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.send(prompt_request("A", sid, "A"))
        await client.send(prompt_request("B", sid, "B"))
        await client.wait_for(lambda m: m.get("id") == "B")
    order = [
        m["params"]["update"]["content"]["text"] if "method" in m else f"<{m['id']}>"
        for m in client.received
        if m.get("id") in ("A", "B")
        or (
            m.get("method") == "session/update"
            and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
        )
    ]
    assert order == ["A0", "A1", "A2", "<A>", "B0", "B1", "B2", "<B>"]


async def test_an_abandoned_turn_cannot_emit_after_its_answer(
    scripted: tuple[BridgeHarness, ScriptedBackend], short_grace: None
) -> None:
    harness, backend = scripted
    stubborn_running = asyncio.Event()
    keep_going = asyncio.Event()
    still_emitting = asyncio.Event()

    async def stubborn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if prompt[0]["text"] == "next":
            chunk(ctx, "next turn")
            return StopReason.END_TURN
        stubborn_running.set()
        while True:
            try:
                await keep_going.wait()
            except asyncio.CancelledError:
                continue  # refuses to stop
            chunk(ctx, "late")
            still_emitting.set()
            return StopReason.END_TURN

    backend.script = stubborn
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        assert await prompt_then_cancel(client, sid, "stubborn", stubborn_running) == {
            "stopReason": "cancelled"
        }
        keep_going.set()  # the abandoned task now emits…
        async with asyncio.timeout(5):
            await still_emitting.wait()
        assert await client.prompt(sid, "next") == {"stopReason": "end_turn"}
    texts = chunk_texts(client, sid)
    assert texts == ["next turn"]  # …and nothing of it reached the client or the log
    logged = [
        event_of(e.record).get("content")
        for e in harness.bridge.log.read_range(agent_events_topic(sid))
    ]
    assert "late" not in logged


async def test_a_turn_survives_its_client_disconnecting(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    started = asyncio.Event()
    release = asyncio.Event()
    done = asyncio.Event()

    async def slow(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        started.set()
        await release.wait()
        chunk(ctx, "finished while nobody watched")
        done.set()
        return StopReason.END_TURN

    backend.script = slow
    async with harness.client() as owner:
        await owner.initialize()
        sid = await owner.new_session()
        await owner.send(prompt_request(1, sid, "go"))
        async with asyncio.timeout(5):
            await started.wait()
    release.set()  # the owner is gone; the turn goes on
    async with asyncio.timeout(5):
        await done.wait()
    async with harness.client() as loader:
        await loader.initialize()
        await loader.call("session/load", {"sessionId": sid, "cwd": "/tmp/project", **EXACT})
        texts = chunk_texts(loader, sid)
    assert texts == ["finished while nobody watched"]


async def test_load_during_a_running_turn_has_no_gap_and_no_duplicate(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    halfway = asyncio.Event()
    resume = asyncio.Event()

    async def two_halves(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        for i in range(50):
            chunk(ctx, f"c{i}")
        halfway.set()
        await resume.wait()
        for i in range(50, 100):
            chunk(ctx, f"c{i}")
            if i % 10 == 0:
                await asyncio.sleep(0)
        return StopReason.END_TURN

    backend.script = two_halves
    async with harness.client() as owner, harness.client() as loader:
        await owner.initialize()
        await loader.initialize()
        sid = await owner.new_session()
        turn = asyncio.create_task(owner.prompt(sid, "go"))
        async with asyncio.timeout(5):
            await halfway.wait()
        load = asyncio.create_task(
            loader.call("session/load", {"sessionId": sid, "cwd": "/tmp/project", **EXACT})
        )
        resume.set()  # the second half is emitted while the load replays
        async with asyncio.timeout(10):
            await load
            await turn
        await loader.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"].get("content", {}).get("text") == "c99"
            )
        )
        texts = chunk_texts(loader, sid)
    assert texts == [f"c{i}" for i in range(100)]


async def test_the_prompt_answer_waits_for_the_log_to_commit(tmp_path: Path) -> None:
    backend = ScriptedBackend()

    async def one(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        chunk(ctx, "durable")
        return StopReason.END_TURN

    backend.script = one
    async with make_harness(tmp_path, backend) as harness:
        log = GatedFlushLog(tmp_path / "gated.sqlite")
        harness.bridge.log = log
        try:
            async with harness.client() as client:
                await client.initialize()
                sid = await client.new_session()
                log.armed = True
                answer = asyncio.create_task(client.prompt(sid, "x"))
                async with asyncio.timeout(5):
                    await log.flushing.wait()
                await client.wait_for(
                    lambda m: (
                        m.get("method") == "session/update"
                        and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
                    )
                )
                assert not answer.done()  # the update is out, the answer waits for the commit
                log.allow.set()
                async with asyncio.timeout(5):
                    assert await answer == {"stopReason": "end_turn"}
        finally:
            log.close()


async def test_a_prompt_refused_as_read_only_is_not_history(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    backend.read_only_reason = lambda ctx: "read-only mirror"  # type: ignore[method-assign]
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        harness.bridge.log.append(agent_events_topic(sid), LogRecord("marker", {}))
        response = await client.request("session/prompt", prompt_params(sid, "x"))
    assert response["error"]["code"] == -32600
    assert [e.record.kind for e in harness.bridge.log.read_range(agent_events_topic(sid))] == [
        "marker"
    ]


async def test_load_of_a_session_that_never_stops_emitting_finishes(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    flowing = asyncio.Event()

    async def endless(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        i = 0
        while not ctx.cancelled:
            chunk(ctx, f"c{i}")
            i += 1
            if i == 200:
                flowing.set()
            await asyncio.sleep(0)
        return StopReason.CANCELLED

    backend.script = endless
    # Schema validation costs the test client about 1 ms per message on the loop the bridge shares with it, and
    # this agent emits thousands: validating would measure the test client, not the bridge (messages of this
    # shape are validated everywhere else).
    async with harness.client(validate=False) as owner, harness.client(validate=False) as loader:
        await owner.initialize()
        await loader.initialize()
        sid = await owner.new_session()
        turn = asyncio.create_task(owner.prompt(sid, "go"))
        async with asyncio.timeout(5):
            await flowing.wait()
            # The replay covers the log as it was when the load began; it does not chase the head.
            result = await loader.call(
                "session/load", {"sessionId": sid, "cwd": "/tmp/project", **EXACT}
            )
        snapshot = result["_meta"]["harn"]["lastEventId"]
        assert result["_meta"]["harn"]["replayedEvents"] == snapshot
        await owner.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(5):
            assert await turn == {"stopReason": "cancelled"}
        last = harness.bridge.log.latest(agent_events_topic(sid))
        await loader.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["_meta"]["harn"]["eventId"] == last
            )
        )
        texts = chunk_texts(loader, sid)
    assert texts == [f"c{i}" for i in range(len(texts))]  # replay then live: no gap, no duplicate
    assert len(texts) > snapshot


async def test_events_from_several_threads_reach_clients_in_log_order(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    per_thread = 400

    async def threaded(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        start = threading.Barrier(3)

        def worker(name: str) -> None:
            start.wait(timeout=5)
            for i in range(per_thread):
                chunk(ctx, f"{name}{i}")

        workers = [asyncio.to_thread(worker, name) for name in ("a", "b")]
        running = asyncio.gather(*workers)
        await asyncio.to_thread(start.wait, 5)
        for i in range(per_thread):  # the loop's own thread emits at the same time
            chunk(ctx, f"l{i}")
            if i % 100 == 0:
                await asyncio.sleep(0)  # let queued cross-thread publishes run in between
        await running
        return StopReason.END_TURN

    backend.script = threaded
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        async with asyncio.timeout(20):
            assert await client.prompt(sid, "go") == {"stopReason": "end_turn"}
    wire = [
        (m["params"]["_meta"]["harn"]["eventId"], m["params"]["update"]["content"]["text"])
        for m in client.received
        if m.get("method") == "session/update"
        and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
    ]
    assert len(wire) == 3 * per_thread
    ids = [event_id for event_id, _ in wire]
    assert ids == sorted(ids)  # the order of the log, whoever emitted
    logged = {
        e.id: event_of(e.record)["content"]
        for e in harness.bridge.log.read_range(agent_events_topic(sid))
        if e.record.kind == "agent_message_chunk"
    }
    assert dict(wire) == logged
    for name in "abl":  # and each emitter's own order is kept
        mine = [text for _, text in wire if text[0] == name]
        assert mine == [f"{name}{i}" for i in range(per_thread)]
