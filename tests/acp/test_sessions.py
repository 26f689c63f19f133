"""Session lifecycle: load replay, resume, list, close, reconnect and restart durability."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import orjson
import pytest

from acp_bridge.agents.base import SessionContext, StopReason
from acp_bridge.agents.demo import DemoBackend
from acp_bridge.events import harn as h
from acp_bridge.translate import Profile
from tests.support.acp_client import RawAcpClient, ResponseError, declaring
from tests.support.replay_compare import compact_stream

from .conftest import BridgeHarness, ScriptedBackend, make_harness


def strip_replay(message: dict[str, Any]) -> dict[str, Any]:
    """A replayed message minus its replay markers, for comparison with the live one."""
    message = {k: v for k, v in message.items() if k != "_harn"}
    params = dict(message["params"])
    params.pop("replayed", None)
    if message["method"] == "session/update":
        update = dict(params["update"])
        meta = update.get("_meta", {}).get("harn", {})
        if meta.get("replayed"):
            harn = {k: v for k, v in meta.items() if k != "replayed"}
            rest = {k: v for k, v in update["_meta"].items() if k != "harn"}
            update["_meta"] = {**rest, **({"harn": harn} if harn else {})}
            if not update["_meta"]:
                del update["_meta"]
        params["update"] = update
    message["params"] = params
    return message


def session_messages(client: RawAcpClient, sid: str) -> list[dict[str, Any]]:
    return [
        m
        for m in client.received
        if m.get("method") in ("session/update", "_harn/agentEvent")
        and m["params"].get("sessionId") == sid
    ]


@pytest.mark.parametrize(
    ("profile", "mode"),
    [("strict", "compact"), ("strict", "exact"), ("harn", "exact")],
)
async def test_load_replays_exactly_the_live_stream(
    demo: BridgeHarness, profile: str, mode: str
) -> None:
    """Exact: the live stream again. Compact: the live stream with each run of chunks merged."""
    caps = {"_meta": {"harn": {}}} if profile == "harn" else {}
    default = "exact" if profile == "harn" else "compact"
    ask = {} if mode == default else {"_meta": {"acp_bridge": {"replay": mode}}}
    async with demo.client(validate=profile == "strict") as live:
        await live.initialize(caps)
        sid = await live.new_session()
        await live.prompt(sid, "Fix the bug")
        await live.prompt(sid, "/echo second turn")
        live_stream = [
            m
            for m in session_messages(live, sid)
            # Commands and session info are about the session now, not its history.
            if m.get("params", {}).get("update", {}).get("sessionUpdate")
            not in ("available_commands_update", "session_info_update")
        ]
    async with demo.client(validate=profile == "strict") as loader:
        await loader.initialize(caps)
        response = await loader.request(
            "session/load", {"sessionId": sid, "cwd": "/tmp/project", "mcpServers": [], **ask}
        )
        replay = [
            m
            for m in session_messages(loader, sid)
            if loader.received.index(m) < loader.index_of_response(response["id"])
        ]
    assert response["result"]["_meta"]["harn"]["replayedEvents"] > 0
    assert response["result"]["_meta"]["harn"]["replay"] == mode
    if mode == "compact":
        live_stream = compact_stream(live_stream)
        assert len(live_stream) < len(session_messages(live, sid))  # the demo turn streams chunks
    # Every replayed message is marked.
    for message in replay:
        if message["method"] == "session/update":
            assert message["params"]["update"]["_meta"]["harn"]["replayed"] is True
        else:
            assert message["params"]["replayed"] is True
    # The replay is the live stream plus the user's prompts (history the live owner did not get echoed).
    user_kinds = {"user_message_chunk", "user_message"}
    replayed_without_prompts = [
        strip_replay(m)
        for m in replay
        if m["method"] != "session/update"
        or m["params"]["update"]["sessionUpdate"] not in user_kinds
    ]
    assert replayed_without_prompts == [strip_replay(m) for m in live_stream]
    if profile == "harn":
        # Harn's hub annotation: same event ids, marked replayed.
        replayed_ids = [
            m["_harn"]["eventId"]
            for m in replay
            if m["params"].get("update", {}).get("sessionUpdate") not in user_kinds
        ]
        assert replayed_ids == [m["_harn"]["eventId"] for m in live_stream]
        assert all(m["_harn"]["replayed"] for m in replay)
    else:
        replayed_ids = [
            m["params"]["_meta"]["harn"]["eventId"]
            for m in replay
            if m["params"].get("update", {}).get("sessionUpdate") not in user_kinds
            and "_meta" in m["params"]
        ]
        assert replayed_ids == sorted(replayed_ids)  # cursors only move forward
    prompts = [
        m
        for m in replay
        if m["method"] == "session/update" and m["params"]["update"]["sessionUpdate"] in user_kinds
    ]
    assert len(prompts) == 2


async def test_load_after_last_acked_event_id_replays_only_the_rest(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "/echo one")
        await client.prompt(sid, "/echo two")
    async with demo.client() as first:
        await first.initialize()
        full = await first.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        ids = [
            m["params"]["_meta"]["harn"]["eventId"]
            for m in session_messages(first, sid)
            if "eventId" in m["params"].get("_meta", {}).get("harn", {})
        ]
    cut = ids[len(ids) // 2]
    async with demo.client() as second:
        await second.initialize()
        partial = await second.call(
            "session/load", {"sessionId": sid, "cwd": "/tmp/project", "lastAckedEventId": cut}
        )
        rest = [
            m["params"]["_meta"]["harn"]["eventId"]
            for m in session_messages(second, sid)
            if "eventId" in m["params"].get("_meta", {}).get("harn", {})
        ]
    assert rest == [i for i in ids if i > cut]
    assert (
        partial["_meta"]["harn"]["lastEventId"] == full["_meta"]["harn"]["lastEventId"] == ids[-1]
    )


async def test_resume_does_not_replay_and_continues_live(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "/echo history")
    async with demo.client() as resumer:
        await resumer.initialize()
        response = await resumer.request(
            "session/resume", {"sessionId": sid, "cwd": "/tmp/project"}
        )
        before = [
            m
            for m in session_messages(resumer, sid)
            if resumer.received.index(m) < resumer.index_of_response(response["id"])
        ]
        assert before == []
        await resumer.prompt(sid, "/echo fresh")
        texts = [
            u["content"]["text"]
            for u in resumer.updates(sid)
            if u["sessionUpdate"] == "agent_message_chunk"
        ]
    assert texts == ["fresh"]


async def test_sessions_outlive_the_socket(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "/echo before disconnect")
    assert sid in demo.bridge.sessions.sessions
    async with demo.client() as again:
        await again.initialize()
        await again.call("session/load", {"sessionId": sid, "cwd": "/tmp/project"})
        assert await again.prompt(sid, "/echo after reconnect") == {"stopReason": "end_turn"}


async def test_list_filters_by_cwd_and_pages(
    demo: BridgeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acp_bridge.acp import sessions as sessions_module

    monkeypatch.setattr(sessions_module, "LIST_PAGE_SIZE", 2)
    async with demo.client() as client:
        await client.initialize()
        created = [await client.new_session("/work/a") for _ in range(3)]
        other = await client.new_session("/work/b")
        first = await client.call("session/list", {"cwd": "/work/a"})
        second = await client.call(
            "session/list", {"cwd": "/work/a", "cursor": first["nextCursor"]}
        )
        everything = await client.call("session/list", {})
        with pytest.raises(ResponseError) as info:
            await client.call("session/list", {"cursor": "garbage!"})
    assert info.value.code == -32602
    listed = [s["sessionId"] for s in first["sessions"] + second["sessions"]]
    assert sorted(listed) == sorted(created)
    assert "nextCursor" not in second
    assert all(s["cwd"] == "/work/a" for s in first["sessions"])
    assert other in [s["sessionId"] for s in everything["sessions"]] or "nextCursor" in everything


async def test_list_reports_titles_and_update_times(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session("/work/t")
        await client.prompt(sid, "/echo Refactor the parser")
        [info] = (await client.call("session/list", {"cwd": "/work/t"}))["sessions"]
    assert info["title"] == "/echo Refactor the parser"
    assert info["updatedAt"].endswith("Z")


async def test_close_frees_the_session(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize(declaring("_harn/agentEvent"))
        sid = await client.new_session("/work/c")
        assert await client.call("session/close", {"sessionId": sid}) == {}
        closed = await client.wait_for(
            lambda m: (
                m.get("method") == "_harn/agentEvent" and m["params"]["kind"] == "session_closed"
            )
        )
        assert closed["params"]["reason"] == "client_request"
        for method, params in [
            ("session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}),
            ("session/load", {"sessionId": sid, "cwd": "/work/c"}),
            ("session/close", {"sessionId": sid}),
        ]:
            response = await client.request(method, params)
            assert response["error"]["code"] == -32002
        assert (await client.call("session/list", {"cwd": "/work/c"}))["sessions"] == []


async def test_close_by_one_client_closes_it_for_every_client(demo: BridgeHarness) -> None:
    # Closing detaches the session from every connection (through its fan-out), not only the
    # closing one: the other client sees session_closed, then -32002 for the session.
    async with demo.client() as closer, demo.client() as watcher:
        await closer.initialize()
        await watcher.initialize(declaring("_harn/*"))
        sid = await closer.new_session("/work/c2")
        await watcher.call("session/load", {"sessionId": sid, "cwd": "/work/c2"})
        assert await closer.call("session/close", {"sessionId": sid}) == {}
        await watcher.wait_for(
            lambda m: (
                m.get("method") == "_harn/agentEvent" and m["params"]["kind"] == "session_closed"
            )
        )
        prompt = {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
        response = await watcher.request("session/prompt", prompt)
        assert response["error"]["code"] == -32002
        assert demo.bridge.connections
        for connection in demo.bridge.connections:
            assert connection.attachment(sid) is None


async def test_close_cancels_a_running_turn(demo: BridgeHarness) -> None:
    from tests.support.acp_client import ClientScript

    async with demo.client(script=ClientScript(permission="hold")) as client:
        await client.initialize()
        sid = await client.new_session()
        prompt = asyncio.create_task(client.prompt(sid, "Fix it"))
        await client.wait_for(lambda m: m.get("method") == "session/request_permission")
        await client.call("session/close", {"sessionId": sid})
        async with asyncio.timeout(10):
            assert await prompt == {"stopReason": "cancelled"}


async def test_sessions_survive_a_restart_of_the_bridge(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as first, first.client() as client:
        await client.initialize()
        sid = await client.new_session("/work/r")
        await client.prompt(sid, "/echo remembered")
    async with make_harness(tmp_path, DemoBackend(0)) as second, second.client() as client:
        await client.initialize()
        listed = (await client.call("session/list", {"cwd": "/work/r"}))["sessions"]
        assert [s["sessionId"] for s in listed] == [sid]
        await client.call("session/load", {"sessionId": sid, "cwd": "/work/r"})
        texts = [
            u["content"]["text"]
            for u in client.updates(sid)
            if u["sessionUpdate"] == "agent_message_chunk"
        ]
        assert texts == ["remembered"]
        assert await client.prompt(sid, "/echo continued") == {"stopReason": "end_turn"}


async def test_modes_are_offered_and_switched(demo: BridgeHarness) -> None:
    async with demo.client() as owner, demo.client() as watcher:
        await owner.initialize()
        await watcher.initialize()
        result = await owner.call("session/new", {"cwd": "/tmp", "mcpServers": []})
        sid = result["sessionId"]
        modes = result["modes"]
        assert modes["currentModeId"] == modes["availableModes"][0]["id"]
        await watcher.call("session/resume", {"sessionId": sid, "cwd": "/tmp"})
        target = modes["availableModes"][-1]["id"]
        assert await owner.call("session/set_mode", {"sessionId": sid, "modeId": target}) == {}
        change = await watcher.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "current_mode_update"
            )
        )
        assert change["params"]["update"]["currentModeId"] == target
        response = await owner.request("session/set_mode", {"sessionId": sid, "modeId": "nope"})
        assert response["error"]["code"] == -32602
        # Found by the frame fuzzer: an unhashable modeId was a -32603 (TypeError), not a -32602.
        for odd in ({"id": target}, [target]):
            response = await owner.request("session/set_mode", {"sessionId": sid, "modeId": odd})
            assert response["error"]["code"] == -32602
        loaded = await watcher.call("session/load", {"sessionId": sid, "cwd": "/tmp"})
        assert loaded["modes"]["currentModeId"] == target


async def test_strict_profile_forced_for_a_harn_client(tmp_path: Path) -> None:
    async with (
        make_harness(tmp_path, DemoBackend(0), profile=Profile.STRICT) as harness,
        harness.client() as client,
    ):  # validates strictly
        await client.initialize({"_meta": {"harn": {}}})
        sid = await client.new_session()
        await client.prompt(sid, "Fix it")


async def test_mcp_servers_reach_the_backend_and_never_the_log(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    seen: list[Any] = []

    async def look(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        seen.append(list(ctx.mcp_servers))
        return StopReason.END_TURN

    backend.script = look
    secret = {
        "name": "gh",
        "command": "mcp-github",
        "args": [],
        "env": [{"name": "TOKEN", "value": "s3cret"}],
    }
    other = {"type": "http", "name": "docs", "url": "https://mcp.example/docs", "headers": []}
    async with harness.client() as client:
        await client.initialize()
        result = await client.call("session/new", {"cwd": "/tmp/p", "mcpServers": [secret]})
        sid = result["sessionId"]
        await client.prompt(sid, "x")
        # A later load (another editor window, say) brings its own list.
        await client.call(
            "session/load", {"sessionId": sid, "cwd": "/tmp/p", "mcpServers": [other]}
        )
        await client.prompt(sid, "y")
        # resume without the field keeps what the session has.
        await client.call("session/resume", {"sessionId": sid, "cwd": "/tmp/p"})
        await client.prompt(sid, "z")
        bad = await client.request(
            "session/new", {"cwd": "/tmp/p", "mcpServers": [{"command": "x"}]}
        )
    assert seen == [[secret], [other], [other]]
    assert bad["error"]["code"] == -32602
    assert bad["error"]["data"] == {"field": "mcpServers"}
    log = harness.bridge.log
    stored = b"".join(
        orjson.dumps(entry.record.payload)
        for topic in log.topics()
        for entry in log.read_range(topic)
    )
    assert b"s3cret" not in stored


async def test_modes_and_config_options_not_offered_are_not_methods(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _ = scripted  # offers neither modes nor config options
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        mode = await client.request("session/set_mode", {"sessionId": sid, "modeId": "code"})
        option = await client.request(
            "session/set_config_option", {"sessionId": sid, "configId": "model", "value": "x"}
        )
    assert mode["error"]["code"] == -32601
    assert mode["error"]["data"] == {"method": "session/set_mode"}
    assert option["error"]["code"] == -32601
    assert option["error"]["data"] == {"method": "session/set_config_option"}


@pytest.mark.parametrize("mode", ["compact", "exact"])
async def test_load_skips_events_of_a_session_whose_topic_name_collides(
    demo: BridgeHarness, mode: str
) -> None:
    # "a/b" and "a_b" share the topic observability.agent_events.a_b: each replays only its own.
    for sid in ("a/b", "a_b"):
        ctx = demo.bridge.open_session(sid, cwd="/tmp/project")
        for word in ("one ", "two "):
            ctx.emit(h.AgentMessageChunk(session_id=sid, content=f"{sid} {word}"))
    await demo.bridge.sessions.flush()
    async with demo.client() as client:
        await client.initialize()
        await client.call(
            "session/load",
            {
                "sessionId": "a/b",
                "cwd": "/tmp/project",
                "mcpServers": [],
                "_meta": {"acp_bridge": {"replay": mode}},
            },
        )
        text = "".join(
            u["content"]["text"]
            for u in client.updates("a/b")
            if u["sessionUpdate"] == "agent_message_chunk"
        )
    assert text == "a/b one a/b two "
