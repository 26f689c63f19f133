"""Epochs: event ids are comparable only within one history of a session.

A session's epoch is made with its first record and stored with it. Every new/load/resume answer
names it; a ``session/load`` whose ``epoch`` is not the session's (its log was recreated, so ids
restarted from 1) replays the whole session and says so, instead of skipping "already seen" ids
that are in fact different events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from acp_bridge.agents.demo import DemoBackend
from acp_bridge.events import harn as h
from tests.support.replay_compare import EXACT

from .conftest import make_harness


def chunk_texts(messages: list[dict[str, Any]]) -> list[str]:
    return [
        m["params"]["update"]["content"]["text"]
        for m in messages
        if m.get("method") == "session/update"
        and m["params"]["update"]["sessionUpdate"] == "agent_message_chunk"
    ]


async def test_new_load_and_resume_name_one_epoch_that_survives_a_restart(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as first, first.client() as client:
        await client.initialize()
        created = await client.call("session/new", {"cwd": "/work/e", "mcpServers": []})
        sid, epoch = created["sessionId"], created["_meta"]["harn"]["epoch"]
        assert created["_meta"]["harn"]["lastEventId"] == 0
        await client.prompt(sid, "/echo one")
        resumed = await client.call("session/resume", {"sessionId": sid, "cwd": "/work/e"})
    assert isinstance(epoch, str)
    assert len(epoch) >= 16
    assert resumed["_meta"]["harn"]["epoch"] == epoch
    assert resumed["_meta"]["harn"]["lastEventId"] > 0
    async with make_harness(tmp_path, DemoBackend(0)) as second, second.client() as client:
        await client.initialize()
        loaded = await client.call("session/load", {"sessionId": sid, "cwd": "/work/e"})
    assert loaded["_meta"]["harn"]["epoch"] == epoch
    assert "epochReset" not in loaded["_meta"]["harn"]


async def test_the_same_epoch_resumes_after_the_last_acked_id(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as harness, harness.client() as client:
        await client.initialize()
        created = await client.call("session/new", {"cwd": "/work/e", "mcpServers": []})
        sid, epoch = created["sessionId"], created["_meta"]["harn"]["epoch"]
        await client.prompt(sid, "/echo one")
        acked = harness.bridge.sessions.committed_event_id(sid)
        await client.prompt(sid, "/echo two")
        async with harness.client() as again:
            await again.initialize()
            loaded = await again.call(
                "session/load",
                {"sessionId": sid, "cwd": "/work/e", "lastAckedEventId": acked, "epoch": epoch},
            )
            replay = list(again.received)
    assert "epochReset" not in loaded["_meta"]["harn"]
    assert chunk_texts(replay) == ["two"]


async def test_a_recreated_log_gives_the_session_a_new_epoch_and_a_full_replay(
    tmp_path: Path,
) -> None:
    # A backend that names its own sessions (tail: one per log file) opens the same session id
    # again on a new log; the ids of the old log mean nothing there.
    async with make_harness(tmp_path, DemoBackend(0), log_name="old.sqlite") as old:
        ctx = old.bridge.open_session("fixed", cwd="/work/f")
        for text in ("a", "b", "c"):
            ctx.emit(h.AgentMessageChunk(session_id="fixed", content=text))
        async with old.client() as client:
            await client.initialize()
            first = await client.call("session/load", {"sessionId": "fixed", "cwd": "/work/f"})
    old_epoch, old_last = first["_meta"]["harn"]["epoch"], first["_meta"]["harn"]["lastEventId"]
    assert old_last == 3
    async with make_harness(tmp_path, DemoBackend(0), log_name="new.sqlite") as new:
        ctx = new.bridge.open_session("fixed", cwd="/work/f")
        for text in ("x", "y", "z", "w"):
            ctx.emit(h.AgentMessageChunk(session_id="fixed", content=text))
        async with new.client() as client:
            await client.initialize()
            loaded = await client.call(
                "session/load",
                {
                    **EXACT,
                    "sessionId": "fixed",
                    "cwd": "/work/f",
                    "lastAckedEventId": old_last,
                    "epoch": old_epoch,
                },
            )
            replay = list(client.received)
    harn = loaded["_meta"]["harn"]
    assert harn["epoch"] != old_epoch
    assert harn["epochReset"] is True
    # Not a silent partial replay from id 4: all of the new history.
    assert chunk_texts(replay) == ["x", "y", "z", "w"]
    assert harn["replayedEvents"] == 4


async def test_an_epoch_that_is_not_a_string_is_invalid_params(tmp_path: Path) -> None:
    async with make_harness(tmp_path, DemoBackend(0)) as harness, harness.client() as client:
        await client.initialize()
        sid = await client.new_session()
        response = await client.request(
            "session/load", {"sessionId": sid, "cwd": "/tmp", "epoch": 7}
        )
    assert response["error"]["code"] == -32602
    assert response["error"]["data"] == {"field": "epoch"}
