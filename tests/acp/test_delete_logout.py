"""``session/delete`` (decision 0025) and ``logout`` (decision 0026)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.events import harn as h
from acp_bridge.rpc.principal import Principal, Role
from acp_bridge.sinks import agent_events_topic
from tests.support.acp_client import ClientScript, declaring

from .conftest import BridgeHarness, make_harness


async def test_delete_removes_the_session_for_every_client(demo: BridgeHarness) -> None:
    async with demo.client() as deleter, demo.client() as watcher:
        await deleter.initialize()
        await watcher.initialize(declaring("_harn/agentEvent"))
        sid = await deleter.new_session("/work/d")
        await deleter.prompt(sid, "/echo soon gone")
        await watcher.call("session/load", {"sessionId": sid, "cwd": "/work/d"})
        assert await deleter.call("session/delete", {"sessionId": sid}) == {}
        closed = await watcher.wait_for(
            lambda m: (
                m.get("method") == "_harn/agentEvent" and m["params"]["kind"] == "session_closed"
            )
        )
        assert closed["params"]["status"] == "deleted"
        assert (await deleter.call("session/list", {}))["sessions"] == []
        for method, params in [
            ("session/load", {"sessionId": sid, "cwd": "/work/d"}),
            ("session/resume", {"sessionId": sid, "cwd": "/work/d"}),
            ("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}),
            ("session/delete", {"sessionId": sid}),
        ]:
            response = await watcher.request(method, params)
            assert response["error"]["code"] == -32002, method


async def test_delete_cancels_a_running_turn_first(demo: BridgeHarness) -> None:
    async with demo.client(script=ClientScript(permission="hold")) as client:
        await client.initialize()
        sid = await client.new_session()
        prompt = asyncio.create_task(client.prompt(sid, "Fix it"))
        await client.wait_for(lambda m: m.get("method") == "session/request_permission")
        assert await client.call("session/delete", {"sessionId": sid}) == {}
        async with asyncio.timeout(10):
            assert await prompt == {"stopReason": "cancelled"}


async def test_a_deleted_session_stays_deleted_after_a_restart(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as first, first.client() as client:
        await client.initialize()
        kept = await client.new_session("/work/r")
        gone = await client.new_session("/work/r")
        await client.prompt(gone, "/echo private")
        await client.call("session/delete", {"sessionId": gone})
    async with make_harness(tmp_path, DemoBackend(0)) as second, second.client() as client:
        await client.initialize()
        listed = (await client.call("session/list", {}))["sessions"]
        assert [s["sessionId"] for s in listed] == [kept]
        response = await client.request("session/load", {"sessionId": gone, "cwd": "/work/r"})
        assert response["error"]["code"] == -32002
        # Its events are gone from the file too (decision 0045); the other session's are not.
        log = second.bridge.log
        assert log.read_range(agent_events_topic(gone)) == []
        assert log.latest(agent_events_topic(gone))  # ids are never handed out again


async def test_delete_of_a_session_not_live_in_this_process(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as first, first.client() as client:
        await client.initialize()
        sid = await client.new_session("/work/r")
    async with make_harness(tmp_path, DemoBackend(0)) as second, second.client() as client:
        await client.initialize()
        assert await client.call("session/delete", {"sessionId": sid}) == {}
        assert (await client.call("session/list", {}))["sessions"] == []


async def test_an_observer_may_not_delete(demo: BridgeHarness) -> None:
    async with (
        demo.client() as owner,
        demo.client(principal=Principal("eve", Role.OBSERVER)) as observer,
    ):
        await owner.initialize()
        await observer.initialize()
        sid = await owner.new_session()
        response = await observer.request("session/delete", {"sessionId": sid})
        assert response["error"]["code"] == -32011
        assert len((await owner.call("session/list", {}))["sessions"]) == 1


async def test_logout_is_advertised_and_ends_an_authenticated_connection(
    demo: BridgeHarness,
) -> None:
    async with demo.client(principal=Principal("alice")) as client:
        result = await client.initialize()
        assert result["agentCapabilities"]["auth"] == {"logout": {}}
        sid = await client.new_session()
        assert await client.call("logout", {}) == {}
        async with asyncio.timeout(5):
            await client.closed.wait()
    # The session outlives the connection that logged out.
    async with demo.client() as other:
        await other.initialize()
        listed = (await other.call("session/list", {}))["sessions"]
        assert [s["sessionId"] for s in listed] == [sid]


async def test_logout_without_a_credential_is_no_method(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        response = await client.request("logout", {})
        assert response["error"]["code"] == -32601
        assert await client.new_session()  # the connection is still usable


async def test_deleting_one_of_two_sessions_sharing_a_topic_keeps_the_others_events(
    demo: BridgeHarness,
) -> None:
    # "a/b" and "a_b" sanitise to one topic name: deleting one must not empty the other.
    for sid in ("a/b", "a_b"):
        ctx = demo.bridge.open_session(sid, cwd="/work/d")
        ctx.emit(h.AgentMessageChunk(session_id=sid, content=f"{sid} says hi"))
    await demo.bridge.sessions.flush()
    async with demo.client() as client:
        await client.initialize()
        assert await client.call("session/delete", {"sessionId": "a/b"}) == {}
        await client.call(
            "session/load",
            {"sessionId": "a_b", "cwd": "/work/d", "_meta": {"acp_bridge": {"replay": "exact"}}},
        )
        texts = [
            u["content"]["text"]
            for u in client.updates("a_b")
            if u["sessionUpdate"] == "agent_message_chunk"
        ]
    assert texts == ["a_b says hi"]
