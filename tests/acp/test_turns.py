"""Prompt turns: ordering, permission, cancel, errors, queueing, client requests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from acp_bridge.agents.base import (
    CapabilityNotAdvertised,
    PermissionOption,
    SessionContext,
    StopReason,
)
from acp_bridge.events import harn as h
from acp_bridge.translate import Profile
from tests.support.acp_client import ClientScript, RawAcpClient, ResponseError, declaring

from .conftest import BridgeHarness, ScriptedBackend, make_harness

ALLOW = [
    PermissionOption("allow", "Allow", "allow_once"),
    PermissionOption("reject", "Reject", "reject_once"),
]


def assert_turn_well_ordered(client: RawAcpClient, session_id: str, prompt_request_id: Any) -> None:
    """Every update of the turn precedes the response; every tool-call id is announced first."""
    response_at = client.index_of_response(prompt_request_id)
    announced: set[str] = set()
    for i, message in enumerate(client.received):
        method = message.get("method")
        if method == "session/update" and message["params"]["sessionId"] == session_id:
            update = message["params"]["update"]
            if update["sessionUpdate"] == "tool_call":
                announced.add(update["toolCallId"])
            elif update["sessionUpdate"] == "tool_call_update":
                assert update["toolCallId"] in announced, f"update before tool_call at {i}"
        if method == "session/request_permission":
            assert message["params"]["toolCall"]["toolCallId"] in announced
    later = [m for m in client.received[response_at + 1 :] if m.get("method") == "session/update"]
    assert later == [], "updates after the prompt response"


async def test_full_demo_turn_with_permission_allowed(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize(declaring("_harn/agentEvent"))
        sid = await client.new_session()
        response = await client.request(
            "session/prompt",
            {"sessionId": sid, "prompt": [{"type": "text", "text": "Fix the bug"}]},
        )
        assert response["result"] == {"stopReason": "end_turn"}
        assert_turn_well_ordered(client, sid, response["id"])
        updates = client.updates(sid)
        kinds = [u["sessionUpdate"] for u in updates]
        assert {
            "agent_message_chunk",
            "agent_thought_chunk",
            "plan",
            "tool_call",
            "tool_call_update",
        } <= set(kinds)
        text = "".join(
            u["content"]["text"] for u in updates if u["sessionUpdate"] == "agent_message_chunk"
        )
        assert "Fix the bug" in text
        edit = [u for u in updates if u.get("toolCallId", "").endswith("-edit")]
        assert edit[-1]["status"] == "completed"
        permission = [m for m in client.received if m.get("method") == "session/request_permission"]
        assert len(permission) == 1
        # Harn-only events reach a strict client that declared them as extension notifications.
        kinds_ext = {
            m["params"]["kind"] for m in client.received if m.get("method") == "_harn/agentEvent"
        }
        assert {"iteration_start", "iteration_end", "skill_activated"} <= kinds_ext


async def test_permission_rejected_fails_the_edit(demo: BridgeHarness) -> None:
    async with demo.client(script=ClientScript(permission="reject")) as client:
        await client.initialize()
        sid = await client.new_session()
        assert await client.prompt(sid, "Fix it") == {"stopReason": "end_turn"}
        edit = [u for u in client.updates(sid) if u.get("toolCallId", "").endswith("-edit")]
        assert edit[-1]["status"] == "failed"
        assert edit[-1]["_meta"]["harn"]["errorCategory"] == "permission_denied"


async def test_cancel_at_the_permission_request(demo: BridgeHarness) -> None:
    async with demo.client(script=ClientScript(permission="hold")) as client:
        await client.initialize()
        sid = await client.new_session()
        prompt = asyncio.create_task(client.prompt(sid, "Fix it"))
        request = await client.wait_for(lambda m: m.get("method") == "session/request_permission")
        await client.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(10):
            assert await prompt == {"stopReason": "cancelled"}
        # The pending permission request was cancelled towards the client too.
        cancel = await client.wait_for(lambda m: m.get("method") == "$/cancel_request")
        assert cancel["params"] == {"requestId": request["id"]}
        # The session is still usable.
        client.script.permission = "allow"
        assert await client.prompt(sid, "/echo again") == {"stopReason": "end_turn"}


async def test_backend_error_is_a_jsonrpc_error_and_the_session_survives(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    async def boom(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content="about to fail"))
        raise RuntimeError("model provider unreachable")

    async def fine(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        return StopReason.END_TURN

    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        backend.script = boom
        response = await client.request(
            "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
        )
        assert response["error"]["code"] == -32603
        assert "model provider unreachable" in response["error"]["message"]
        assert "Traceback" not in str(response)
        # The chunk emitted before the failure still came first.
        *_, last, info = client.updates(sid)
        assert last["content"]["text"] == "about to fail"
        assert info["sessionUpdate"] == "session_info_update"
        backend.script = fine
        assert await client.prompt(sid, "again") == {"stopReason": "end_turn"}


async def test_prompts_queue_and_cancel_cancels_the_queue(
    scripted: tuple[BridgeHarness, ScriptedBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from acp_bridge.acp import sessions

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)  # the script ignores cancel
    harness, backend = scripted
    started: asyncio.Queue[str] = asyncio.Queue()
    release = asyncio.Event()

    async def wait(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        started.put_nowait(prompt[0]["text"])
        await release.wait()
        return StopReason.END_TURN

    async def next_started() -> str:
        async with asyncio.timeout(5):
            return await started.get()

    backend.script = wait
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        first = asyncio.create_task(client.prompt(sid, "one"))
        second = asyncio.create_task(client.prompt(sid, "two"))
        assert await next_started() == "one"
        assert started.empty()  # the second waits for the first
        release.set()
        async with asyncio.timeout(5):
            assert await first == {"stopReason": "end_turn"}
            assert await second == {"stopReason": "end_turn"}
        assert await next_started() == "two"

        # Now cancel while one runs and one is queued: both answer cancelled.
        release.clear()
        third = asyncio.create_task(client.prompt(sid, "three"))
        fourth = asyncio.create_task(client.prompt(sid, "four"))
        assert await next_started() == "three"
        await client.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(10):
            assert await third == {"stopReason": "cancelled"}
            assert await fourth == {"stopReason": "cancelled"}
        assert started.empty()  # "four" never ran
        assert backend.cancels == 1


async def test_a_backend_that_ignores_cancel_is_cancelled_after_the_grace_period(
    scripted: tuple[BridgeHarness, ScriptedBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from acp_bridge.acp import sessions

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)
    harness, backend = scripted
    entered = asyncio.Event()

    async def stubborn(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        entered.set()
        await asyncio.Event().wait()  # never checks ctx.cancelled
        return StopReason.END_TURN

    backend.script = stubborn
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        prompt = asyncio.create_task(client.prompt(sid, "x"))
        async with asyncio.timeout(5):
            await entered.wait()
        await client.notify("session/cancel", {"sessionId": sid})
        async with asyncio.timeout(5):
            assert await prompt == {"stopReason": "cancelled"}


async def test_unknown_and_unopened_sessions(demo: BridgeHarness) -> None:
    async with demo.client() as client, demo.client() as other:
        await client.initialize()
        await other.initialize()
        with pytest.raises(ResponseError) as info:
            await client.prompt("no-such-session", "hi")
        assert info.value.code == -32002
        sid = await client.new_session()
        # The session exists but `other` has not opened it.
        with pytest.raises(ResponseError) as info:
            await other.prompt(sid, "hi")
        assert info.value.code == -32002
        assert info.value.data == {"sessionId": sid}


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"cwd": "relative/path", "mcpServers": []}, -32602),
        ({"mcpServers": []}, -32602),
        ({"cwd": "/abs"}, None),  # missing mcpServers is tolerated
        ({"cwd": "/abs", "mcpServers": [], "additionalDirectories": ["/x"], "unknown": 1}, None),
    ],
)
async def test_session_new_params(
    demo: BridgeHarness, params: dict[str, Any], code: int | None
) -> None:
    async with demo.client() as client:
        await client.initialize()
        response = await client.request("session/new", params)
    if code is None:
        assert "sessionId" in response["result"]
    else:
        assert response["error"]["code"] == code


@pytest.mark.parametrize(
    "prompt",
    [
        "not a list",
        [{"text": "no type"}],
        [{"type": "image", "data": "AAAA", "mimeType": "image/png"}],  # image not advertised
    ],
)
async def test_bad_prompts_are_invalid_params(demo: BridgeHarness, prompt: Any) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session()
        response = await client.request("session/prompt", {"sessionId": sid, "prompt": prompt})
    assert response["error"]["code"] == -32602


async def test_nothing_precedes_the_session_new_response(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, _backend = scripted

    class Announcing(ScriptedBackend):
        async def new_session(self, ctx: SessionContext) -> None:
            ctx.emit(h.AgentMessageChunk(session_id=ctx.session_id, content="hello early"))

    harness.bridge.backend = Announcing()
    async with harness.client() as client:
        await client.initialize()
        response = await client.request("session/new", {"cwd": "/tmp", "mcpServers": []})
        sid = response["result"]["sessionId"]
        update = await client.wait_for(lambda m: m.get("method") == "session/update")
        assert client.received.index(update) > client.index_of_response(response["id"])
        assert update["params"]["sessionId"] == sid


async def test_available_commands_follow_the_response(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        response = await client.request("session/new", {"cwd": "/tmp", "mcpServers": []})
        commands = await client.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "available_commands_update"
            )
        )
        assert client.received.index(commands) > client.index_of_response(response["id"])
        names = {c["name"] for c in commands["params"]["update"]["availableCommands"]}
        assert "echo" in names


async def test_fs_requests_are_gated_on_client_capabilities(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted
    outcomes: list[Any] = []

    async def read(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        try:
            outcomes.append(await ctx.read_text_file("/tmp/project/a.txt", line=2, limit=3))
        except CapabilityNotAdvertised as exc:
            outcomes.append(exc.capability)
        try:
            await ctx.write_text_file("/tmp/project/b.txt", "new")
            outcomes.append("written")
        except CapabilityNotAdvertised as exc:
            outcomes.append(exc.capability)
        try:
            await ctx.terminal_request("terminal/create", {"command": "ls"})
        except CapabilityNotAdvertised as exc:
            outcomes.append(exc.capability)
        return StopReason.END_TURN

    backend.script = read
    script = ClientScript(files={"/tmp/project/a.txt": "two\nthree"})
    async with harness.client(script=script) as client:
        await client.initialize({"fs": {"readTextFile": True}})
        sid = await client.new_session()
        await client.prompt(sid, "go")
        requests = [
            m for m in client.received if m.get("method", "").startswith(("fs/", "terminal/"))
        ]
    assert outcomes == ["two\nthree", "fs.writeTextFile", "terminal"]
    # Only the advertised method was ever sent, with the session id added.
    assert [r["method"] for r in requests] == ["fs/read_text_file"]
    assert requests[0]["params"] == {
        "sessionId": sid,
        "path": "/tmp/project/a.txt",
        "line": 2,
        "limit": 3,
    }


async def test_permission_request_for_an_unannounced_tool_call_announces_it(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    async def ask(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        outcome = await ctx.request_permission(
            {"toolCallId": "t-9", "title": "Delete", "kind": "delete"}, ALLOW
        )
        return StopReason.END_TURN if outcome.allowed else StopReason.REFUSAL

    backend.script = ask
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        assert await client.prompt(sid, "go") == {"stopReason": "end_turn"}
        tool_call = next(m for m in client.received if m.get("method") == "session/update")
        assert tool_call["params"]["update"]["sessionUpdate"] == "tool_call"
        assert tool_call["params"]["update"]["toolCallId"] == "t-9"


async def test_a_strict_client_gets_a_valid_tool_call_whatever_the_backend_passes(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    harness, backend = scripted

    async def ask(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        outcome = await ctx.request_permission(
            {"toolCallId": "t-7", "title": "Run", "kind": "shell", "command": "rm -rf build"}, ALLOW
        )
        return StopReason.END_TURN if outcome.allowed else StopReason.REFUSAL

    backend.script = ask
    async with harness.client() as client:  # validates every message against the ACP schema
        await client.initialize()
        sid = await client.new_session()
        assert await client.prompt(sid, "go") == {"stopReason": "end_turn"}
    request = next(m for m in client.received if m.get("method") == "session/request_permission")
    assert request["params"]["toolCall"] == {
        "toolCallId": "t-7",
        "title": "Run",
        "_meta": {"acp_bridge": {"fields": {"kind": "shell", "command": "rm -rf build"}}},
    }


async def test_a_harn_client_gets_the_backend_tool_call_as_is(tmp_path: Path) -> None:
    backend = ScriptedBackend()

    async def ask(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        await ctx.request_permission({"toolCallId": "t-7", "kind": "shell"}, ALLOW)
        return StopReason.END_TURN

    backend.script = ask
    async with (
        make_harness(tmp_path, backend, profile=Profile.HARN) as harness,
        harness.client(validate=False) as client,
    ):
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "go")
    request = next(m for m in client.received if m.get("method") == "session/request_permission")
    assert request["params"]["toolCall"] == {"toolCallId": "t-7", "kind": "shell"}


@pytest.mark.parametrize(
    ("block", "reason"),
    [
        ({"type": "video", "data": "x"}, "unknown content block type 'video'"),
        ({"type": "text"}, "text block needs a string 'text'"),
        (
            {"type": "resource_link", "uri": "file:///a"},
            "resource_link block needs a string 'name'",
        ),
    ],
)
async def test_an_invalid_prompt_block_is_refused_before_the_backend_sees_it(
    scripted: tuple[BridgeHarness, ScriptedBackend], block: dict[str, Any], reason: str
) -> None:
    harness, backend = scripted
    seen: list[Any] = []

    async def record(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        seen.append(prompt)
        return StopReason.END_TURN

    backend.script = record
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        response = await client.request(
            "session/prompt",
            {"sessionId": sid, "prompt": [{"type": "text", "text": "look:"}, block]},
        )
    assert seen == []
    assert response["error"]["code"] == -32602
    assert response["error"]["message"] == f"prompt[1]: {reason}"
    assert response["error"]["data"] == {"field": "prompt[1]"}


async def test_event_ids_are_on_the_wire_and_increase(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        sid = await client.new_session()
        await client.prompt(sid, "/echo hi")
        await client.prompt(sid, "/echo again")
        ids = [
            m["params"]["_meta"]["harn"]["eventId"]
            for m in client.received
            if m.get("method") in ("session/update", "_harn/agentEvent")
            and "eventId" in m["params"].get("_meta", {}).get("harn", {})
        ]
    assert ids == sorted(ids)
    assert len(ids) == len(set(ids)) >= 2


async def test_harn_profile_carries_hub_annotations(demo: BridgeHarness) -> None:
    async with demo.client(validate=False) as client:
        await client.initialize({"_meta": {"harn": {}}})
        sid = await client.new_session()
        await client.prompt(sid, "/echo hi")
        chunk = await client.wait_for(
            lambda m: m.get("method") == "session/update" and "_harn" in m
        )
    assert chunk["_harn"]["sessionId"] == sid
    assert chunk["_harn"]["replayed"] is False
    assert isinstance(chunk["_harn"]["eventId"], int)


async def test_two_sessions_on_one_connection_are_isolated(demo: BridgeHarness) -> None:
    async with demo.client() as client:
        await client.initialize()
        a = await client.new_session("/tmp/a")
        b = await client.new_session("/tmp/b")
        await asyncio.gather(client.prompt(a, "/echo alpha"), client.prompt(b, "/echo beta"))
        text_a = "".join(
            u["content"]["text"]
            for u in client.updates(a)
            if u["sessionUpdate"] == "agent_message_chunk"
        )
        text_b = "".join(
            u["content"]["text"]
            for u in client.updates(b)
            if u["sessionUpdate"] == "agent_message_chunk"
        )
    assert text_a == "alpha"
    assert text_b == "beta"


async def test_a_second_connection_watching_the_session_sees_the_turn(demo: BridgeHarness) -> None:
    async with demo.client() as owner, demo.client() as watcher:
        await owner.initialize()
        await watcher.initialize()
        sid = await owner.new_session()
        await watcher.call("session/resume", {"sessionId": sid, "cwd": "/tmp/project"})
        await owner.prompt(sid, "/echo shared")
        chunk = await watcher.wait_for(
            lambda m: (
                m.get("method") == "session/update"
                and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
            )
        )
        # The watcher also sees the prompt itself (the owner does not get its own prompt echoed).
        user = [u for u in watcher.updates(sid) if u["sessionUpdate"] == "user_message_chunk"]
        assert [u["content"]["text"] for u in user] == ["/echo shared"]
        assert not [u for u in owner.updates(sid) if u["sessionUpdate"] == "user_message_chunk"]
    assert chunk["params"]["update"]["content"]["text"] == "shared"


async def test_cancel_applies_to_prompts_read_before_it_not_after(
    scripted: tuple[BridgeHarness, ScriptedBackend], monkeypatch: pytest.MonkeyPatch
) -> None:
    from acp_bridge.acp import sessions

    monkeypatch.setattr(sessions, "CANCEL_GRACE_SECONDS", 0.05)  # the blocker ignores cancel
    harness, backend = scripted
    release = asyncio.Event()
    running = asyncio.Event()

    async def wait(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        if prompt[0]["text"] == "blocker":
            running.set()
            await release.wait()
        return StopReason.END_TURN

    backend.script = wait
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        blocker = asyncio.create_task(client.prompt(sid, "blocker"))
        async with asyncio.timeout(5):
            await running.wait()
        # Back to back on the wire: a prompt, the cancel, another prompt. Handlers have not started yet
        # when the cancel is read, but the first prompt was read before it and the last one after.
        await client.send(
            {
                "jsonrpc": "2.0",
                "id": "before",
                "method": "session/prompt",
                "params": {"sessionId": sid, "prompt": [{"type": "text", "text": "queued"}]},
            }
        )
        await client.notify("session/cancel", {"sessionId": sid})
        await client.send(
            {
                "jsonrpc": "2.0",
                "id": "after",
                "method": "session/prompt",
                "params": {"sessionId": sid, "prompt": [{"type": "text", "text": "later"}]},
            }
        )
        before = await client.wait_for(lambda m: m.get("id") == "before")
        release.set()
        after = await client.wait_for(lambda m: m.get("id") == "after")
        async with asyncio.timeout(5):
            assert await blocker == {"stopReason": "cancelled"}
    assert before["result"] == {"stopReason": "cancelled"}
    assert after["result"] == {"stopReason": "end_turn"}


async def test_backend_errors_keep_their_rpc_code(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    from acp_bridge.agents.base import SessionReadOnly

    harness, backend = scripted

    async def read_only(ctx: SessionContext, prompt: list[dict[str, Any]]) -> StopReason:
        raise SessionReadOnly("this session mirrors a runtime's event log and cannot be prompted")

    backend.script = read_only
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        response = await client.request(
            "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
        )
    assert response["error"]["code"] == -32600
    assert "cannot be prompted" in response["error"]["message"]


async def test_read_only_sessions_refuse_prompts_without_recording_them(
    scripted: tuple[BridgeHarness, ScriptedBackend],
) -> None:
    from acp_bridge.sinks import agent_events_topic

    harness, backend = scripted
    backend.read_only_reason = lambda ctx: "this session mirrors a runtime and is read-only"  # type: ignore[method-assign]
    async with harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        response = await client.request(
            "session/prompt", {"sessionId": sid, "prompt": [{"type": "text", "text": "x"}]}
        )
    assert response["error"]["code"] == -32600
    assert "read-only" in response["error"]["message"]
    assert harness.bridge.log.read_range(agent_events_topic(sid)) == []
